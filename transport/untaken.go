package transport

import "context"

type untilTakenKey struct{}

// untilTaken is what an UntilTaken context carries.
type untilTaken struct {
	queued context.Context
	taken  func()
}

// UntilTaken is ctx for a Send that may also give up while, and only
// while, its request waits in the receiver's queue: QNX's SEND-blocked
// state, which a TimerTimeout can end without the server knowing. When
// queued ends, a transport that can tell (WithdrawsQueued) takes the
// request back if the receiver has not taken it, and the Send returns
// queued.Err(); if the receiver has taken it, the transport calls taken
// (once for the Send, on the sending goroutine, which taken must not hold
// up; a context used for several Sends calls it for each) and the
// Send goes on: until the answer, the receiver's end, the Conn's Close or
// the end of ctx, as any Send. taken may be nil.
//
// A transport that cannot tell a queued request from a taken one ignores
// queued: check WithdrawsQueued first.
func UntilTaken(ctx, queued context.Context, taken func()) context.Context {
	return context.WithValue(ctx, untilTakenKey{}, &untilTaken{queued: queued, taken: taken})
}

// WithoutUntilTaken is ctx with what UntilTaken put in it (if anything)
// hidden: for a transport that cannot tell, and passes ctx on to a Send
// of its own on another transport (the network's to its gateway), which
// would otherwise act on it for a request that is not the caller's.
func WithoutUntilTaken(ctx context.Context) context.Context {
	if _, _, ok := UntilTakenFrom(ctx); !ok {
		return ctx
	}
	return context.WithValue(ctx, untilTakenKey{}, (*untilTaken)(nil))
}

// UntilTakenFrom is what UntilTaken put in ctx: ok is false for a
// context it did not make, or whose queued context cannot end.
func UntilTakenFrom(ctx context.Context) (queued context.Context, taken func(), ok bool) {
	u, ok := ctx.Value(untilTakenKey{}).(*untilTaken)
	if !ok || u == nil || u.queued.Done() == nil {
		return nil, nil, false
	}
	return u.queued, u.taken, true
}

// Withdrawing is implemented by a Conn whose Send honours UntilTaken: it
// knows whether the receiver has taken a request, and takes back one that
// waits.
type Withdrawing interface {
	// WithdrawsQueued is true.
	WithdrawsQueued() bool
}

// WithdrawsQueued tells whether Sends on c honour UntilTaken (see
// Withdrawing), looking through wrappers (Unwrap).
func WithdrawsQueued(c Conn) bool {
	for {
		if w, ok := c.(Withdrawing); ok {
			return w.WithdrawsQueued()
		}
		u, ok := c.(interface{ Unwrap() Conn })
		if !ok {
			return false
		}
		c = u.Unwrap()
	}
}
