// Package ctxwatch keeps the registrations (context.AfterFunc) by which
// the end of a context wakes a waiter, for the last few contexts a
// waiter has waited under, so that a sender that keeps its contexts, or
// takes turns between a few, registers each once and then allocates
// nothing.
package ctxwatch

import "context"

// Kept is how many contexts a Set keeps registrations for.
const Kept = 4

// A Set is the registrations of one waiter (a transport's lane or slot):
// each context among the last Kept it was given runs fn once it ends.
// The registration of the context given longest ago goes when a new one
// needs its place, so a registration may run after its context's wait is
// over: fn must check what it is waking. Not safe for concurrent use: it
// belongs to whoever holds the waiter.
type Set struct {
	ctx  [Kept]context.Context
	stop [Kept]func() bool
	next int
}

// Watch makes sure fn runs when ctx ends, if it can end, registering
// fn with ctx unless it is registered already. fn should be the same
// function every time (a method value made once: making one each time
// would allocate anyway).
func (s *Set) Watch(ctx context.Context, fn func()) {
	if ctx.Done() == nil {
		return
	}
	for i := range s.ctx {
		if s.ctx[i] == ctx {
			return
		}
	}
	i := s.next
	s.next = (s.next + 1) % Kept
	if s.stop[i] != nil {
		s.stop[i]()
	}
	s.ctx[i], s.stop[i] = ctx, context.AfterFunc(ctx, fn)
}

// Stop removes every registration (an fn already started runs on).
func (s *Set) Stop() {
	for i := range s.ctx {
		if s.stop[i] != nil {
			s.stop[i]()
		}
	}
	*s = Set{}
}
