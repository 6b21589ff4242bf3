package transport

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/pace"
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

	// feeder changes only under rsem (SetFeeder, RemoveFeeder); Post
	// reads it to wake a Feed that waits.
	feeder atomic.Pointer[feederBox]

	// prio makes Receive take requests in priority order (see
	// SetPriorityOrder); tick numbers posted requests when no Source's
	// bell does.
	prio bool
	tick atomic.Uint32

	// rsem admits one Receive at a time; the fields below are its.
	rsem    chan struct{}
	flip    bool
	turns   uint32 // Receives that found the Source busy; see feedEvery
	watched context.Context
	unwatch func() bool
	held    []posted // in priority order: posted requests taken from posted, oldest first
	// receiveFed's context and Source, for fedPending through pending
	// (made once, so a Wait allocates nothing).
	fedCtx  context.Context
	fedSrc  Source
	pending func() bool
	// pacer keeps the Receive that sleeps in a system call (on the
	// Bell, or in the Feeder's Wait) from losing its P at every sleep:
	// see package pace. One Receive at a time sleeps, so one a Queue.
	pacer pace.Pacer
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

// Feeder is a transport whose input a Receive can read on its own
// thread: the FIFO transport with Config.ThreadReceive (simpl's default).
// Where Receive would wait in Go for a reader goroutine to post, which
// costs a thread hand-off or two per request (more for a C thread
// calling through the C library), it asks the Feeder to read on the
// calling thread and hand it the item, and to wait there. All methods
// but Wake are called by one Receive at a time.
type Feeder interface {
	// Feed reads one item from the input, if it holds one now, without
	// waiting, and returns it, a request or a proxy as Receive returns
	// them (ok false: nothing). While watching (see Watch) it may skip
	// reading when the watch saw nothing arrive since.
	Feed() (req Request, proxy int, ok bool)
	// Wait blocks the calling thread until the input may hold something
	// or Wake is called. It returns at once if pending, which it calls
	// after it is ready to be woken, reports true. It may return early.
	Wait(pending func() bool)
	// Wake ends a Wait in progress; it never waits. Any goroutine.
	Wake()
	// Watch(true) starts calling Queue.Notify whenever the input gains
	// something, for a Receive sleeping on the Source's Bell; Watch(false)
	// stops it. Both are cheap when nothing changes.
	Watch(on bool)
}

// feederBox holds a Feeder for an atomic pointer.
type feederBox struct{ f Feeder }

// SetFeeder makes f the Feeder Receive reads on its own thread. It
// fails if the queue has one already or is closed.
func (q *Queue) SetFeeder(f Feeder) error {
	q.rsem <- struct{}{}
	defer func() { <-q.rsem }()
	switch {
	case q.closed.Load():
		return q.closedErr()
	case q.feeder.Load() != nil:
		return errs.Errorf("queue of %q has a feeder already: %w", q.name, ErrNotSupported)
	}
	q.pending = q.fedPending
	q.feeder.Store(&feederBox{f})
	return nil
}

// RemoveFeeder makes Receive stop using f and wakes its Wait. It does
// not wait for a Receive inside f: f must itself make its methods return
// at once from then on (a Receive then looks again and waits in Go).
func (q *Queue) RemoveFeeder(f Feeder) {
	if b := q.feeder.Load(); b != nil && b.f == f {
		q.feeder.Store(nil)
	}
	f.Wake()
}

// Notify wakes a Receive sleeping on the Source's Bell: a Feeder's watch
// calls it when the Feeder's input gains something.
func (q *Queue) Notify() {
	q.postMu.RLock()
	if p := q.polled.Load(); p != nil {
		p.bell.Ring()
	}
	q.postMu.RUnlock()
}

// wakeFeeder ends a Feeder's Wait, if it has one.
func (q *Queue) wakeFeeder() {
	if b := q.feeder.Load(); b != nil {
		b.f.Wake()
	}
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
	q.wakeFeeder()
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
	q.wakeFeeder()
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
	q.wakeFeeder()
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
	for {
		r, p, err, done := q.receive(ctx)
		if done {
			return r, p, err
		}
	}
}

