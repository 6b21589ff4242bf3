package transport

import (
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// Prio is a thread's scheduling policy and priority, as priority
// inheritance carries it from a sender to the thread serving its request:
// Level is the real-time priority (1..99) for SchedFIFO and SchedRR, the
// nice value (-20..19) for SchedOther and SchedBatch, and 0 for
// SchedIdle.
type Prio struct {
	Policy int
	Level  int
}

// Scheduling policies, as Linux numbers them.
const (
	SchedOther = sys.SchedOther
	SchedFIFO  = sys.SchedFIFO
	SchedRR    = sys.SchedRR
	SchedBatch = sys.SchedBatch
	SchedIdle  = sys.SchedIdle
)

// DefaultPrio is what a request that carries no priority counts as: a
// FIFO request (C SIMPL has no field for it), a proxy, a request from a
// sender that does not carry its priority.
var DefaultPrio = Prio{Policy: SchedOther}

// Valid reports whether p is a policy and level that Linux accepts and
// this package carries (not SCHED_DEADLINE).
func (p Prio) Valid() bool { return sys.Sched(p).Check() == nil }

// Rank orders priorities as the kernel's scheduler does: every real-time
// priority above every other policy, a higher real-time priority above a
// lower, a lower nice above a higher, SchedIdle lowest. SchedFIFO and
// SchedRR of one level rank alike, and so do SchedOther and SchedBatch of
// one nice. An invalid p ranks 0, below everything.
func (p Prio) Rank() uint32 {
	if !p.Valid() {
		return 0
	}
	switch p.Policy {
	case SchedFIFO, SchedRR:
		return 100 + uint32(p.Level) // 101..199
	case SchedOther, SchedBatch:
		return uint32(21 - p.Level) // nice 19: 2 .. nice -20: 41
	}
	return 1 // SchedIdle
}

// RankPrio is a priority of rank r (Rank's inverse, up to what Rank does
// not tell apart: SchedFIFO for SchedRR, SchedOther for SchedBatch);
// false for a rank no priority has.
func RankPrio(r uint32) (Prio, bool) {
	var p Prio
	switch {
	case r >= 101 && r <= 199:
		p = Prio{Policy: SchedFIFO, Level: int(r) - 100}
	case r >= 2 && r <= 41:
		p = Prio{Policy: SchedOther, Level: 21 - int(r)}
	case r == 1:
		p = Prio{Policy: SchedIdle}
	default:
		return Prio{}, false
	}
	return p, p.Rank() == r
}

// Prioritized is implemented by a Handle whose requests may carry their
// sender's priority (the shared-memory transport's).
type Prioritized interface {
	// Prio is the sender's priority as the request carried it; ok is
	// false when it carried none (or the transport does not believe it).
	Prio(id uint64) (p Prio, ok bool)
}

// Prio is the priority the request's sender carried with it (see
// Prioritized); ok is false when it carried none.
func (r Request) Prio() (Prio, bool) {
	if pr, ok := r.h.(Prioritized); ok {
		return pr.Prio(r.id)
	}
	return Prio{}, false
}

// rank is the rank a request counts at in priority order: its sender's
// priority, or DefaultPrio's.
func (r Request) rank() uint32 {
	if p, ok := r.Prio(); ok {
		return p.Rank()
	}
	return DefaultPrio.Rank()
}

// Candidate is a request waiting in a PrioSource, as priority order
// compares it: its rank, its arrival ticket, and the Source's id for it.
type Candidate struct {
	Rank   uint32
	Ticket uint32
	ID     int
}

// PrioSource is a Source that can be received from in priority order
// (Queue.SetPriorityOrder).
type PrioSource interface {
	Source
	// Candidates returns, among the requests waiting, the best (highest
	// rank, then earliest ticket) and the oldest (earliest ticket); ok is
	// false when none waits. A waiting proxy counts as a request carrying
	// no priority (DefaultPrio). Called by one Receive at a time.
	Candidates() (best, oldest Candidate, ok bool)
	// Take takes the waiting request (or proxy, as Poll returns one)
	// c.ID without blocking; false when it was withdrawn meanwhile.
	// Called by one Receive at a time.
	Take(c Candidate) (req Request, proxy int, ok bool)
	// MaxWaiting is the highest priority among the requests waiting
	// (DefaultPrio for those that carry none); ok is false when none
	// waits. Proxies are not counted, as posted ones are not (see
	// Queue.MaxWaiting). It is safe to call at any time, concurrently
	// with Receive.
	MaxWaiting() (p Prio, ok bool)
}

// ServingBell is a Bell on which a receiver that inherits priorities
// publishes the thread serving its requests, so that its senders can
// raise that thread while they wait (see Queue.PublishServer), and which
// numbers arrivals for priority order.
type ServingBell interface {
	Bell
	// Ticket numbers one more arrival.
	Ticket() uint32
	// Server is the serving thread's id (0: none) and ServerRank its
	// current rank, which the receiver sets and senders only raise.
	Server() *atomic.Int32
	ServerRank() *atomic.Uint32
}

// PriorityWindow bounds how far priority order lets a request be
// overtaken: a waiting request is received before any request whose
// arrival ticket is more than PriorityWindow after its own, so at most
// PriorityWindow requests that arrived after it are received before it,
// whatever their priorities.
const PriorityWindow = 16

// before reports whether ticket a is earlier than b, across wrap-around.
func before(a, b uint32) bool { return int32(a-b) < 0 }

// better reports whether candidate a goes before b in priority order,
// window aside: higher rank, then earlier ticket.
func better(a, b Candidate) bool {
	if a.Rank != b.Rank {
		return a.Rank > b.Rank
	}
	return before(a.Ticket, b.Ticket)
}
