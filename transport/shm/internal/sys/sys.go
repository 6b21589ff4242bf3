// Package sys holds every system call, unsafe conversion and mapping the
// shm transport uses: sealed memfds, shared mappings with bounds-checked
// atomic words, futex waits and wakes, and peer credentials.
package sys

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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
// that nobody can change its size, and returns its descriptor (close-on-exec).
func NewMemfd(name string, size int) (int, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("ftruncate memfd to %d bytes: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, requiredSeals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal memfd: %w", err)
	}
	return fd, nil
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

// Close closes a file descriptor.
func Close(fd int) error { return unix.Close(fd) }

// Mapping is a shared read-write mapping of a whole memfd. Its accessors
// check bounds and alignment and panic on a programming error; they never
// touch memory outside the mapping. Unmap is idempotent but not safe to
// call concurrently with other methods.
type Mapping struct {
	mem []byte
}

// Map maps size bytes of fd shared and read-write.
func Map(fd, size int) (*Mapping, error) {
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	return &Mapping{mem: mem}, nil
}

// Len is the mapping's size.
func (m *Mapping) Len() int { return len(m.mem) }

// Bytes returns the mapping's bytes [off, off+n).
func (m *Mapping) Bytes(off, n int) []byte {
	return m.mem[off : off+n : off+n]
}

// Uint32 returns the aligned 32-bit word at off as an atomic.
func (m *Mapping) Uint32(off int) *atomic.Uint32 {
	if off < 0 || off%4 != 0 || off+4 > len(m.mem) {
		panic(fmt.Sprintf("sys: Uint32 at %d outside a %d-byte mapping", off, len(m.mem)))
	}
	return (*atomic.Uint32)(unsafe.Pointer(&m.mem[off]))
}

// Uint64 returns the aligned 64-bit word at off as an atomic.
func (m *Mapping) Uint64(off int) *atomic.Uint64 {
	if off < 0 || off%8 != 0 || off+8 > len(m.mem) {
		panic(fmt.Sprintf("sys: Uint64 at %d outside a %d-byte mapping", off, len(m.mem)))
	}
	return (*atomic.Uint64)(unsafe.Pointer(&m.mem[off]))
}

// Unmap releases the mapping. Words and slices taken from it must not be
// used afterwards.
func (m *Mapping) Unmap() error {
	if m.mem == nil {
		return nil
	}
	err := unix.Munmap(m.mem)
	m.mem = nil
	return err
}

// Futex operations, without FUTEX_PRIVATE_FLAG: the words are shared
// between processes.
const (
	futexWait = 0
	futexWake = 1
)

// FutexWait sleeps while *w == val, until a FutexWake on w, a signal or
// timeout (0 means none). The futex is shared between processes. It returns
// false on timeout.
func FutexWait(w *atomic.Uint32, val uint32, timeout time.Duration) bool {
	var tsp *unix.Timespec
	if timeout > 0 {
		ts := unix.NsecToTimespec(int64(timeout))
		tsp = &ts
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait,
		uintptr(val), uintptr(unsafe.Pointer(tsp)), 0, 0)
	return errno != unix.ETIMEDOUT
}

// FutexWake wakes up to n waiters on w.
func FutexWake(w *atomic.Uint32, n int) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, uintptr(n), 0, 0, 0)
}

// Cred is a peer's identity as the kernel reports it.
type Cred struct {
	PID    int
	UID    int
	GID    int   // primary group
	Groups []int // supplementary groups
}

// PeerCred reads SO_PEERCRED from a connected Unix socket.
func PeerCred(rc syscall.RawConn) (Cred, error) {
	var (
		uc   *unix.Ucred
		gerr error
	)
	err := rc.Control(func(fd uintptr) {
		uc, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = gerr
	}
	if err != nil {
		return Cred{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	cred := Cred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}
	err = rc.Control(func(fd uintptr) { cred.Groups, gerr = peerGroups(int(fd)) })
	if err == nil {
		err = gerr
	}
	if err != nil {
		return Cred{}, fmt.Errorf("SO_PEERGROUPS: %w", err)
	}
	return cred, nil
}

// peerGroups reads the peer's supplementary groups (SO_PEERGROUPS).
func peerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 32)
	for {
		n := uint32(4 * len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n/4) > len(buf):
			buf = make([]uint32, n/4)
			continue
		case errno != 0:
			return nil, errno
		}
		groups := make([]int, 0, n/4)
		for _, g := range buf[:min(int(n/4), len(buf))] {
			groups = append(groups, int(g))
		}
		return groups, nil
	}
}

// Rights encodes fds for SCM_RIGHTS.
func Rights(fds ...int) []byte { return unix.UnixRights(fds...) }

// ParseRights returns the descriptors passed in an SCM_RIGHTS message.
func ParseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

// Yield gives up the processor briefly while spinning.
func Yield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// NudgePipe makes the pipe a receiver nudges a parked sender through: it
// keeps the write end, made non-blocking (its own open file, which the
// sender holding the read end cannot change), and passes the read end.
func NudgePipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	return p[0], p[1], nil
}

// Nudge writes one byte to a nudge pipe's write end. It never waits: when
// the reader has let the pipe fill, the byte is dropped (the reader has
// wake-ups pending anyway), and a closed reader is ignored.
func Nudge(w int) {
	b := [1]byte{1}
	unix.Write(w, b[:])
}

// NudgeReader checks that fd, received from a receiver, is a pipe, and
// returns it as a file read through Go's poller.
func NudgeReader(fd int) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, fmt.Errorf("descriptor of mode %#o is not a pipe", st.Mode)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "gosimpl-nudge"), nil
}

// WriteNonblock writes b to c in one send(2) with MSG_DONTWAIT: it never
// waits for room (IsWouldBlock tells that case).
func WriteNonblock(c syscall.Conn, b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Send(int(fd), b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// IsWouldBlock reports an error of a write that would have waited.
func IsWouldBlock(err error) bool { return errors.Is(err, unix.EAGAIN) }
