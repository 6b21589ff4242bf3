package sys

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// PipeBuffered is how many bytes wait in the pipe or FIFO fd (FIONREAD, alias TIOCINQ on Linux).
// One system call, no allocation: a FIFO reader asks after every doorbell.
func PipeBuffered(fd int) (int, error) {
	var n int32
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return 0, errno
	}
	return int(n), nil
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
