//go:build !race

package shm

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A sender that clears the bell's ready bits and sleepers count (every
// admitted sender maps the bell writable), keeping a bit of its own set,
// delays the others' requests,
// by at most maxSleep each, and never hides them: every honest Send is
// answered. Before, a request whose bit was cleared was never seen, and
// its Send waited until its deadline (17 of 20 failed with 100 ms in
// helper-39's run).
func TestHostileBell(t *testing.T) {
	e, addr := listen(t, "hb", Options{})
	honest, err := Dial(context.Background(), addr, os.Getpid(), "honest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Close()
	hostile, err := Dial(context.Background(), addr, os.Getpid(), "hostile", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := hostile.bell // its own mapping of the receiver's bell
		for !stop.Load() {
			// Every bit cleared but one of its own, kept set (helper-41):
			// a receiver that looked at every lane only when no bit
			// was set would never look.
			b.ready[0].Store(1 << 63)
			for i := 1; i < len(b.ready); i++ {
				b.ready[i].Store(0)
			}
			b.sleepers.Store(0)
		}
	}()
	stopHostile := func() {
		if !stop.Swap(true) {
			<-done
		}
	}
	defer stopHostile() // before hostile.Close unmaps its bell, even on failure
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, _, err := e.Receive(ctx)
			cancel()
			if err != nil {
				return
			}
			if string(r.Data()) == "stop" {
				r.Reply(nil)
				return
			}
			r.Reply([]byte("ok"))
		}
	}()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*maxSleep)
		n, err := honest.Send(ctx, []byte("hi"), make([]byte, 8))
		cancel()
		if err != nil || n != 2 {
			t.Fatalf("honest Send %d while a sender clears the bell: %d, %v", i, n, err)
		}
	}
	stopHostile()
	honest.Send(context.Background(), []byte("stop"), nil)
	<-served
}
