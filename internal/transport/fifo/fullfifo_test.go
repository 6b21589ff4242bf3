package fifo

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/transport"
)

// TestSendFullFIFO: a Send to a receiver whose FIFO is full (stopped,
// with thousands of proxies unread) waits its turn, but no longer than
// its context: it returns ctx.Err() when that ends and ErrClosed when the
// Conn is closed, and it goes through once the receiver reads again.
func TestSendFullFIFO(t *testing.T) {
	dir := proctest.Dir(t)
	reg, ep, h, c := holding(t, dir, 1)
	defer c.Close()
	if err := syscall.Kill(h.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(h.PID(), syscall.SIGCONT)
	fillFIFO(t, c)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("x"), nil)
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send to a full FIFO: %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(time.Second):
		c.Close() // ends it, so that the test ends
		t.Fatalf("Send with a 100 ms deadline to a full FIFO still waiting after 1s (%v)", <-errc)
	}

	c2, err := ep.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	closedWhileRinging(t, c2, "its Conn", func() { c2.Close() })

	// The receiver reads again: a Send waiting its turn goes through (the
	// holder takes the proxies, then holds the request).
	go func() {
		_, err := c.Send(context.Background(), []byte("x"), nil)
		errc <- err
	}()
	waitFor(t, "the Send waiting its turn", func() bool { return c.ringing.Load() == 1 })
	if err := syscall.Kill(h.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	h.Expect("held 1", helperTimeout)
	killed(t, h)
	if err := <-errc; !errors.Is(err, transport.ErrPeerGone) {
		t.Errorf("Send held, then the receiver killed: %v, want ErrPeerGone", err)
	}
	bury(t, h, reg)
}

// A Send waiting its turn at a full FIFO ends with ErrClosed when its
// endpoint closes, as its other waits do; before, it went on waiting, and
// rang the receiver once it read again, after Close had returned
// (helper-58).
func TestEndpointCloseEndsFullFIFOSend(t *testing.T) {
	dir := proctest.Dir(t)
	reg, ep, h, c := holding(t, dir, 1)
	defer c.Close()
	if err := syscall.Kill(h.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(h.PID(), syscall.SIGCONT)
	fillFIFO(t, c)
	closedWhileRinging(t, c, "its endpoint", func() { ep.Close() })
	syscall.Kill(h.PID(), syscall.SIGCONT)
	killed(t, h)
	bury(t, h, reg)
}

// fillFIFO triggers c's receiver (stopped, or not reading) until its FIFO
// is full, which a Trigger says with ErrTooLarge.
func fillFIFO(t *testing.T, c *Conn) {
	t.Helper()
	// A pipe holds 16,384 doorbells by default; 1 MiB at most.
	for n := 0; n < 1<<18; n++ {
		if err := c.Trigger(1); err != nil {
			if !errors.Is(err, errFIFOFull) || !errors.Is(err, transport.ErrTooLarge) {
				t.Fatalf("trigger %d: %v, want the FIFO full (ErrTooLarge)", n+1, err)
			}
			return
		}
	}
	t.Fatalf("%d triggers and the FIFO is not full", 1<<18)
}

// closedWhileRinging starts a Send on c, whose receiver's FIFO is full,
// waits until it waits its turn, closes (what says what close closes)
// and checks that the Send ends with ErrClosed.
func closedWhileRinging(t *testing.T, c *Conn, what string, close func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), []byte("x"), nil)
		errc <- err
	}()
	waitFor(t, "the Send waiting its turn", func() bool { return c.ringing.Load() == 1 })
	close()
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Send to a full FIFO, %s closed: %v, want ErrClosed", what, err)
		}
	case <-time.After(helperTimeout):
		c.Close() // ends it, so that the test ends
		t.Fatalf("Send to a full FIFO still waiting %v after %s closed (%v)", helperTimeout, what, <-errc)
	}
}
