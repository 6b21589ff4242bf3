package sys

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Owner is the uid that owns path.
func Owner(path string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return int(st.Uid), nil
}

// BirthTime is when the file at path was created: its birth time where the
// file system records one (ext4, tmpfs, xfs, btrfs), else its modification
// time. A symbolic link is not followed.
func BirthTime(path string) (time.Time, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME|unix.STATX_MTIME, &st); err != nil {
		return time.Time{}, &os.PathError{Op: "statx", Path: path, Err: err}
	}
	ts := st.Mtime
	if st.Mask&unix.STATX_BTIME != 0 {
		ts = st.Btime
	}
	return time.Unix(ts.Sec, int64(ts.Nsec)), nil
}

// FileID returns the device, inode, mode and group of the open file fd.
func FileID(fd int) (dev, ino uint64, mode, gid uint32, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("fstat: %w", err)
	}
	return st.Dev, st.Ino, st.Mode, st.Gid, nil
}

// IsTerminal tells whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
