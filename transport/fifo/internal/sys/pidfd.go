package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A pidfd refers to one process for as long as it is open: it never comes
// to mean a later process that reuses the pid. It becomes readable when the
// process exits (a zombie counts as exited), which the Go netpoller can wait
// for like any other descriptor.

// ErrNoPidfd: the kernel (older than Linux 5.3) or a sandbox refuses
// pidfd_open.
var ErrNoPidfd = errors.New("pidfd_open not available")

// ErrNoProcess: there is no process with that pid.
var ErrNoProcess = errors.New("no such process")

// OpenProcess opens a pidfd for pid as a non-blocking, close-on-exec file
// registered with the Go netpoller: a RawConn.Read on it waits, without
// holding a thread, until the process exits.
func OpenProcess(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) {
		// Before Linux 5.10 there is no PIDFD_NONBLOCK; the file status
		// flag does the same.
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
			}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("pidfd_open %d: %w (%w)", pid, ErrNoPidfd, err)
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, ErrNoProcess)
	default:
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)), nil
}

// Exited tells, without waiting, whether the process behind pidfd has
// exited. An unusable descriptor counts as exited: nothing can be learnt
// from it any more.
func Exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return true
		}
		return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}
}
