package pubsub

import (
	"fmt"
	"testing"
	"time"
)

// A batch sent and not acknowledged stays counted against the budgets
// until it is: a subscriber that stops after taking one, or asks again
// and again with an old Ack (and so gets the same batch, its lease
// renewed), does not pin a reply buffer's worth beyond them. Before, a
// batch left the count when it was sent: 16 such subscribers held 16
// times WithMaxQueuedBytes (review).
func TestFlightCounted(t *testing.T) {
	const budget = 1 << 20 // every subscription's data together
	const subs, per, size = 16, 64, 16 << 10
	b := NewBroker(WithMaxQueuedBytes(budget), WithMaxRetained(0))
	b.alive = func(int, time.Time) bool { return true }
	for i := range subs {
		pid := 1000 + i
		topic := fmt.Sprintf("t/%d", i)
		rep, err := b.subscribe(pid, subscribeRequest{Pattern: topic, Queue: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for range per { // 1 MiB for each
			if _, _, err := b.publish(topic, make([]byte, size)); err != nil {
				t.Fatal(err)
			}
		}
		// A large reply buffer takes all there is...
		h := &held{max: MaxBatch, budget: 64 << 20}
		r, _, err := b.next(pid, origin{}, nextRequest{ID: rep.ID, Epoch: b.epoch, Max: MaxBatch, NoWait: true}, h)
		if err != nil || r.Batch == 0 {
			t.Fatalf("sub %d: Next: %+v, %v", i, r, err)
		}
		// ...and asks again without acknowledging it: the same batch.
		r2, _, err := b.next(pid, origin{}, nextRequest{ID: rep.ID, Epoch: b.epoch, NoWait: true}, h)
		if err != nil || r2.Batch != r.Batch {
			t.Fatalf("sub %d: Next with the old Ack: %+v, %v; want batch %d again", i, r2, err, r.Batch)
		}
	}
	b.mu.Lock()
	var kept int64
	for _, s := range b.subs {
		kept += s.q.bytes
		for _, e := range s.flight {
			kept += int64(len(e.data))
		}
	}
	queued := b.queued
	b.mu.Unlock()
	if kept != queued {
		t.Errorf("the queues and batches in flight hold %d bytes, the broker counts %d", kept, queued)
	}
	// Beyond the budget: at most the newest message of each queue and a
	// batch of one (docs/pubsub.md).
	if limit := int64(budget + 2*subs*size); kept > limit {
		t.Errorf("the broker holds %d bytes for its subscribers (%.1fx WithMaxQueuedBytes %d); want at most %d",
			kept, float64(kept)/budget, budget, limit)
	}
	// Acknowledged, a batch leaves the count.
	b.mu.Lock()
	s := b.subs[1]
	ack, before := s.batch, b.queued
	b.mu.Unlock()
	if _, _, err := b.next(s.pid, origin{}, nextRequest{ID: 1, Epoch: b.epoch, Ack: ack, NoWait: true}, &held{max: 1, budget: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	after, inflight := b.queued, s.inflight
	b.mu.Unlock()
	if inflight != 0 || after >= before {
		t.Errorf("after the Ack: %d bytes in flight, the broker counts %d (%d before); want them gone", inflight, after, before)
	}
}

// The budget of one subscription's queue counts its unacknowledged batch
// too: a subscriber that took a batch and stopped holds no more than
// WithMaxQueueBytes (with its newest message).
func TestFlightCountedPerQueue(t *testing.T) {
	const budget, size = 64 << 10, 1 << 10
	b := NewBroker(WithMaxQueueBytes(budget), WithMaxRetained(0))
	b.alive = func(int, time.Time) bool { return true }
	rep, err := b.subscribe(1, subscribeRequest{Pattern: "a", Queue: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for range 2 * budget / size {
			b.publish("a", make([]byte, size))
		}
		b.next(1, origin{}, nextRequest{ID: rep.ID, Epoch: b.epoch, Max: MaxBatch, NoWait: true}, &held{max: MaxBatch, budget: 64 << 20})
	}
	b.mu.Lock()
	s := b.subs[rep.ID]
	q, flying := s.q.bytes, int64(0)
	for _, e := range s.flight {
		flying += int64(len(e.data))
	}
	b.mu.Unlock()
	if q+flying > budget+size {
		t.Errorf("a stopped subscriber: %d bytes queued and %d in flight; want at most %d", q, flying, budget+size)
	}
}
