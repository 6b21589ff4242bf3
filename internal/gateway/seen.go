package gateway

import (
	"sync"
	"time"
)

// seen remembers the ids of the requests a gateway took in the last
// window, at most max of them, so that a request that arrives twice is
// delivered once. When more than max arrive within a window the oldest
// are forgotten early: memory stays bounded (about 150 bytes an id) and
// the window shrinks. It takes memory as ids come, not max's worth at
// once (a gateway that serves nothing, in every program that goes
// straight to NATS, takes none). Safe for concurrent use.
type seen struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	ids    map[string]struct{}
	order  []seenID // oldest first, a ring grown as needed up to max entries
	head   int      // index of the oldest in order
	n      int      // how many order holds
}

type seenID struct {
	id string
	at time.Time
}

func newSeen(window time.Duration, max int) *seen {
	return &seen{window: window, max: max, ids: make(map[string]struct{})}
}

// grow doubles the ring (from 64, up to max), oldest first again.
func (s *seen) grow() {
	bigger := make([]seenID, min(max(2*len(s.order), 64), s.max))
	for i := range s.n {
		bigger[i] = s.order[(s.head+i)%len(s.order)]
	}
	s.order, s.head = bigger, 0
}

// add records id at now and reports whether it is new.
func (s *seen) add(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Forget what is older than the window, and the oldest if full.
	for s.n > 0 {
		old := s.order[s.head]
		if now.Sub(old.at) < s.window && s.n < s.max {
			break
		}
		delete(s.ids, old.id)
		s.order[s.head] = seenID{}
		s.head = (s.head + 1) % len(s.order)
		s.n--
	}
	if _, dup := s.ids[id]; dup {
		return false
	}
	if s.n == len(s.order) {
		s.grow()
	}
	s.ids[id] = struct{}{}
	s.order[(s.head+s.n)%len(s.order)] = seenID{id: id, at: now}
	s.n++
	return true
}
