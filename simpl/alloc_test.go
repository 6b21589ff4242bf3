//go:build !race

package simpl_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A steady-state round trip through shared memory allocates nothing in the
// sender, and the receiver's Receive+Reply allocate nothing either.
func TestRoundTripAllocs(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("FIFO transport forced")
	}
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "echo", env(dir), "ECHO")
	c := locate(t, attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM)), "ECHO")
	ctx := context.Background()
	req, reply := make([]byte, 64), make([]byte, 64)
	for range 100 {
		if _, err := c.Send(ctx, req, reply); err != nil {
			t.Fatal(err)
		}
	}
	if a := testing.AllocsPerRun(2000, func() {
		if _, err := c.Send(ctx, req, reply); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("sender: %v allocations per round trip, want 0", a)
	}
	b, err := c.Buffer(context.Background(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a := testing.AllocsPerRun(2000, func() {
		if _, err := b.Send(ctx, 64, 64); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("sender with a Buffer: %v allocations per round trip, want 0", a)
	}
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reap(t, dir)

	// Receiver side: this process serves, a helper sends.
	rx := attach(t, dir, "RX", simpl.WithTransport(simpl.SHM))
	pump := simpltest.Start(t, "pump", env(dir), "PUMP", "RX")
	rctx := simpltest.Context(t, time.Minute)
	serveOne := func() {
		msg, err := rx.Receive(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Reply(msg.Data()); err != nil {
			t.Fatal(err)
		}
		msg, err = rx.Receive(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.ReplyInPlace(len(msg.Data())); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		serveOne()
	}
	if a := testing.AllocsPerRun(2000, serveOne); a != 0 {
		t.Errorf("receiver: %v allocations per two Receives, a Reply and a ReplyInPlace, want 0", a)
	}
	rx.Close()
	pump.Wait(10 * time.Second)
}
