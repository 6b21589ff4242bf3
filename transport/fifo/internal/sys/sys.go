// Package sys holds every system call the FIFO transport makes: FIFOs,
// System V shared memory and pidfds. Nothing else in the transport imports
// golang.org/x/sys/unix.
package sys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// PageSize rounds segment sizes.
var PageSize = os.Getpagesize()

// Mkfifo makes a FIFO at path and sets its mode exactly (mkfifo alone is
// subject to the umask). It fails with fs.ErrExist when path exists.
func Mkfifo(path string, perm os.FileMode) error {
	if err := unix.Mkfifo(path, uint32(perm.Perm())); err != nil {
		return &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	if err := os.Chmod(path, perm.Perm()); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// ErrNoReader: the FIFO exists but nobody has it open for reading.
var ErrNoReader = errors.New("no reader on FIFO")

// OpenWriter opens an existing FIFO for non-blocking writes. It fails with
// ErrNoReader when nobody reads it and refuses anything that is not a FIFO
// (a name read from shared memory must not lead to writing a regular file).
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

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

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

// IsBrokenPipe tells whether err means the FIFO's readers are gone.
func IsBrokenPipe(err error) bool { return errors.Is(err, unix.EPIPE) }

// IsWouldBlock tells whether err means the FIFO is full.
func IsWouldBlock(err error) bool { return errors.Is(err, unix.EAGAIN) }

// ReadNonblock reads what is in fd now; 0 and nil when nothing is.
func ReadNonblock(fd int, p []byte) (int, error) {
	n, err := unix.Read(fd, p)
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	return n, err
}

// ShmCreate makes a private segment of size bytes with permissions perm,
// attaches it and marks it for removal at once, so the kernel frees it when
// the last process detaches, even after a crash. It returns the id others
// attach by.
func ShmCreate(size int, perm os.FileMode) (int, []byte, error) {
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|unix.IPC_EXCL|int(perm.Perm()))
	if err != nil {
		return -1, nil, fmt.Errorf("shmget %d bytes: %w", size, err)
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return -1, nil, fmt.Errorf("shmat: %w", err)
	}
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		unix.SysvShmDetach(mem)
		return -1, nil, fmt.Errorf("shmctl IPC_RMID: %w", err)
	}
	return id, mem, nil
}

// ShmAttach attaches segment id read-write; the slice is the whole segment.
func ShmAttach(id int) ([]byte, error) {
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shmat %d: %w", id, err)
	}
	return mem, nil
}

// ShmDetach detaches a mapping from ShmCreate or ShmAttach.
func ShmDetach(mem []byte) error { return unix.SysvShmDetach(mem) }

// ShmAttached returns how many processes have segment id attached.
func ShmAttached(id int) (int, error) {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return 0, err
	}
	return int(d.Nattch), nil
}
