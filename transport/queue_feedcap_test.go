package transport

import (
	"context"
	"strings"
	"testing"
	"time"
)

// hiSource is a PrioSource of n requests at one priority, always active,
// for the Queue's side of priority order.
type hiSource struct {
	h    *prioHandle
	ids  []uint64
	prio Prio
}

func (s *hiSource) Poll() (Request, int, bool) {
	best, _, ok := s.Candidates()
	if !ok {
		return Request{}, 0, false
	}
	return s.Take(best)
}
func (s *hiSource) Active() bool { return true }
func (s *hiSource) Candidates() (best, oldest Candidate, ok bool) {
	if len(s.ids) == 0 {
		return Candidate{}, Candidate{}, false
	}
	// Tickets far ahead of the held ones' would have the window pick
	// those: these arrived with them.
	c := Candidate{Rank: s.prio.Rank(), Ticket: 0, ID: 0}
	return c, c, true
}
func (s *hiSource) Take(Candidate) (Request, int, bool) {
	id := s.ids[0]
	s.ids = s.ids[1:]
	return NewRequest(s.h, id), 0, true
}
func (s *hiSource) MaxWaiting() (Prio, bool) { return s.prio, len(s.ids) > 0 }

// nopBell never sleeps: the test's Source is never empty when asked.
type nopBell struct{}

func (nopBell) Arm() uint32  { return 0 }
func (nopBell) Sleep(uint32) {}
func (nopBell) Disarm()      {}
func (nopBell) Ring()        {}
func (nopBell) WakeAll()     {}

// oneFeeder holds one request, read by the first Feed.
type oneFeeder struct {
	r    Request
	read bool
}

func (f *oneFeeder) Feed() (Request, int, bool) {
	if f.read {
		return Request{}, 0, false
	}
	f.read = true
	return f.r, 0, true
}
func (f *oneFeeder) Wait(func() bool) {}
func (f *oneFeeder) Wake()            {}
func (f *oneFeeder) Watch(bool)       {}

// With QueueDepth requests held for ordering and higher ones waiting in
// the Source, a request the Feeder holds (a FIFO request, carrying no
// priority) is left unread rather than read and received at once ahead
// of them all: before, the Receive that read it returned it, skipping
// priority order.
func TestFeedAtHeldCap(t *testing.T) {
	h := &prioHandle{prio: map[uint64]Prio{}, name: map[uint64]string{}}
	q := NewQueue("FEEDCAP", true)
	q.SetPriorityOrder()
	defer q.Close()
	for range QueueDepth {
		h.post(q, "posted", Prio{}, false) // nice 0, carrying none
	}
	high := Prio{Policy: SchedOther, Level: -5}
	src := &hiSource{h: h, prio: high}
	for range 2 * feedEvery {
		id := uint64(len(h.name) + 1)
		h.name[id], h.prio[id] = "high", high
		src.ids = append(src.ids, id)
	}
	if err := q.SetSource(src, nopBell{}); err != nil {
		t.Fatal(err)
	}
	id := uint64(len(h.name) + 1)
	h.name[id] = "fifo"
	f := &oneFeeder{r: NewRequest(h, id)}
	if err := q.SetFeeder(f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for range 2 * feedEvery {
		r, _, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(r.Data()))
	}
	if want := strings.TrimSpace(strings.Repeat("high ", 2*feedEvery)); strings.Join(got, " ") != want {
		t.Errorf("received %q, want every high request first", strings.Join(got, " "))
	}
	if f.read {
		t.Error("the Feeder's request was read with the held requests at QueueDepth")
	}
}
