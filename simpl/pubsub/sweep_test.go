package pubsub

import (
	"testing"
	"time"
)

// The sweep looks at each process once, however many subscriptions it
// holds: a running subscriber's are settled by one check. Before, it
// checked once per subscription (100 here), each subscription having a
// time of its own (review).
func TestSweepOncePerProcess(t *testing.T) {
	clock := time.Unix(1e9, 0)
	b := NewBroker()
	b.now = func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	checks := map[int]int{}
	b.alive = func(pid int, _ time.Time) bool { checks[pid]++; return true }
	for range 100 {
		for _, pid := range []int{4242, 4343} {
			if _, err := b.subscribe(pid, subscribeRequest{Pattern: "a"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.sweep()
	if checks[4242] != 1 || checks[4343] != 1 || len(checks) != 2 {
		t.Errorf("two processes of 100 subscriptions each: checks %v in one sweep; want one each", checks)
	}
	if n := len(b.Stats().Subscriptions); n != 200 {
		t.Errorf("%d subscriptions after the sweep, want 200", n)
	}
}

// Judged once per process, each subscription still gets its own verdict:
// a process gone ends all of its; a pid now another process's (started
// after some of them) ends those made before it started, and keeps the
// new process's.
func TestSweepReusedPID(t *testing.T) {
	clock := time.Unix(1e9, 0)
	b := NewBroker()
	b.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	const gone, reused = 10, 20
	var started time.Time // when the process now holding pid reused started
	checks := 0
	b.alive = func(pid int, since time.Time) bool {
		checks++
		return pid == reused && !since.Before(started)
	}
	ids := map[uint64]string{}
	sub := func(pid int, what string) {
		rep, err := b.subscribe(pid, subscribeRequest{Pattern: "a"})
		if err != nil {
			t.Fatal(err)
		}
		ids[rep.ID] = what
	}
	for range 5 {
		sub(gone, "dead")
		sub(reused, "dead")
	}
	started = clock.Add(time.Second / 2)
	for range 7 {
		sub(reused, "alive")
	}
	b.sweep()
	left := map[uint64]bool{}
	for _, s := range b.Stats().Subscriptions {
		left[s.ID] = true
	}
	for id, what := range ids {
		if left[id] != (what == "alive") {
			t.Errorf("subscription %d (%s): kept %v", id, what, left[id])
		}
	}
	if checks > 2+2+4 { // gone: 2; reused: 2, and a bisection of the 10 between its first and last
		t.Errorf("%d checks for two processes", checks)
	}
}
