package sys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NewWaker returns an eventfd (non-blocking, close-on-exec) that Wake
// makes readable and Unwake makes unreadable again: the way to end a
// WaitReadable from another goroutine.
func NewWaker() (*FD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return NewFD(fd), nil
}

// Wake makes the waker readable. It never waits; a closed waker is
// ignored.
func Wake(w *FD) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.raw >= 0 {
		var b [8]byte
		binary.NativeEndian.PutUint64(b[:], 1)
		unix.Write(w.raw, b[:]) // EAGAIN at the counter's limit: readable anyway
	}
}

// Unwake reads the waker's count without waiting, so that it is not
// readable until the next Wake.
func Unwake(w *FD) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.raw >= 0 {
		var b [8]byte
		unix.Read(w.raw, b[:])
	}
}

// WaitReadable blocks the calling thread in a system call (not Go's
// poller) until fd or the waker is readable, or a signal interrupts it;
// the caller then looks at both and calls it again if need be. woken
// tells that the waker was readable: a caller that Unwakes only then
// never leaves it readable to end every later wait at once. fd must stay
// open meanwhile; the waker may not be closed meanwhile either (Close
// would wait for the wait). It allocates nothing.
func WaitReadable(fd int, waker *FD) (woken bool, err error) {
	waker.mu.RLock()
	defer waker.mu.RUnlock()
	if waker.raw < 0 {
		return false, fmt.Errorf("waker: %w", os.ErrClosed)
	}
	fds := [2]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(waker.raw), Events: unix.POLLIN}}
	_, err = unix.Ppoll(fds[:], nil, nil)
	if err == nil || errors.Is(err, unix.EINTR) {
		return fds[1].Revents != 0, nil
	}
	return false, err
}
