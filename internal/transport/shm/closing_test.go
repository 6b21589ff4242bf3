//go:build !race

package shm

import (
	"context"
	"os"
	"testing"
	"time"
)

// A Reply made while the endpoint is closing (between Close's first step
// and its reaching the lane) that reaches its sender reports success, and
// writes the lane's header once. Before, the answer was written twice
// (the second time over the sender's next message, had it posted one)
// and Reply reported ErrPeerGone for a reply the sender got (helper-39).
func TestReplyWhileClosing(t *testing.T) {
	e, addr := listen(t, "rwc", Options{})
	c, err := Dial(context.Background(), addr, os.Getpid(), "rwc", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type res struct {
		n   int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Send(context.Background(), []byte("hi"), buf)
		ch <- res{n, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, _, err := e.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.closing.Store(true) // the state Close is in before it reaches the lanes
	defer e.closing.Store(false)
	rerr := r.Reply([]byte("ok"))
	got := <-ch
	if got.err != nil || got.n != 2 || rerr != nil {
		t.Fatalf("Reply while closing: %v; the sender got %d bytes, %v; want both to succeed", rerr, got.n, got.err)
	}
}
