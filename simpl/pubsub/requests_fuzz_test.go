package pubsub

import (
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/typed"
)

// FuzzBrokerRequests: the broker's requests come off the wire with every
// field the sender's to choose (docs/pubsub.md): any topic, pattern and
// mode, any queue size, lease, batch size, reply budget, subscription
// id, epoch and acknowledgement. Taken as the handlers take them (a topic
// or pattern CheckTopic or CheckPattern refuses never reaches the
// broker), none crashes the broker, every refusal is a typed.Error with
// one of the documented codes, and what it grants stays within its
// limits: a queue of 1 to its maximum, a lease of up to MaxLease, batches
// of at most the messages asked for (MaxBatch at most) and, for a new
// batch, at most the reply's budget in bytes.
func FuzzBrokerRequests(f *testing.F) {
	f.Add("a/b", []byte("hello"), "a/#", "queue", 4, int64(time.Second), true, 0, 1<<20, false, uint64(0), uint64(0), uint64(0))
	f.Add("t", []byte{}, "+", "latest", 0, int64(0), false, 1, 64, true, uint64(1), uint64(0), uint64(1))
	f.Add("x", make([]byte, 100), "#", "", -5, int64(-1), true, -3, -1, false, uint64(0), uint64(1), uint64(7))
	f.Add("", []byte("x"), "", "bogus", 1<<30, int64(1<<62), false, 1<<30, 0, true, uint64(1<<63), uint64(2), uint64(0))
	f.Add("a/+", []byte("y"), "a/b/", "queue", 3, int64(48*time.Hour), true, 5000, 1<<31-1, false, uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, topic string, data []byte, pattern, mode string, queue int, lease int64, current bool,
		max, budget int, otherID bool, id, epochMix, ack uint64) {
		const maxQueue = 8
		clock := time.Unix(1e9, 0)
		b := NewBroker(WithMaxTopics(4), WithMaxSubscriptions(2), WithMaxQueue(maxQueue), WithMaxData(256),
			WithMaxQueueBytes(512), WithMaxQueuedBytes(1024), WithMaxRetained(512))
		b.now = func() time.Time { return clock }
		b.alive = func(int, time.Time) bool { return true }
		const pid = 7
		refused := func(what string, err error, codes ...typed.Code) {
			var e *typed.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v is no typed.Error", what, err)
			}
			for _, c := range codes {
				if e.Code == c {
					return
				}
			}
			t.Fatalf("%s: error code %d (%v), want one of %v", what, e.Code, err, codes)
		}
		publish := func() {
			if CheckTopic(topic) != nil || len(data) > b.o.maxData {
				return // handlePublish refuses it
			}
			if _, _, err := b.publish(topic, data); err != nil {
				refused("publish", err, codeLimit)
			}
		}

		publish()
		if CheckPattern(pattern) != nil {
			return // handleSubscribe refuses it
		}
		req := subscribeRequest{Pattern: pattern, Mode: Mode(mode), Queue: queue, Lease: time.Duration(lease), Current: current}
		rep, err := b.subscribe(pid, req)
		if err != nil {
			refused("subscribe", err, typed.CodeFailed, codeLimit)
			if req.Mode == "" || req.Mode == Queue || req.Mode == Latest {
				t.Fatalf("subscribe %+v: %v", req, err)
			}
			return
		}
		if req.Mode != "" && req.Mode != Queue && req.Mode != Latest {
			t.Fatalf("subscribe in mode %q granted", req.Mode)
		}
		if rep.Queue < 1 || rep.Queue > maxQueue || rep.Lease <= 0 || rep.Lease > MaxLease || rep.ID == 0 || rep.Epoch != b.epoch {
			t.Fatalf("subscribe %+v: granted %+v", req, rep)
		}
		publish()
		publish()

		want := max
		if want <= 0 {
			want = DefaultBatch
		}
		want = min(want, MaxBatch)
		check := func(what string, r *nextReply, fresh bool) {
			if r == nil {
				t.Fatalf("%s: NoWait, but held", what)
			}
			if len(r.Messages) > want {
				t.Fatalf("%s: %d messages, at most %d asked for", what, len(r.Messages), want)
			}
			size := 0
			for _, m := range r.Messages {
				size += len(m.Topic) + len(m.Data) + messageOverhead
			}
			if fresh && len(r.Messages) > 0 && size > budget {
				t.Fatalf("%s: %d bytes of messages for a budget of %d", what, size, budget)
			}
		}
		// The owner's first Next: a new batch.
		r, _, err := b.next(pid, origin{}, nextRequest{ID: rep.ID, Epoch: rep.Epoch, Max: max, NoWait: true}, &held{max: max, budget: budget})
		if err != nil {
			t.Fatalf("first Next: %v", err)
		}
		check("first Next", r, true)

		// Then one with the fuzzer's id, epoch and acknowledgement.
		nid, nepoch := rep.ID, rep.Epoch
		if otherID {
			nid = id
		}
		nepoch ^= epochMix
		r, _, err = b.next(pid, origin{}, nextRequest{ID: nid, Epoch: nepoch, Ack: ack, Max: max, NoWait: true}, &held{max: max, budget: budget})
		if err != nil {
			refused("Next", err, codeNoSubscription)
			if nid == rep.ID && nepoch == rep.Epoch {
				t.Fatalf("Next of the owner's own subscription: %v", err)
			}
		} else {
			check("Next", r, false)
		}
		if _, _, err := b.unsubscribe(pid, origin{}, unsubscribeRequest{ID: nid, Epoch: nepoch, Ack: ack}); err != nil {
			refused("Unsubscribe", err, codeNoSubscription)
		}
		if s := b.Stats(); len(s.Subscriptions) > 1 {
			t.Fatalf("%d subscriptions", len(s.Subscriptions))
		}
	})
}
