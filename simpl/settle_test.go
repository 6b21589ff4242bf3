//go:build !race

package simpl

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// A sender's raise that lands while the serving thread is being set
// (between the publication of its rank and the setting of the thread) is
// kept, though the sender's request is not waiting yet: a sender raises
// before it posts. Before, the thread was set back below that sender and
// served on there until its next request, while the sender waited: with
// CPU hogs beside it, milliseconds.
func TestSettleKeepsRaise(t *testing.T) {
	rx, s, _ := settleServer(t)
	high := transport.Prio{Policy: sys.SchedFIFO, Level: 9}
	raised := false
	testHookPublished = func() {
		testHookPublished = nil
		// What a sender's boost does: the rank word, then the thread.
		r, _ := rx.q.ServerRank()
		if raised = rx.q.SwapServerRank(s.tid, r, high.Rank()); raised {
			raised = sys.SetSched(s.tid, sys.Sched(high)) == nil
		}
	}
	defer func() { testHookPublished = nil }()
	s.mu.Lock()
	s.settle(transport.Prio{Policy: sys.SchedOther})
	s.mu.Unlock()
	if !raised {
		t.Fatal("the raise was not made")
	}
	if now, err := sys.GetSched(0); err != nil || now != sys.Sched(high) {
		t.Errorf("after a raise to %+v during settle, the thread is at %+v (%v): the raise was undone", high, now, err)
	}
	if r, _ := rx.q.ServerRank(); r != high.Rank() {
		t.Errorf("published rank %d, want the raised %d", r, high.Rank())
	}
}

// A sender that writes the bell's rank word and raises nothing (any
// sender the mode admits can write that word; one of another user cannot
// raise the receiver's thread itself) does not get the receiver to raise
// its own thread: settle keeps what the thread runs at, never the word.
// Before, one store of SCHED_FIFO 99 into the word had the receiver set
// its serving thread to FIFO 99 with its own privileges (helper-55).
func TestSettleIgnoresForgedRank(t *testing.T) {
	rx, s, own := settleServer(t, WithPerm(0o666))
	defer sys.SetSched(0, own)
	s.mu.Lock()
	s.settle(transport.Prio{Policy: sys.SchedOther})
	s.mu.Unlock()
	forged := transport.Prio{Policy: sys.SchedFIFO, Level: 99}
	if r, _ := rx.q.ServerRank(); !rx.q.SwapServerRank(s.tid, r, forged.Rank()) {
		t.Fatal("the rank word could not be written")
	}
	s.mu.Lock()
	s.settle(transport.Prio{Policy: sys.SchedOther})
	s.mu.Unlock()
	if now, err := sys.GetSched(0); err != nil || now != own {
		t.Errorf("after a forged rank word, the serving thread runs at %+v (%v), want its own %+v", now, err, own)
	}
	if r, _ := rx.q.ServerRank(); r == forged.Rank() {
		t.Errorf("the forged rank %d is still published", r)
	}
}

// settleServer attaches a receiver that inherits priorities (with opts),
// gives it a shared-memory sender (a lane, and with it the bell the rank
// lives in), locks the test to its thread, which must run SCHED_OTHER
// nice 0, and makes that thread the receiver's server; all undone when the test
// ends. It returns the receiver, the server and the thread's own policy.
func settleServer(t *testing.T, opts ...Option) (*Channel, *server, sys.Sched) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("raising a thread to SCHED_FIFO needs root")
	}
	dir := t.TempDir()
	rx, err := Attach("SETTLE", append([]Option{WithDir(dir), WithTransport(SHM), WithPriorityInheritance()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	tx, err := Attach("SETTLETX", WithDir(dir), WithTransport(SHM))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tx.Locate(ctx, "SETTLE")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	own, err := sys.GetSched(0)
	if err != nil || own != (sys.Sched{Policy: sys.SchedOther}) {
		t.Skipf("this thread runs at %+v (%v), want SCHED_OTHER nice 0 (the base the tests settle to)", own, err)
	}
	s, err := newServer(rx.q, &rx.prioFails)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return rx, s, own
}
