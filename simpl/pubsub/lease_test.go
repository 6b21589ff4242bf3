package pubsub

import (
	"testing"
	"time"
)

// A Next held for a whole lease is answered with nothing, and the lease
// runs from that answer: a subscriber that gave up on its Next and
// forgot the subscription loses it after two leases. Before, a held Next
// exempted its subscription from the lease for as long as the process
// lived, and forgotten ones piled up to the subscription limit.
func TestHeldNextLease(t *testing.T) {
	clock := time.Unix(1e9, 0)
	b := NewBroker(WithDefaultLease(time.Second))
	b.now = func() time.Time { return clock }
	b.alive = func(int, time.Time) bool { return true }
	const pid = 4242
	rep, err := b.subscribe(pid, subscribeRequest{Pattern: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if r, _, err := b.next(pid, origin{}, nextRequest{ID: rep.ID, Epoch: b.epoch}, &held{max: 1, budget: 1 << 20}); r != nil || err != nil {
		t.Fatalf("Next with nothing queued: %+v, %v; want it held", r, err)
	}
	clock = clock.Add(2 * time.Second)
	b.sweep()
	b.mu.Lock()
	s := b.subs[rep.ID]
	b.mu.Unlock()
	if s == nil || s.held != nil {
		t.Fatalf("after a lease with its Next held: subscription %+v; want it kept, its Next answered", s)
	}
	clock = clock.Add(2 * time.Second)
	b.sweep()
	b.mu.Lock()
	s, ended := b.subs[rep.ID], b.ended[endLease]
	b.mu.Unlock()
	if s != nil || ended != 1 {
		t.Fatalf("after another lease with no Next: subscription %+v, %d ended by lease; want it ended", s, ended)
	}
}
