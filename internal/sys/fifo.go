package sys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Mkfifo makes a FIFO at path and sets its mode exactly (mkfifo alone is
// subject to the umask). It fails with fs.ErrExist when path exists. The
// mode is set through a descriptor of the FIFO made, opened without
// following a symbolic link and checked to be a FIFO of this process's
// user: in a directory others may write, one could put a link to a file
// of theirs choosing in the FIFO's place between the two steps, which a
// chmod by name would follow.
func Mkfifo(path string, perm os.FileMode) error {
	if err := unix.Mkfifo(path, uint32(perm.Perm())); err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(path)
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || int(st.Uid) != unix.Geteuid() {
		os.Remove(path)
		return fmt.Errorf("mkfifo %s: replaced by something else while it was made", path)
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		os.Remove(path)
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// ErrNoReader: the FIFO exists but nobody has it open for reading.
var ErrNoReader = errors.New("no reader on FIFO")

// OpenWriter opens an existing FIFO for non-blocking writes. It fails with
// ErrNoReader when nobody reads it and refuses anything that is not a FIFO
// (a name read from shared memory must not lead to writing a regular file).
// The descriptor is the caller's: to close, to keep in an FD (NewFD), or
// to hand to an os.File.
func OpenWriter(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return -1, fmt.Errorf("open %s: %w", path, ErrNoReader)
		}
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return -1, fmt.Errorf("open %s: not a FIFO", path)
	}
	return fd, nil
}

// WriteInt32 writes one native-endian int32 to fd in a single write (a
// FIFO write of 4 bytes is atomic). EAGAIN comes back as an error: the
// reader's FIFO is full.
func WriteInt32(fd int, v int32) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	n, err := unix.Write(fd, b[:])
	if err != nil {
		return err
	}
	if n != 4 {
		return fmt.Errorf("short doorbell write: %d bytes", n)
	}
	return nil
}

// ReadNonblock reads what is in fd now; 0 and nil when nothing is.
func ReadNonblock(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	return n, err
}

// OpenReader opens the FIFO at path read-write (so that it never reads
// end-of-file while no writer has it open) and non-blocking, outside Go's
// poller: for a reader that waits in its own system calls (WaitReadable).
// It refuses anything that is not a FIFO, and a symbolic link.
func OpenReader(path string) (*FD, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: not a FIFO", path)
	}
	return NewFD(fd), nil
}