// receive is one pass of Receive: it waits in Go for posted requests, or
// on the Feeder, while the Source has nothing to poll; else it spins on
// the Source, then sleeps on its Bell. done is false when the Receive is
// to wait another way (the Source went idle or active while there is a
// Feeder, or the Feeder went): the caller calls again. The caller holds
// rsem.
func (q *Queue) receive(ctx context.Context) (r Request, proxy int, err error, done bool) {
	// src and bell change only under rsem (see RemoveSource) or from nil
	// (SetSource, after which the Source signals SourceActive); so does
	// the Feeder.
	var (
		src  Source
		bell Bell
		f    Feeder
	)
	if b := q.feeder.Load(); b != nil {
		f = b.f
	}
	for {
		if q.closed.Load() {
			return Request{}, 0, q.closedErr(), true
		}
		if p := q.polled.Load(); p != nil {
			src, bell = p.src, p.bell
		}
		if f != nil {
			// While the Source keeps this loop busy, the Feeder's input
			// is read every feedEvery Receives too, not only once the
			// Source has nothing: FIFO senders are not left waiting
			// behind shared-memory ones.
			if q.turns++; q.turns%feedEvery == 0 {
				if r, p, ok := q.feed(f, src); ok {
					return r, p, nil, true
				}
			}
		}
		if r, p, ok := q.poll(src); ok {
			return r, p, nil, true
		}
		if src != nil && src.Active() {
			break
		}
		if f != nil {
			r, p, ok, err := q.receiveFed(ctx, f, src)
			return r, p, err, ok // not ok: the caller looks again
		}
		if r, p, ok, err := q.receivePosted(ctx); ok {
			return r, p, err, true
		}
	}
	if f != nil {
		f.Watch(true)
	}
	deadline := q.spin.Start()
	for spins := 0; ; spins++ {
		if q.closed.Load() {
			return Request{}, 0, q.closedErr(), true
		}
		if err := ctx.Err(); err != nil {
			return Request{}, 0, err, true
		}
		if r, p, ok := q.pollFed(src, f); ok {
			q.spin.Done(true)
			return r, p, nil, true
		}
		if spins&63 == 0 && !q.spin.More(deadline) {
			break
		}
	}
	q.spin.Done(false)
	q.watchCtx(ctx)
	for {
		if !src.Active() {
			if f != nil {
				return Request{}, 0, nil, false
			}
			if r, p, ok, err := q.receivePosted(ctx); ok {
				return r, p, err, true
			}
		}
		q.pacer.KeepP()
		seq := bell.Arm()
		r, p, ok := q.pollFed(src, f)
		if !ok && !q.closed.Load() && ctx.Err() == nil {
			bell.Sleep(seq)
			r, p, ok = q.pollFed(src, f)
		}
		bell.Disarm()
		if ok {
			return r, p, nil, true
		}
		if q.closed.Load() {
			return Request{}, 0, q.closedErr(), true
		}
		if err := ctx.Err(); err != nil {
			return Request{}, 0, err, true
		}
	}
}

// pollFed is poll, then, if that found nothing, the Feeder's input read
// on this thread. The caller holds rsem.
func (q *Queue) pollFed(src Source, f Feeder) (Request, int, bool) {
	if r, p, ok := q.poll(src); ok || f == nil {
		return r, p, ok
	}
	return q.feed(f, src)
}

// feedEvery: a Receive reads the Feeder's input at least once in this
// many while the Source keeps it busy (see receive), so no FIFO request
// waits behind more than about this many others: within PriorityWindow.
const feedEvery = 8

// feed reads one item of the Feeder's input, if there is one now. In
// priority order it joins the requests held, with its arrival ticket,
// and the first of those in order is taken; with QueueDepth requests
// held already it is left unread, to be read once they are fewer (read
// then and returned at once, it would skip priority order). The caller
// holds rsem.
func (q *Queue) feed(f Feeder, src Source) (Request, int, bool) {
	if q.prio && len(q.held) >= cap(q.held) {
		return q.poll(src)
	}
	r, p, ok := f.Feed()
	if ok && q.prio {
		// In priority order it waits its turn with the others.
		q.postMu.RLock()
		q.held = append(q.held, posted{r, p, nil, q.ticket()})
		q.postMu.RUnlock()
		return q.poll(src)
	}
	return r, p, ok
}

// receiveFed waits on the Feeder while the Source has nothing to poll:
// its input is read, and waited for, on this thread. ok is false when the
// Source became active meanwhile. The caller holds rsem.
func (q *Queue) receiveFed(ctx context.Context, f Feeder, src Source) (Request, int, bool, error) {
	f.Watch(false)
	q.watchCtx(ctx)
	q.fedCtx, q.fedSrc = ctx, src
	defer func() { q.fedCtx, q.fedSrc = nil, nil }()
	for {
		if r, p, ok := q.pollFed(nil, f); ok {
			return r, p, true, nil
		}
		switch {
		case q.feeder.Load() == nil:
			return Request{}, 0, false, nil // removed: the caller looks again
		case q.closed.Load():
			return Request{}, 0, true, q.closedErr()
		case ctx.Err() != nil:
			return Request{}, 0, true, ctx.Err()
		case src != nil && src.Active():
			return Request{}, 0, false, nil
		}
		q.pacer.KeepP()
		f.Wait(q.pending)
	}
}

// fedPending is the pending of a Feeder's Wait (receiveFed): whether
// Receive has something else to do than wait on the Feeder's input. It
// reads what receiveFed set, under rsem.
func (q *Queue) fedPending() bool {
	return len(q.posted) > 0 || q.closed.Load() || q.feeder.Load() == nil || q.fedCtx.Err() != nil || (q.fedSrc != nil && q.fedSrc.Active())
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
	q.wakeFeeder()
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
