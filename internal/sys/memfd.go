package sys

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// requiredSeals are the seals a mapping's memfd must carry before a peer
// maps it: without them the creator could shrink the file under the peer's
// mapping and kill it with SIGBUS.
const requiredSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

// ErrBadMemfd reports a file descriptor that is not a sealed memfd of a
// usable size.
var ErrBadMemfd = errors.New("not a sealed shared-memory file of the expected size")

// NewMemfd creates an anonymous shared-memory file of size bytes, sealed so
// that nobody can change its size (close-on-exec).
func NewMemfd(name string, size int) (*FD, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ftruncate memfd to %d bytes: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, requiredSeals); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return NewFD(fd), nil
}

// CheckMemfd returns the size of fd after checking that it is a sealed
// memfd whose size lies in [min, max].
func CheckMemfd(fd, min, max int) (int, error) {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadMemfd, err)
	}
	if seals&requiredSeals != requiredSeals {
		return 0, fmt.Errorf("%w: seals %#x", ErrBadMemfd, seals)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadMemfd, err)
	}
	if st.Size < int64(min) || st.Size > int64(max) {
		return 0, fmt.Errorf("%w: %d bytes", ErrBadMemfd, st.Size)
	}
	return int(st.Size), nil
}
