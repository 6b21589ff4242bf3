package simpl

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// Priority is a thread's scheduling policy and priority: Level is the
// real-time priority (1..99) for SchedFIFO and SchedRR, the nice value
// (-20..19) for SchedOther and SchedBatch, 0 for SchedIdle.
type Priority = transport.Prio

// Scheduling policies, as Linux numbers them.
const (
	SchedOther = transport.SchedOther
	SchedFIFO  = transport.SchedFIFO
	SchedRR    = transport.SchedRR
	SchedBatch = transport.SchedBatch
	SchedIdle  = transport.SchedIdle
)

// PriorityWindow bounds priority order (WithPriorityOrder): no request
// is overtaken by more than PriorityWindow requests that arrived after
// it.
const PriorityWindow = transport.PriorityWindow

// WithPriorityInheritance makes the Channel inherit its senders'
// priorities, as QNX does, and carry its own threads' priorities when it
// sends (docs/realtime.md):
//
//   - Sends from the Channel through shared memory carry the sending
//     thread's scheduling policy and priority with the request, and,
//     while they wait, raise the receiver's serving thread to it if it
//     runs lower (this needs the privilege to raise that thread:
//     CAP_SYS_NICE, or the same user within RLIMIT_RTPRIO; without it
//     the request still carries the priority). Through FIFOs nothing is
//     carried: C SIMPL's wire has no field for it.
//   - Serve runs each request at its sender's priority, or at the
//     serving thread's own for one that carries none, raised to the
//     highest priority among the requests still waiting; on the
//     answer the thread returns to its own, or to that highest waiting
//     priority if it is higher.
//
// Receive alone inherits nothing: only Serve owns a thread it can set.
func WithPriorityInheritance() Option {
	return func(o *options) error { o.inherit = true; return nil }
}

// WithPriorityOrder makes Receive take waiting requests highest priority
// first, in arrival order within a priority, instead of in arrival order
// only; a request that carries no priority (through FIFOs, a proxy, or
// from a sender without WithPriorityInheritance) counts as SCHED_OTHER
// nice 0. No request is overtaken by more than PriorityWindow requests
// that arrived after it, so none starves.
func WithPriorityOrder() Option {
	return func(o *options) error { o.prioOrder = true; return nil }
}

// Serve receives messages and hands each to handle, one at a time, until
// ctx ends (it returns ctx.Err()) or the Channel closes (an error
// wrapping ErrClosed). It runs on the calling goroutine, locked to its OS
// thread for the duration (runtime.LockOSThread), so that a thread's
// scheduling priority is the handler's: with WithPriorityInheritance the
// thread takes each request's inherited priority (see there), and Serve
// returns it to its own priority before it returns.
//
// Serve follows a sender down to a lower priority only if the thread may
// set itself back up to its own afterwards: it asks once, when it starts,
// whether the thread holds CAP_SYS_NICE or its RLIMIT_RTPRIO or
// RLIMIT_NICE allows its own priority (lowering needs no privilege, rising
// does). Otherwise it inherits only upwards and never runs below its own
// priority. A raise the kernel refuses (EPERM: a sender above what the
// thread may rise to by itself) does not end Serve: the message is served
// at the priority the thread has, the refusal is counted
// (PriorityFailures), and Serve goes on. Any other failure to set the
// thread is returned by Serve once handle has answered the message.
//
// handle answers each request before it returns, on the goroutine it was
// called on: the priority follows the thread, not the work. So it must
// not hand a request to another goroutine to answer later (that
// goroutine runs on another thread, at that thread's priority, and the
// serving thread is set back when handle returns), must not call
// runtime.UnlockOSThread, and should not block on anything that waits for
// other goroutines of lower priority (channels, mutexes held by them):
// they run on threads of their own priority, and an inversion there is
// Go's, not this layer's. A request handle leaves unanswered stays owed
// its answer, but the thread is set back when handle returns. Proxies
// are handed to handle too, at the priority the thread has.
//
// One Serve with WithPriorityInheritance runs on a Channel at a time (the
// senders raise one published thread); a second fails with
// ErrNotSupported. Without the option any number may run, as Receive
// loops may.
func (c *Channel) Serve(ctx context.Context, handle func(Message)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if !c.o.inherit {
		for {
			msg, err := c.Receive(ctx)
			if err != nil {
				return err
			}
			handle(msg)
		}
	}
	if !c.serving.CompareAndSwap(false, true) {
		return errs.Errorf("serve on %q: another Serve with priority inheritance runs: %w", c.name, ErrNotSupported)
	}
	defer c.serving.Store(false)
	s, err := newServer(c.q, &c.prioFails)
	if err != nil {
		return errs.Errorf("serve on %q: %w", c.name, err)
	}
	defer s.stop()
	for {
		msg, err := c.Receive(ctx)
		if err != nil {
			return err
		}
		if msg.req.Valid() {
			msg.srv, msg.seq = s, s.begin(msg.req)
		}
		handle(msg)
		if msg.req.Valid() {
			s.answered(msg.seq)
		}
		if err := s.failed(); err != nil {
			return errs.Errorf("serve on %q: %w", c.name, err)
		}
	}
}

// server is a Serve loop's thread, as priority inheritance sets it.
// Its methods are called by the loop and by a handler's answer (which may,
// against the rules, come from another goroutine): mu orders them.
type server struct {
	q        *transport.Queue
	tid      int
	own      transport.Prio
	mayLower bool           // the thread may rise back to own by itself
	refused  *atomic.Uint64 // counts the raises the kernel refused

	mu        sync.Mutex
	cur       transport.Prio // what this loop last set the thread to
	published uint32         // the rank it last published
	seq       uint64         // numbers the requests served
	inMsg     bool           // request seq is being served
	err       error          // the first failure, other than EPERM, to set the thread
}

