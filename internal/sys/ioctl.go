package sys

import (
	"errors"

	"golang.org/x/sys/unix"
)

// PipeBuffered is how many bytes wait in the pipe or FIFO fd (FIONREAD,
// alias TIOCINQ on Linux, which writes a C int). One system call, no
// allocation: a FIFO reader asks after every doorbell.
func PipeBuffered(fd int) (int, error) {
	n, err := unix.IoctlGetUint32(fd, unix.TIOCINQ)
	return int(int32(n)), err
}

// IsShortage tells whether err is this process, or the system, running out
// of descriptors (EMFILE, ENFILE) or memory for them (ENOMEM): a passing
// state of the caller, never a verdict on whatever it was opening.
func IsShortage(err error) bool {
	return errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOMEM)
}

// Reserve opens a descriptor held in reserve (/dev/null): closed when the
// process is out of descriptors, it makes room for one that matters more.
func Reserve() (*FD, error) {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return NewFD(fd), nil
}
