package pubsub

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/typed"
)

// model drives a Broker's state machine directly (no Channel): clients
// that subscribe, ask for batches, lose replies and give up, processes
// that die and leases that run out. After every step it checks what the
// package promises: per topic, every subscriber sees seq increasing and
// never twice; every message queued for a subscription is delivered,
// counted dropped, or still queued (exactly); a queue never holds more
// than its size, nor, in latest mode, two messages of one topic; and the
// metrics' counters add up.
type model struct {
	t       testing.TB
	b       *Broker
	clock   time.Time
	dead    map[int]bool
	clients []*client
	fanout  uint64 // queued messages, counting every subscription a publish went to
}

type client struct {
	pid      int
	id       uint64
	pattern  string
	gone     bool   // unsubscribed, or found ended
	waiting  bool   // a Next is held for it and it still waits
	ack      uint64 // last batch received
	received uint64
	last     map[string]uint64 // per topic, the last seq received
	offered  uint64            // messages queued for it (its pattern matched)
	budget   int
}

func newModel(t testing.TB) *model {
	m := &model{t: t, clock: time.Unix(1e9, 0), dead: make(map[int]bool)}
	m.b = NewBroker(WithMaxTopics(6), WithMaxSubscriptions(8), WithMaxQueue(5), WithMaxRetained(100), WithDefaultLease(5*time.Second), WithMaxData(64),
		WithMaxQueueBytes(80), WithMaxQueuedBytes(200))
	m.b.now = func() time.Time { return m.clock }
	m.b.alive = func(pid int, _ time.Time) bool { return !m.dead[pid] }
	return m
}

var (
	modelTopics   = []string{"a", "a/b", "a/c", "b/b", "a/b/c", "c", "d", "e"}
	modelPatterns = []string{"#", "a", "a/+", "a/#", "+/b", "b/#", "+", "a/b/c"}
)

func (m *model) publish(topic string, size int) {
	rep, wakes, err := m.b.publish(topic, make([]byte, size))
	if err != nil {
		if !isCode(err, codeLimit) {
			m.t.Fatalf("publish %q: %v", topic, err)
		}
		return
	}
	n := 0
	for _, c := range m.clients {
		if !c.gone && Match(c.pattern, topic) {
			c.offered++
			n++
		}
	}
	if n != rep.Subscribers {
		m.t.Fatalf("publish %q went to %d subscriptions, want %d", topic, rep.Subscribers, n)
	}
	m.fanout += uint64(n)
	m.wakes(wakes)
}

func (m *model) wakes(wakes []wake) {
	for _, w := range wakes {
		if w.s == nil {
			continue
		}
		c := m.clientOf(w.s.id)
		if c == nil || !c.waiting {
			continue // it gave up: the reply is lost
		}
		c.waiting = false
		if w.err != nil {
			c.gone = true
			continue
		}
		m.take(c, w.rep)
	}
}

