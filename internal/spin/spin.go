// Package spin is the adaptive spin budget that waiters on shared memory
// use before they sleep: the receive queue and the shared-memory sender.
package spin

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Spin budgets. A waiter spins up to its budget before it sleeps. The
// budget doubles (to maxSpin) when a spin ends in success and halves (to
// minSpin) when it ends in sleep, so a ping-pong exchange keeps spinning
// while an idle server soon sleeps at once, paying a futex wake per
// message like the spin-off mode. Spinning needs a second CPU to make
// progress on, so with one CPU there is none.
const (
	minSpin  = 2 * time.Microsecond
	maxSpin  = 50 * time.Microsecond
	initSpin = 20 * time.Microsecond
)

// Budget is an adaptive spin budget. The zero Budget spins with the
// initial budget once Init is called. Safe for concurrent use.
type Budget struct {
	off    bool
	budget atomic.Int64 // nanoseconds
}

// Init sets the budget up; noSpin (or a single CPU) turns spinning off.
func (s *Budget) Init(noSpin bool) {
	s.off = noSpin || runtime.NumCPU() < 2
	s.budget.Store(int64(initSpin))
}

// Start returns the time the spin must end by.
func (s *Budget) Start() time.Time {
	if s.off {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(s.budget.Load()))
}

// More reports whether there is budget left.
func (s *Budget) More(deadline time.Time) bool {
	return !s.off && time.Now().Before(deadline)
}

// Done adapts the budget to how the spin ended.
func (s *Budget) Done(won bool) {
	if s.off {
		return
	}
	b := s.budget.Load()
	if won {
		b = min(2*b, int64(maxSpin))
	} else {
		b = max(b/2, int64(minSpin))
	}
	s.budget.Store(b)
}
