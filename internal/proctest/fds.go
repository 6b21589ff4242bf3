package proctest

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// FillDescriptors lowers this process's descriptor limit to 256 and
// opens /dev/null until the process has no descriptor left (EMFILE), so
// that what it does next meets EMFILE (for a helper process: the limit
// is the whole process's). free closes them and restores the limit.
func FillDescriptors() (free func() error, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	low := lim
	low.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		return nil, err
	}
	var held []int
	free = func() error {
		for _, fd := range held {
			unix.Close(fd)
		}
		held = nil
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EMFILE) {
			return free, nil
		}
		if err != nil {
			free()
			return nil, err
		}
		held = append(held, fd)
	}
}
