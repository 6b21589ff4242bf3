package pubsub

import (
	"testing"
	"time"
)

// Past the budget of every queue together, the largest queue gives way:
// a subscriber that stopped taking, its queue full, does not leave
// another, healthy, one a single message. Before, the queue a message
// went to gave way, whatever the others held (review).
func TestSharedBudgetLargestFirst(t *testing.T) {
	b := NewBroker(WithMaxQueueBytes(1200), WithMaxQueuedBytes(1500), WithMaxData(100))
	b.alive = func(int, time.Time) bool { return true }
	stalled, err := b.subscribe(1, subscribeRequest{Pattern: "junk"})
	if err != nil {
		t.Fatal(err)
	}
	healthy, err := b.subscribe(2, subscribeRequest{Pattern: "plant/#"})
	if err != nil {
		t.Fatal(err)
	}
	for range 24 { // 1200 bytes: its own budget, full
		if _, _, err := b.publish("junk", make([]byte, 50)); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // 500 bytes more: past the shared budget
		if _, _, err := b.publish("plant/temp", make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	h, s := b.subs[healthy.ID], b.subs[stalled.ID]
	if h.q.n != 5 || h.dropped != 0 {
		t.Errorf("the healthy queue holds %d of 5 messages (%d dropped); want all", h.q.n, h.dropped)
	}
	if b.queued > 1500 || s.q.bytes != b.queued-h.q.bytes {
		t.Errorf("queued %d bytes (the stalled queue %d, the healthy %d); want at most 1500", b.queued, s.q.bytes, h.q.bytes)
	}
}
