package transport

import (
	"context"
	"github.com/gosimpl/gosimpl/internal/errs"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/spin"
)

// Queue is the one receive queue of an attached name: every transport's
// endpoint delivers into it and Receive takes from it, so one Receive loop
// serves them all. It belongs to no transport. A transport either posts
// what it receives (Post: a FIFO reader, a network connection) or, when
// its senders write into memory the receiver polls, registers itself as
// the queue's Source with a Bell those senders ring (the shared-memory
// transport): Receive then polls it directly, spinning briefly before it
// sleeps on the Bell, and posted requests ring the same Bell.
//
// At most one Source. Safe for concurrent use; Close is idempotent.
type Queue struct {
	name   string
	posted chan posted
	srcUp  chan struct{} // a token when the source gains work to poll
	done   chan struct{}
	closed atomic.Bool
	spin   spin.Budget

	// postMu is read-held by Post and by wake-ups touching the bell,
	// write-held to change polled: a Source can unmap its Bell once
	// RemoveSource returns. Receive reads polled without it (it changes
	// only from nil, or while no Receive is inside: see RemoveSource).
	postMu sync.RWMutex
	polled atomic.Pointer[polled]

	// prio makes Receive take requests in priority order (see
	// SetPriorityOrder); tick numbers posted requests when no Source's
	// bell does.
	prio bool
	tick atomic.Uint32

	// rsem admits one Receive at a time; the fields below are its.
	rsem    chan struct{}
	flip    bool
	watched context.Context
	unwatch func() bool
	held    []posted // in priority order: posted requests taken from posted, oldest first
}

// Source is a transport whose requests Receive polls for.
type Source interface {
	// Poll takes one waiting request, or proxy (the zero Request and the
	// proxy, 1 or more), without blocking. It is called by one Receive at
	// a time.
	Poll() (req Request, proxy int, ok bool)
	// Active reports whether anything may arrive to Poll: while it is
	// false Receive waits in Go for posted requests, and the Source must
	// call Queue.SourceActive when it becomes true.
	Active() bool
}

// Bell is the word a Source's senders ring, and Receive sleeps on.
type Bell interface {
	// Arm counts one more sleeper and returns the current sequence.
	Arm() uint32
	// Sleep sleeps while the sequence is still seq (it may return early).
	Sleep(seq uint32)
	// Disarm undoes Arm.
	Disarm()
	// Ring bumps the sequence and wakes one sleeper if any.
	Ring()
	// WakeAll bumps the sequence and wakes every sleeper.
	WakeAll()
}

// polled is the Source and the Bell its senders ring.
type polled struct {
	src  Source
	bell Bell
}

type posted struct {
	req    Request
	proxy  int
	cr     *Credit // returned when Receive takes it; nil for Post
	ticket uint32  // its arrival, in priority order
}

// Credit bounds how far one poster reads ahead of Receive: it holds a
// slot for each of its items in the queue, taken before the poster reads
// the item from its source (TakeCredit) and given back when Receive takes
// the item. A FIFO reader with a credit of two leaves every doorbell but
// two in the FIFO until the receiver asks. Safe for concurrent use.
type Credit struct{ slots chan struct{} }

// NewCredit returns a credit of n slots (at least 1).
func NewCredit(n int) *Credit { return &Credit{slots: make(chan struct{}, max(n, 1))} }

// Return gives back a slot taken and not used for a post.
func (c *Credit) Return() { <-c.slots }

func (c *Credit) returnSlot() {
	if c != nil {
		<-c.slots
	}
}

// QueueDepth bounds the requests posted and not yet received; Post blocks
// beyond it.
const QueueDepth = 1024

// NewQueue returns the queue of the attached name (for error messages).
// noSpin makes Receive sleep at once instead of spinning on a Source
// first.
func NewQueue(name string, noSpin bool) *Queue {
	q := &Queue{
		name:   name,
		posted: make(chan posted, QueueDepth),
		srcUp:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		rsem:   make(chan struct{}, 1),
	}
	q.spin.Init(noSpin)
	return q
}

