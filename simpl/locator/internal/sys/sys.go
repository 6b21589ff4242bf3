// Package sys holds the locator's system calls: inotify on the FIFO
// directory and pidfds on the owners of names.
package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WatchDir starts an inotify watch on dir for entries created, removed or
// renamed, as a non-blocking file read through Go's poller.
func WatchDir(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	mask := uint32(unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify on %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

// DirEvent is one inotify event: the entry's name ("" for the directory
// itself) and whether the directory went away.
type DirEvent struct {
	Name string
	Gone bool // the directory itself was removed or moved
}

// ParseDirEvents decodes the events in b, as read from a WatchDir file.
// Every length is checked against b; a truncated record ends the list.
func ParseDirEvents(b []byte) []DirEvent {
	var out []DirEvent
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		n := int(ev.Len)
		if n < 0 || unix.SizeofInotifyEvent+n > len(b) {
			break
		}
		name := b[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+n]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		out = append(out, DirEvent{
			Name: string(name),
			Gone: ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0,
		})
		b = b[unix.SizeofInotifyEvent+n:]
	}
	return out
}

// ErrNoPidfd: the kernel (older than Linux 5.3) or a sandbox refuses
// pidfd_open; callers fall back to polling.
var ErrNoPidfd = errors.New("pidfd_open not available")

// OpenProcess opens a pidfd for pid, non-blocking and read through Go's
// poller: it names that process and never a later one with the same pid,
// and becomes readable when the process exits.
func OpenProcess(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	switch {
	case err == nil:
		return os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)), nil
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EINVAL):
		return nil, fmt.Errorf("pidfd_open %d: %w (%w)", pid, ErrNoPidfd, err)
	}
	return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
}

// WaitExit waits, parked in the poller rather than holding a thread, until
// the process behind pidfd exits or the file is closed.
func WaitExit(pidfd *os.File) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool { return exited(int(fd)) })
}

// exited tells without waiting whether the pidfd's process has exited; an
// unusable descriptor counts as exited.
func exited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err != nil || (n > 0 && fds[0].Revents != 0)
	}
}

// Owner is the uid that owns path.
func Owner(path string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return int(st.Uid), nil
}