func (m *model) clientOf(id uint64) *client {
	for _, c := range m.clients {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (m *model) take(c *client, rep nextReply) {
	if rep.Batch == 0 {
		if len(rep.Messages) != 0 {
			m.t.Fatalf("an empty batch number with %d messages", len(rep.Messages))
		}
		return
	}
	if rep.Batch != c.ack+1 {
		m.t.Fatalf("sub %d: batch %d after %d", c.id, rep.Batch, c.ack)
	}
	c.ack = rep.Batch
	for _, msg := range rep.Messages {
		if !Match(c.pattern, msg.Topic) {
			m.t.Fatalf("sub %d (%q) got topic %q", c.id, c.pattern, msg.Topic)
		}
		if msg.Seq <= c.last[msg.Topic] {
			m.t.Fatalf("sub %d: topic %q seq %d after %d", c.id, msg.Topic, msg.Seq, c.last[msg.Topic])
		}
		c.last[msg.Topic] = msg.Seq
		c.received++
	}
}

func (m *model) subscribe(pattern string, queue int, latest, current bool) {
	mode := Queue
	if latest {
		mode = Latest
	}
	pid := 100 + len(m.clients)
	rep, err := m.b.subscribe(pid, subscribeRequest{Pattern: pattern, Mode: mode, Queue: queue, Current: current})
	if err != nil {
		if !isCode(err, codeLimit) {
			m.t.Fatalf("subscribe: %v", err)
		}
		return
	}
	c := &client{pid: pid, id: rep.ID, pattern: pattern, last: make(map[string]uint64), budget: 1 << 20}
	m.b.mu.Lock()
	c.offered = uint64(m.b.subs[rep.ID].q.n) // the current values it starts with
	m.b.mu.Unlock()
	m.fanout += c.offered
	m.clients = append(m.clients, c)
}

func (m *model) next(c *client, noWait, lose bool) {
	if c.waiting {
		c.waiting = false // it gives up on the held one and asks again
	}
	h := &held{max: 1 + int(c.received%3), budget: c.budget}
	rep, _, err := m.b.next(c.pid, origin{}, nextRequest{ID: c.id, Epoch: m.b.epoch, Ack: c.ack, NoWait: noWait}, h)
	switch {
	case err != nil:
		if !isCode(err, codeNoSubscription) {
			m.t.Fatalf("next: %v", err)
		}
		c.gone = true
	case rep == nil:
		if noWait {
			m.t.Fatal("a NoWait Next was held")
		}
		c.waiting = true
	case !lose:
		m.take(c, *rep)
	}
}

func (m *model) unsubscribe(c *client) {
	_, wakes, err := m.b.unsubscribe(c.pid, origin{}, unsubscribeRequest{ID: c.id, Epoch: m.b.epoch, Ack: c.ack})
	if err != nil && !isCode(err, codeNoSubscription) {
		m.t.Fatalf("unsubscribe: %v", err)
	}
	c.gone, c.waiting = true, false
	m.wakes(wakes)
}

func isCode(err error, code typed.Code) bool {
	var e *typed.Error
	return errors.As(err, &e) && e.Code == code
}

// check verifies the invariants.
func (m *model) check() {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var queued, delivered, dropped uint64
	var queuedBytes int64
	for _, t := range b.topics {
		delivered += t.delivered
		for _, d := range t.dropped {
			dropped += d
		}
	}
	for _, c := range m.clients {
		s := b.subs[c.id]
		if s == nil {
			if !c.gone {
				// Ended by the broker: the client learns it on its next call.
				c.gone = true
			}
			continue
		}
		if c.gone {
			m.t.Fatalf("sub %d is gone for its client but not at the broker", c.id)
		}
		if s.q.n > s.q.size {
			m.t.Fatalf("sub %d holds %d, its size is %d", c.id, s.q.n, s.q.size)
		}
		var bytes int64
		for i := range s.q.n {
			bytes += int64(len(s.q.at(s.q.head + uint64(i)).data))
		}
		if bytes != s.q.bytes {
			m.t.Fatalf("sub %d holds %d bytes, counts %d", c.id, bytes, s.q.bytes)
		}
		var flying int64
		for _, e := range s.flight {
			flying += int64(len(e.data))
		}
		if flying != s.inflight {
			m.t.Fatalf("sub %d has %d bytes in flight, counts %d", c.id, flying, s.inflight)
		}
		if s.q.n > 1 && bytes+flying > b.o.maxQueueBytes {
			m.t.Fatalf("sub %d holds %d messages of %d bytes and %d in flight, the limit is %d", c.id, s.q.n, bytes, flying, b.o.maxQueueBytes)
		}
		queuedBytes += bytes + flying
		if s.mode == Latest {
			seen := map[*topic]bool{}
			for i := range s.q.n {
				e := s.q.at(s.q.head + uint64(i))
				if seen[e.t] {
					m.t.Fatalf("latest sub %d queues topic %q twice", c.id, e.t.name)
				}
				seen[e.t] = true
			}
			if len(s.q.idx) != s.q.n {
				m.t.Fatalf("latest sub %d: index of %d for %d entries", c.id, len(s.q.idx), s.q.n)
			}
		}
		inFlight := uint64(0)
		if s.flight != nil && s.batch != c.ack { // sent, not received
			inFlight = uint64(len(s.flight))
		}
		if got := c.received + s.dropped + uint64(s.q.n) + inFlight; got != c.offered {
			m.t.Fatalf("sub %d: received %d + dropped %d + queued %d + in flight %d = %d, offered %d",
				c.id, c.received, s.dropped, s.q.n, inFlight, got, c.offered)
		}
		queued += uint64(s.q.n + len(s.flight))
	}
	if delivered+dropped+queued != m.fanout {
		m.t.Fatalf("delivered %d + dropped %d + queued %d != %d queued in all", delivered, dropped, queued, m.fanout)
	}
	if b.retBytes > b.o.maxRetained {
		m.t.Fatalf("retained %d bytes, the limit is %d", b.retBytes, b.o.maxRetained)
	}
	if queuedBytes != b.queued {
		m.t.Fatalf("the queues and batches in flight hold %d bytes, the broker counts %d", queuedBytes, b.queued)
	}
	// Past the limit only by two messages a subscription: the newest of
	// its queue, kept, and a batch of one sent while past it.
	if limit := b.o.maxQueuedBytes + 2*int64(len(b.subs))*int64(b.o.maxData); b.queued > limit {
		m.t.Fatalf("the queues and batches in flight hold %d bytes, more than %d", b.queued, limit)
	}
}

func (m *model) run(ops []byte) {
	for i := 0; i+2 < len(ops); i += 3 {
		op, x, y := ops[i], int(ops[i+1]), int(ops[i+2])
		var c *client
		if len(m.clients) > 0 {
			c = m.clients[x%len(m.clients)]
		}
		switch op % 8 {
		case 0, 1:
			m.publish(modelTopics[x%len(modelTopics)], y%40)
		case 2:
			m.subscribe(modelPatterns[x%len(modelPatterns)], y%7, y&8 != 0, y&16 != 0)
		case 3, 4:
			if c != nil && !c.gone {
				if y&4 != 0 {
					c.budget = 100 // some messages will not fit
				}
				m.next(c, y&1 != 0, y&2 != 0)
			}
		case 5:
			if c != nil && !c.gone {
				m.unsubscribe(c)
			}
		case 6:
			if c != nil && y&7 == 7 {
				m.dead[c.pid] = true
			}
			d := time.Duration(y) * time.Millisecond
			if y > 240 {
				d *= 30 // past the lease
			}
			m.clock = m.clock.Add(d)
			m.b.sweep()
		case 7:
			if c != nil {
				c.waiting = false // gives up on its held Next
			}
		}
		m.check()
	}
}

func FuzzBroker(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0, 5, 3, 0, 0, 0, 1, 1, 3, 0, 2, 0, 2, 3})
	f.Add([]byte{2, 1, 2, 2, 2, 9, 0, 0, 1, 0, 3, 1, 0, 1, 1, 3, 0, 0, 3, 1, 2, 6, 0, 200, 0, 0, 0})
	f.Add([]byte{2, 3, 24, 0, 1, 30, 0, 2, 30, 2, 3, 16, 3, 0, 4, 3, 0, 0, 5, 0, 0, 6, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		newModel(t).run(ops)
	})
}

// TestBrokerModel runs the model on pseudo-random operations.
func TestBrokerModel(t *testing.T) {
	for seed := range 50 {
		ops := make([]byte, 3000)
		x := uint32(seed)*2654435761 + 1
		for i := range ops {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			ops[i] = byte(x)
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { newModel(t).run(ops) })
	}
}
