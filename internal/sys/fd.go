package sys

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// FD is an open file descriptor that its holder owns: it closes it once,
// and never a number that has since been reused for another file. The
// functions of this package that make descriptors to be kept return FDs;
// a number that only lives within one function (a descriptor received in
// a message, say, until it is checked) may stay a plain int.
//
// An FD is safe for concurrent use. Close is idempotent, waits for a
// Control in progress, and makes later Controls fail; the number Int
// returns is only good for as long as the caller knows Close cannot run.
type FD struct {
	mu  sync.RWMutex // held for reading while the number is used, for writing by Close
	raw int          // -1 once closed or handed on
}

// NewFD takes ownership of the open descriptor raw.
func NewFD(raw int) *FD {
	if raw < 0 {
		panic(fmt.Sprintf("sys: NewFD(%d)", raw))
	}
	return &FD{raw: raw}
}

// Int is the descriptor's number, or -1 once it is closed, for a system
// call made while the caller knows no Close runs at once (under the lock
// that orders its Close, say). Control is for the other cases.
func (f *FD) Int() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.raw
}

// Control calls fn with the descriptor's number, which stays open until fn
// returns. Once f is closed it returns an error wrapping os.ErrClosed
// without calling fn.
func (f *FD) Control(fn func(raw int)) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.raw < 0 {
		return fmt.Errorf("descriptor: %w", os.ErrClosed)
	}
	fn(f.raw)
	return nil
}

// Close closes the descriptor, once; later calls return nil.
func (f *FD) Close() error {
	f.mu.Lock()
	raw := f.raw
	f.raw = -1
	f.mu.Unlock()
	if raw < 0 {
		return nil
	}
	return Close(raw)
}

// File hands the descriptor to an os.File named name, which owns it from
// then on (and reads and writes it through Go's poller when it is
// non-blocking); f is left closed. It fails with os.ErrClosed if f is.
func (f *FD) File(name string) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raw < 0 {
		return nil, fmt.Errorf("descriptor: %w", os.ErrClosed)
	}
	file := os.NewFile(uintptr(f.raw), name)
	f.raw = -1
	return file, nil
}

// Close closes the descriptor fd, which no FD owns (FD.Close is the way to
// close an FD's).
func Close(fd int) error { return unix.Close(fd) }

// IsWouldBlock tells whether err means that a write would have waited:
// the pipe, FIFO or socket is full.
func IsWouldBlock(err error) bool { return errors.Is(err, unix.EAGAIN) }

// IsBrokenPipe tells whether err means that the readers of a pipe, FIFO
// or socket are gone.
func IsBrokenPipe(err error) bool { return errors.Is(err, unix.EPIPE) }

// Dup returns a second descriptor of the same open file (close-on-exec),
// owned by the caller. It fails with os.ErrClosed if f is closed.
func (f *FD) Dup() (*FD, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.raw < 0 {
		return nil, fmt.Errorf("descriptor: %w", os.ErrClosed)
	}
	fd, err := unix.FcntlInt(uintptr(f.raw), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	return NewFD(fd), nil
}
