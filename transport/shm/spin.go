package shm

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Spin budgets. A waiter spins up to its budget before it sleeps on its
// futex. The budget doubles (to maxSpin) when a spin ends in success and
// halves (to minSpin) when it ends in sleep, so a ping-pong exchange keeps
// spinning while an idle server soon sleeps at once, paying a futex wake
// per message like the spin-off mode. Spinning needs a second CPU to make
// progress on, so with one CPU there is none.
const (
	minSpin  = 2 * time.Microsecond
	maxSpin  = 50 * time.Microsecond
	initSpin = 20 * time.Microsecond
)

// spinner is an adaptive spin budget. Safe for concurrent use.
type spinner struct {
	off    bool
	budget atomic.Int64 // nanoseconds
}

func (s *spinner) init(noSpin bool) {
	s.off = noSpin || runtime.NumCPU() < 2
	s.budget.Store(int64(initSpin))
}

// start returns the time the spin must end by.
func (s *spinner) start() time.Time {
	if s.off {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(s.budget.Load()))
}

// more reports whether there is budget left.
func (s *spinner) more(deadline time.Time) bool {
	return !s.off && time.Now().Before(deadline)
}

// done adapts the budget to how the spin ended.
func (s *spinner) done(_ time.Time, won bool) {
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
