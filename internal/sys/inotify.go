package sys

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// WatchDir starts an inotify watch on dir for entries created, removed or
// renamed, and for dir itself going away. The file, non-blocking and read
// through Go's poller, is the caller's to close (which ends a Read); its
// reads decode with ParseDirEvents.
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

// WatchWrites is WatchDir that also reports entries written and closed
// (an edit in place, not only a rename over the old file).
func WatchWrites(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	mask := uint32(unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
		unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_CLOSE_WRITE)
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify on %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

// DirEvent is one inotify event: the entry's name ("" for the directory
// itself) and whether the directory went away.
type DirEvent struct {
	Name    string
	Gone    bool // the directory itself was removed or moved, or the watch ended
	Removed bool // the entry Name was removed, or moved away
}

// ParseDirEvents decodes the events in b, as read from a WatchDir file:
// records of a struct inotify_event (wd, mask, cookie, len: four native
// 32-bit words) and len bytes of NUL-padded name. Every length is checked
// against b; a truncated record ends the list.
func ParseDirEvents(b []byte) []DirEvent {
	var out []DirEvent
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		n := uint64(binary.NativeEndian.Uint32(b[12:16]))
		if uint64(len(b)-unix.SizeofInotifyEvent) < n {
			break
		}
		end := unix.SizeofInotifyEvent + int(n)
		name := b[unix.SizeofInotifyEvent:end]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		out = append(out, DirEvent{
			Name:    string(name),
			Gone:    mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0,
			Removed: mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0,
		})
		b = b[end:]
	}
	return out
}
