package pubsub

import (
	"testing"
	"time"
)

// Next and Unsubscribe are refused to every process but the subscriber,
// whichever side is on another host: a request from another host carries
// pid 0 and its origin, and the broker compares origins whenever either
// side is remote. Before, it compared only two local pids, so any remote
// process could take (and acknowledge) anyone's messages or end anyone's
// subscription, and any local process a remote subscriber's (review).
func TestOwnerAcrossHosts(t *testing.T) {
	b := NewBroker()
	b.alive = func(int, time.Time) bool { return true }
	const local = 4242
	b77, b78, c77 := origin{host: "b", pid: 77}, origin{host: "b", pid: 78}, origin{host: "c", pid: 77}
	type who struct {
		pid  int
		from origin
	}
	for _, tc := range []struct {
		name   string
		owner  who
		others []who
	}{
		{"local", who{local, origin{}}, []who{{0, b77}, {local + 1, origin{}}, {0, origin{}}}},
		{"remote", who{0, b77}, []who{{local, origin{}}, {0, b78}, {0, c77}, {0, origin{}}}},
	} {
		rep, err := b.subscribeFrom(tc.owner.pid, tc.owner.from, subscribeRequest{Pattern: "a/" + tc.name})
		if err != nil {
			t.Fatal(err)
		}
		b.publish("a/"+tc.name, []byte("secret"))
		for _, o := range tc.others {
			r, _, err := b.next(o.pid, o.from, nextRequest{ID: rep.ID, Epoch: b.epoch, NoWait: true}, &held{max: 10, budget: 1 << 20})
			if !isCode(err, codeNoSubscription) {
				t.Errorf("%s subscription: Next from pid %d %+v: %+v, %v; want refused", tc.name, o.pid, o.from, r, err)
			}
			if _, _, err := b.unsubscribe(o.pid, o.from, unsubscribeRequest{ID: rep.ID, Epoch: b.epoch}); !isCode(err, codeNoSubscription) {
				t.Errorf("%s subscription: Unsubscribe from pid %d %+v: %v; want refused", tc.name, o.pid, o.from, err)
			}
		}
		// Its owner takes the message, and ends it.
		r, _, err := b.next(tc.owner.pid, tc.owner.from, nextRequest{ID: rep.ID, Epoch: b.epoch, NoWait: true}, &held{max: 10, budget: 1 << 20})
		if err != nil || len(r.Messages) != 1 || string(r.Messages[0].Data) != "secret" {
			t.Fatalf("%s subscription: its owner's Next: %+v, %v; want the message", tc.name, r, err)
		}
		if _, _, err := b.unsubscribe(tc.owner.pid, tc.owner.from, unsubscribeRequest{ID: rep.ID, Epoch: b.epoch, Ack: r.Batch}); err != nil {
			t.Fatalf("%s subscription: its owner's Unsubscribe: %v", tc.name, err)
		}
	}
	// Neither side's credentials known (pid 0, not remote): nothing to
	// compare, as before.
	rep, err := b.subscribeFrom(0, origin{}, subscribeRequest{Pattern: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.unsubscribe(0, origin{}, unsubscribeRequest{ID: rep.ID, Epoch: b.epoch}); err != nil {
		t.Fatalf("Unsubscribe, no credentials either side: %v", err)
	}
}
