package sys

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWaitReadable: the wait ends for the descriptor or the waker, and
// says which (woken only for the waker); Unwake makes the waker quiet
// again, so that only the descriptor ends the next wait; a closed waker
// fails the wait rather than blocking.
func TestWaitReadable(t *testing.T) {
	r, w := pipe(t)
	waker, err := NewWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer waker.Close()

	Wake(waker)
	if woken, err := WaitReadable(r.Int(), waker); err != nil || !woken {
		t.Fatalf("after Wake: woken %v, %v; want true", woken, err)
	}
	Unwake(waker)
	if _, err := unixWrite(w, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if woken, err := WaitReadable(r.Int(), waker); err != nil || woken {
		t.Fatalf("descriptor readable, waker drained: woken %v, %v; want false", woken, err)
	}
	Wake(waker)
	Wake(waker) // counted, drained by one Unwake
	Unwake(waker)
	var b [1]byte
	if n, err := ReadNonblock(r.Int(), b[:]); n != 1 || err != nil {
		t.Fatalf("read: %d, %v", n, err)
	}
	done := make(chan bool, 1)
	go func() {
		woken, _ := WaitReadable(r.Int(), waker)
		done <- woken
	}()
	// Nothing is readable: the wait goes on until the next Wake.
	Wake(waker)
	if !<-done {
		t.Fatal("the wait that Wake ended says it was not woken")
	}
	waker.Close()
	if _, err := WaitReadable(r.Int(), waker); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("closed waker: %v, want os.ErrClosed", err)
	}
}

func unixWrite(f *FD, b []byte) (int, error) {
	n := 0
	var err error
	f.Control(func(fd int) { n, err = unix.Write(fd, b) })
	return n, err
}