// SetSource makes s the Source Receive polls, with the bell its senders
// ring. It fails if the queue has one already or is closed.
func (q *Queue) SetSource(s Source, b Bell) error {
	q.postMu.Lock()
	defer q.postMu.Unlock()
	switch {
	case q.closed.Load():
		return q.closedErr()
	case q.polled.Load() != nil:
		return errs.Errorf("queue of %q has a polled transport already: %w", q.name, ErrNotSupported)
	}
	q.polled.Store(&polled{s, b})
	return nil
}

// RemoveSource stops polling s and waits out any Receive inside, after
// which s may release its Bell.
func (q *Queue) RemoveSource(s Source) {
	q.rsem <- struct{}{}
	q.postMu.Lock()
	if p := q.polled.Load(); p != nil && p.src == s {
		q.polled.Store(nil)
	}
	q.postMu.Unlock()
	<-q.rsem
}

// SourceActive tells a Receive waiting in Go that the Source has work to
// poll now.
func (q *Queue) SourceActive() {
	select {
	case q.srcUp <- struct{}{}:
	default:
	}
}

// Post queues a request (or a proxy, with req the zero Request) for
// Receive. It blocks while the queue is full, and returns false, and the
// caller must fail the request, once the queue is closed.
func (q *Queue) Post(req Request, proxy int) bool {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if q.closed.Load() {
		return false
	}
	select {
	case q.posted <- posted{req, proxy, nil, q.ticket()}:
	case <-q.done:
		return false
	}
	if p := q.polled.Load(); p != nil {
		p.bell.Ring()
	}
	return true
}

// TakeCredit waits for a free slot of c. It returns false once the queue
// or stop is closed.
func (q *Queue) TakeCredit(c *Credit, stop <-chan struct{}) bool {
	select {
	case c.slots <- struct{}{}:
		return true
	case <-q.done:
		return false
	case <-stop:
		return false
	}
}

// PostCredited posts as Post does, in a slot of c already taken, which
// Receive gives back when it takes the item. It blocks only while the
// queue is full of other posters' items. It returns false, with the slot
// given back, once the queue is closed.
func (q *Queue) PostCredited(c *Credit, req Request, proxy int) bool {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if q.closed.Load() {
		c.Return()
		return false
	}
	item := posted{req, proxy, c, q.ticket()}
	select {
	case q.posted <- item:
	default:
		// The queue is full of other posters' items: wait for room.
		select {
		case q.posted <- item:
		case <-q.done:
			c.Return()
			return false
		}
	}
	if p := q.polled.Load(); p != nil {
		p.bell.Ring()
	}
	return true
}

// Receive waits for the next request or proxy. It returns ctx.Err() when
// ctx ends and an error wrapping ErrClosed once the queue is closed.
func (q *Queue) Receive(ctx context.Context) (Request, int, error) {
	select {
	case q.rsem <- struct{}{}:
	default:
		select {
		case q.rsem <- struct{}{}:
		case <-ctx.Done():
			return Request{}, 0, ctx.Err()
		case <-q.done:
			return Request{}, 0, q.closedErr()
		}
	}
	defer func() { <-q.rsem }()
	// src and bell change only under rsem (see RemoveSource) or from nil
	// (SetSource, after which the Source signals SourceActive).
	var (
		src  Source
		bell Bell
	)
	for {
		if q.closed.Load() {
			return Request{}, 0, q.closedErr()
		}
		if p := q.polled.Load(); p != nil {
			src, bell = p.src, p.bell
		}
		if r, p, ok := q.poll(src); ok {
			return r, p, nil
		}
		if src != nil && src.Active() {
			break
		}
		if r, p, ok, err := q.receivePosted(ctx); ok {
			return r, p, err
		}
	}
	deadline := q.spin.Start()
	for spins := 0; ; spins++ {
		if q.closed.Load() {
			return Request{}, 0, q.closedErr()
		}
		if err := ctx.Err(); err != nil {
			return Request{}, 0, err
		}
		if r, p, ok := q.poll(src); ok {
			q.spin.Done(true)
			return r, p, nil
		}
		if spins&63 == 0 && !q.spin.More(deadline) {
			break
		}
	}
	q.spin.Done(false)
	q.watchCtx(ctx)
	for {
		if !src.Active() {
			if r, p, ok, err := q.receivePosted(ctx); ok {
				return r, p, err
			}
		}
		seq := bell.Arm()
		r, p, ok := q.poll(src)
		if !ok && !q.closed.Load() && ctx.Err() == nil {
			bell.Sleep(seq)
			r, p, ok = q.poll(src)
		}
		bell.Disarm()
		if ok {
			return r, p, nil
		}
		if q.closed.Load() {
			return Request{}, 0, q.closedErr()
		}
		if err := ctx.Err(); err != nil {
			return Request{}, 0, err
		}
	}
}