// PriorityFailures counts the times a Serve with WithPriorityInheritance
// on this Channel could not set its thread to the priority a request
// asked for because the kernel refused it (EPERM: raising a thread needs
// CAP_SYS_NICE or room under RLIMIT_RTPRIO and RLIMIT_NICE). Each such
// request was served at the priority the thread had. Safe for concurrent
// use.
func (c *Channel) PriorityFailures() uint64 { return c.prioFails.Load() }

// newServer publishes the calling thread as the queue's server, at its
// own priority, and finds out whether the thread may follow a sender
// below its own priority (whether it could rise back by itself).
func newServer(q *transport.Queue, refused *atomic.Uint64) (*server, error) {
	own, err := sys.GetSched(0)
	if err != nil {
		return nil, errs.Errorf("read this thread's priority: %w", err)
	}
	if err := own.Check(); err != nil {
		return nil, errs.Errorf("this thread's priority: %w: %w", ErrNotSupported, err)
	}
	s := &server{q: q, tid: sys.Gettid(), own: transport.Prio(own), cur: transport.Prio(own),
		mayLower: sys.MayReturnTo(own), refused: refused}
	s.published = s.own.Rank()
	q.PublishServer(s.tid, s.published)
	return s, nil
}

// begin sets the thread for request r: its sender's priority (the
// thread's own if it carries none), raised to the highest waiting. It
// returns the request's number, for answered.
func (s *server) begin(r transport.Request) uint64 {
	base := s.own
	if p, ok := r.Prio(); ok {
		base = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.inMsg = true
	// What the thread runs at, not what this loop last set: a sender's
	// raise can land after the loop settled (one that raced a third
	// party's, or one whose process died between the rank word and the
	// raise), and the rank word then no longer tells. Read once a
	// request, it bounds such a stale priority to the time until the
	// next request.
	if now, err := sys.GetSched(s.tid); err == nil {
		s.cur = transport.Prio(now)
	}
	s.settle(base)
	return s.seq
}

// answered returns the thread to its own priority, raised to the
// highest waiting, once for request seq, if it is still the one being
// served (a late answer to an earlier one changes nothing).
func (s *server) answered(seq uint64) {
	s.mu.Lock()
	if s.inMsg && seq == s.seq {
		s.inMsg = false
		s.settle(s.own)
	}
	s.mu.Unlock()
}

// settle sets the thread to base, or to the highest priority waiting if
// that is higher, and publishes its rank. A sender raises the published
// rank before it raises the thread, so a rank other than the one last
// published means the thread may have been changed under us: it is set
// again, and a rank raised while it is being set is looked at again. A
// raise (the thread's priority as a sender set it, not the rank word,
// which any admitted sender can write) is kept even when no request of
// that rank waits yet: a sender raises before it posts its request (see the shared-memory
// transport's boost), and lowering the thread then would leave that
// sender's request behind the one being served at the lower priority.
// (A sender that dies between its raise and its post leaves the thread
// raised until the next request, whose begin reads the thread's real
// priority.) A few rounds bound it; senders only raise, so it settles.
// The caller holds s.mu.
func (s *server) settle(base transport.Prio) {
	for range 4 {
		target := base
		if !s.mayLower && target.Rank() < s.own.Rank() {
			target = s.own // it could not come back: inherit upwards only
		}
		if w, ok := s.q.MaxWaiting(); ok && w.Rank() > target.Rank() {
			target = w
		}
		pub, bell := s.q.ServerRank()
		changed := bell && pub != s.published
		if changed && pub > target.Rank() {
			// A sender raised the thread: it does so before it posts its
			// request, which may not be waiting yet. Keep the raise: set
			// lower now, the thread would serve on below that sender
			// until the next request, the sender having raised it once.
			// What is kept is what the thread runs at, never the rank
			// word itself: any sender the mode admits can write that
			// word, and adopting it would have this process raise its
			// own thread to whatever a sender of another user wrote. A
			// raise whose thread change has not landed yet lands after.
			if now, err := sys.GetSched(s.tid); err == nil && transport.Prio(now).Rank() > target.Rank() {
				target = transport.Prio(now)
			}
		}
		rank := target.Rank()
		if bell && !s.q.SwapServerRank(s.tid, pub, rank) {
			continue // raised just now: look again
		}
		if testHookPublished != nil {
			testHookPublished()
		}
		s.published = rank
		if changed || target != s.cur {
			err := sys.SetSched(s.tid, sys.Sched(target))
			switch {
			case err == nil:
				s.cur = target
			case errors.Is(err, os.ErrPermission): // EPERM
				// Refused: serve at the priority the thread has, and
				// publish that, so that a sender that can raise the
				// thread does not take it for raised already.
				s.refused.Add(1)
				if now := s.cur.Rank(); bell && s.q.SwapServerRank(s.tid, rank, now) {
					s.published, rank = now, now
				}
			case s.err == nil:
				s.err = errs.Errorf("set the serving thread to policy %d priority %d: %w", target.Policy, target.Level, err)
			}
		}
		if pub, _ := s.q.ServerRank(); !bell || pub == rank {
			return
		}
	}
}

// testHookPublished, when set (by tests), runs in settle between the
// publication of a rank and the setting of the thread: where a sender's
// raise can land.
var testHookPublished func()

// failed returns the first failure to set the thread, once.
func (s *server) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.err
	s.err = nil
	return err
}

// stop unpublishes the thread and returns it to its own priority.
func (s *server) stop() {
	s.q.PublishServer(0, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Always, not only when cur differs: a sender may have raised the
	// thread since the last settle, and the goroutine is about to let go
	// of it. Lowering one's own thread needs no privilege.
	sys.SetSched(s.tid, sys.Sched(s.own))
	s.cur = s.own
}
