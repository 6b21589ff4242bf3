package qnx

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// timeout is one thread's armed TimerTimeout.
type timeout struct {
	flags    int
	deadline time.Time
}

var timeouts struct {
	mu    sync.Mutex
	byTid map[int]timeout
	armed atomic.Int32 // len(byTid), read without the lock
}

// TimerTimeout arms a one-shot timeout for the calling OS thread's next
// MsgSend* (states NTO_TIMEOUT_SEND and NTO_TIMEOUT_REPLY) or
// MsgReceive* (NTO_TIMEOUT_RECEIVE). As on QNX, where the kernel clears
// it on return from any kernel call, the next call of this package
// (other than TimerTimeout) disarms it, whether or not it blocked in an
// armed state: re-arm before each call. ntime is in nanoseconds, relative
// to this call unless flags has TIMER_ABSTIME (then it is a CLOCK_REALTIME time: ENOTSUP with
// CLOCK_MONOTONIC, whose origin Go does not show); nil ntime expires at once: a
// non-blocking MsgReceive, which takes what is queued and is ETIMEDOUT
// only when nothing is. notify must
// be nil or SIGEV_UNBLOCK: the blocked call fails with ETIMEDOUT. It
// returns the flags previously armed for the thread. otime is ignored
// (QNX writes it only for NTO_TIMEOUT_NANOSLEEP). Errors: EINVAL (clock,
// notify kind), ENOTSUP (states other than SEND, RECEIVE and REPLY).
//
// The thread is the OS thread: a goroutine must call
// runtime.LockOSThread before arming, or the runtime may move it between
// TimerTimeout and the call; C threads calling through a binding are
// their own OS threads. Go code that owns its context can use a context
// deadline instead, with the same effect.
func TimerTimeout(id int, flags int, notify *SigEvent, ntime *uint64, otime *uint64) (int, error) {
	if id != CLOCK_REALTIME && id != CLOCK_MONOTONIC {
		return -1, EINVAL
	}
	if notify != nil && notify.Notify != SIGEV_UNBLOCK {
		return -1, EINVAL
	}
	// As a 32-bit word, as QNX's: TIMER_ABSTIME is its top bit, which
	// does not fit a positive int on 32-bit machines.
	u := uint32(flags)
	abs := u&TIMER_ABSTIME != 0
	states := int(u &^ TIMER_ABSTIME)
	if states&^(NTO_TIMEOUT_SEND|NTO_TIMEOUT_RECEIVE|NTO_TIMEOUT_REPLY) != 0 {
		return -1, ENOTSUP
	}
	now := time.Now()
	deadline := now
	if ntime != nil {
		if abs {
			if id != CLOCK_REALTIME {
				// Go does not show CLOCK_MONOTONIC's origin.
				return -1, ENOTSUP
			}
			deadline = time.Unix(0, int64(min(*ntime, math.MaxInt64)))
		} else {
			// ~0 is "practically forever" to a C caller: not a
			// negative duration, which would expire at once.
			deadline = now.Add(time.Duration(min(*ntime, math.MaxInt64)))
		}
	}
	tid := sys.Gettid()
	timeouts.mu.Lock()
	defer timeouts.mu.Unlock()
	if timeouts.byTid == nil {
		timeouts.byTid = make(map[int]timeout)
	}
	prev := timeouts.byTid[tid].flags
	if states == 0 {
		delete(timeouts.byTid, tid)
	} else {
		timeouts.byTid[tid] = timeout{flags: states, deadline: deadline}
	}
	timeouts.armed.Store(int32(len(timeouts.byTid)))
	return prev, nil
}

// disarm disarms the calling thread's timeout: every call of the API
// does (MsgSend* and MsgReceive* as they return, even with an error found
// before they blocked: EBADF, ESRCH, EFAULT; the others as they start),
// as QNX clears it on return from any kernel call, so that the timeout
// does not fire on a later, untimed, call.
func disarm() { takeTimeout(0) }

// takeTimeout disarms the calling thread's timeout and returns it when
// it covers one of states.
func takeTimeout(states int) (timeout, bool) {
	if timeouts.armed.Load() == 0 {
		return timeout{}, false
	}
	tid := sys.Gettid()
	timeouts.mu.Lock()
	defer timeouts.mu.Unlock()
	t, ok := timeouts.byTid[tid]
	if !ok {
		return timeout{}, false
	}
	delete(timeouts.byTid, tid)
	timeouts.armed.Store(int32(len(timeouts.byTid)))
	t.flags &= states
	return t, t.flags != 0
}

// peekTimeout is the deadline of the calling thread's timeout when it
// covers one of states, which it leaves armed.
func peekTimeout(states int) (time.Time, bool) {
	if timeouts.armed.Load() == 0 {
		return time.Time{}, false
	}
	tid := sys.Gettid()
	timeouts.mu.Lock()
	defer timeouts.mu.Unlock()
	t, ok := timeouts.byTid[tid]
	if !ok || t.flags&states == 0 {
		return time.Time{}, false
	}
	return t.deadline, true
}

// timed applies the calling thread's timeout for state to ctx. A
// timeout that has passed already (QNX's non-blocking receive:
// TimerTimeout with a NULL ntime) gives a ctx that has ended: the call
// still takes what is queued, and is ETIMEDOUT only when nothing is.
func timed(ctx context.Context, state int) (context.Context, context.CancelFunc) {
	t, ok := takeTimeout(state)
	if !ok {
		return ctx, nil
	}
	return context.WithDeadline(ctx, t.deadline)
}