// receivePosted waits in Go for a posted request while the Source has
// nothing to poll: a posted request then costs one goroutine hand-off
// rather than a futex wake-up. ok is false when the Source became active
// meanwhile. The caller holds rsem.
func (q *Queue) receivePosted(ctx context.Context) (Request, int, bool, error) {
	select {
	case p := <-q.posted:
		p.cr.returnSlot()
		return p.req, p.proxy, true, nil
	case <-q.srcUp:
		return Request{}, 0, false, nil
	case <-ctx.Done():
		return Request{}, 0, true, ctx.Err()
	case <-q.done:
		return Request{}, 0, true, q.closedErr()
	}
}

// poll returns one waiting request, alternating between posted ones and
// the Source so neither starves the other (or in priority order, see
// SetPriorityOrder). The caller holds rsem.
func (q *Queue) poll(src Source) (Request, int, bool) {
	if q.prio {
		return q.pollPrio(src)
	}
	q.flip = !q.flip
	if q.flip || src == nil {
		if r, p, ok := q.pollPosted(); ok || src == nil {
			return r, p, ok
		}
	}
	if r, p, ok := src.Poll(); ok {
		return r, p, true
	}
	if !q.flip {
		return q.pollPosted()
	}
	return Request{}, 0, false
}

func (q *Queue) pollPosted() (Request, int, bool) {
	select {
	case p := <-q.posted:
		p.cr.returnSlot()
		return p.req, p.proxy, true
	default:
		return Request{}, 0, false
	}
}

// watchCtx makes sure the end of ctx wakes a sleeping Receive. The
// registration stays for later Receives with the same context, as a server
// loop passes, so they cost no allocation; a late wake-up is harmless. The
// caller holds rsem.
func (q *Queue) watchCtx(ctx context.Context) {
	if ctx.Done() == nil || ctx == q.watched {
		return
	}
	if q.unwatch != nil {
		q.unwatch()
	}
	q.watched, q.unwatch = ctx, context.AfterFunc(ctx, q.wakeAll)
}

func (q *Queue) wakeAll() {
	q.postMu.RLock()
	if p := q.polled.Load(); p != nil {
		p.bell.WakeAll()
	}
	q.postMu.RUnlock()
}

func (q *Queue) closedErr() error {
	return errs.Errorf("receive on %q: %w", q.name, ErrClosed)
}

// Close wakes every Receive (they return ErrClosed), makes Post refuse,
// and fails every request posted and not received with ErrPeerGone for
// its sender. Requests a Source holds are the Source's to fail.
func (q *Queue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	close(q.done)
	q.wakeAll()
	// Wait out Posts in flight: after this none can queue more.
	q.postMu.Lock()
	q.postMu.Unlock()
	for {
		select {
		case p := <-q.posted:
			p.req.Abort()
			p.cr.returnSlot()
			continue
		default:
		}
		break
	}
	// Receives see done and leave; the last context registration goes,
	// and so do the requests priority order held.
	q.rsem <- struct{}{}
	for _, p := range q.held {
		p.req.Abort()
		p.cr.returnSlot()
	}
	q.held = nil
	if q.unwatch != nil {
		q.unwatch()
		q.unwatch, q.watched = nil, nil
	}
	<-q.rsem
	return nil
}
