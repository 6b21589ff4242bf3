package fifo

import (
	"context"
	"encoding/binary"
	"errors"
	"github.com/gosimpl/gosimpl/internal/ctxwatch"
	"github.com/gosimpl/gosimpl/internal/errs"
	"io"
	"io/fs"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// slot is one sender identity of an endpoint: a whom (the name itself for
// the first, name#k for extra concurrent Sends), its reply FIFO, and its
// own segment. A Send holds a slot exclusively from filling the segment to
// reading the reply doorbell, which is what keeps concurrent Sends from
// ever seeing each other's replies.
type slot struct {
	whom string
	path string
	rf   *os.File // the reply FIFO, open read-write
	rraw syscall.RawConn
	seg  segment // this slot's segment; mem is nil until the first Send

	// A wait for the reply doorbell is a read of rf through the netpoller.
	// Whatever must end it early (the Send's context, the receiver's exit,
	// Conn.Close) sets a read deadline in the past; dlMu orders that
	// against the wait's own end, so no deadline outlives it. With the
	// endpoint's threadWait the wait is a ppoll of rf and waker on the
	// Send's own thread instead, and what ends it early makes waker
	// readable.
	//
	// A context's end is seen by a goroutine of its own
	// (context.AfterFunc), registered once while the slot's Sends keep
	// using that context, among the last few (watched; see package
	// ctxwatch), so a sender that keeps its context, or takes turns
	// between a few, allocates nothing. That goroutine may run when the
	// wait it was meant for is over and the slot waits for another Send,
	// under another context: it ends only a wait whose own context
	// (waitCtx) has ended (see interruptCtx).
	dlMu    sync.Mutex
	armed   bool
	fired   bool
	waitCtx context.Context // the wait under way's, under dlMu
	waker   *sys.FD         // nil without threadWait

	// Used only by the Send (or drain) holding the slot, and by destroy.
	watched       ctxwatch.Set
	interruptFunc func() // interruptCtx, made once
	// With threadWait: rf's descriptor number, read and polled directly
	// (no closure through RawConn: nothing allocated), which stays open
	// until destroy; the endpoint's Close sets closing and wakes the
	// waker instead of closing rf under a wait.
	rfd     int
	closing atomic.Bool

	in [4]byte // the reply doorbell read into

	idle time.Time // when a big segment was last put back (see shrinkIdle)
}

func (e *Endpoint) newSlot(whom string) (*slot, error) {
	s := &slot{whom: whom, path: e.reg.ReplyPath(whom, e.pid)}
	s.interruptFunc = s.interruptCtx
	if err := mkfifoOwn(s.path, e.perm); err != nil {
		return nil, err
	}
	f, err := openOwnFIFO(s.path)
	if err != nil {
		os.Remove(s.path)
		return nil, err
	}
	s.rf = f
	if s.rraw, err = f.SyscallConn(); err != nil {
		f.Close()
		os.Remove(s.path)
		return nil, err
	}
	if e.threadWait {
		if s.waker, err = sys.NewWaker(); err != nil {
			f.Close()
			os.Remove(s.path)
			return nil, err
		}
		s.rraw.Control(func(fd uintptr) { s.rfd = int(fd) })
	}
	return s, nil
}

// readDoorbell is read or, with the thread wait, readOnThread.
func (s *slot) readDoorbell() (int32, error) {
	if s.waker != nil {
		return s.readOnThread()
	}
	return s.read()
}

// endWait is what the endpoint's Close does to a busy slot's wait: with
// the thread wait it sets closing and wakes the waker (rf stays open
// until the wait is over and the slot destroyed), else it closes rf,
// which ends the poller's read.
func (s *slot) endWait() {
	if s.waker != nil {
		s.closing.Store(true)
		sys.Wake(s.waker)
		return
	}
	s.rf.Close()
}

// destroy removes the slot's FIFO and frees its segment.
func (s *slot) destroy() {
	s.watched.Stop()
	s.rf.Close()
	if s.waker != nil {
		s.waker.Close()
	}
	os.Remove(s.path)
	if s.seg.mem != nil {
		sys.ShmDetach(s.seg.mem)
		s.seg.mem = nil
	}
}

func (e *Endpoint) isClosed() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// maxAbandoned bounds the requests a sender gave up on (its context
// ended) that a receiver still holds: each keeps a slot (its reply FIFO,
// its segment, two descriptors and the goroutine waiting for the late
// answer, drain) until the receiver answers or exits. A client that keeps
// retrying with short deadlines against a receiver that is stuck but
// alive would otherwise take a System V segment a try, and the system's
// are few (kernel.shmmni). Past it, a Send to that receiver waits, within
// its context, until the receiver answers one of them (or exits), as it
// would wait for the receiver anyway, and takes no slot meanwhile.
const maxAbandoned = 64

// abandonedTo is how many requests given up on receiver pid holds, and a
// channel closed when that count next drops.
func (e *Endpoint) abandonedTo(pid int) (int, <-chan struct{}) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	if e.answered == nil {
		e.answered = make(chan struct{})
	}
	return e.abandoned[pid], e.answered
}

// abandon counts d more requests given up on that receiver pid holds.
func (e *Endpoint) abandon(pid, d int) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	if e.abandoned == nil {
		e.abandoned = make(map[int]int)
	}
	if e.abandoned[pid] += d; e.abandoned[pid] <= 0 {
		delete(e.abandoned, pid)
	}
	e.abandonedAll.Add(int32(d))
	if d < 0 && e.answered != nil {
		close(e.answered) // wakes the Sends waiting for one to drop
		e.answered = nil
	}
}

// awaitRoom waits, within ctx, until receiver pid holds fewer than
// maxAbandoned of this endpoint's requests given up on.
func (c *Conn) awaitRoom(ctx context.Context) error {
	e := c.ep
	if e.abandonedAll.Load() < maxAbandoned {
		return nil // the usual case, without the lock: fewer in all
	}
	for {
		n, dropped := e.abandonedTo(c.pid)
		if n < maxAbandoned {
			return nil
		}
		select {
		case <-dropped:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.w.done:
			return c.closedErr()
		case <-e.done:
			return errs.Errorf("send from %q: %w", e.name, transport.ErrClosed)
		}
	}
}

// auxSeq numbers the auxiliary identities (NAME#k, naming.AuxWhom) of
// every endpoint of this process from one count: AuxWhom shortens a long
// name to make room for "#k", so two names of one process that share
// their first 29 bytes, numbered each from 1, would have the same
// identity, and with it the same reply FIFO (YNAME#k.PID): a reply to
// one's Send would reach the other's.
var auxSeq atomic.Int64

// maxAuxTries bounds the reply FIFOs found in the way of a new identity
// (left by dead processes that had this pid) that getSlot removes and
// passes over.
const maxAuxTries = 64

func (e *Endpoint) getSlot() (*slot, error) {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	if e.isClosed() {
		return nil, errs.Errorf("send from %q: %w", e.name, transport.ErrClosed)
	}
	var s *slot
	if n := len(e.free); n > 0 {
		s = e.free[n-1]
		e.free = e.free[:n-1]
	} else {
		var err error
		for range maxAuxTries {
			whom := naming.AuxWhom(e.name, int(auxSeq.Add(1)))
			if s, err = e.newSlot(whom); err == nil {
				break
			}
			if !errors.Is(err, fs.ErrExist) {
				return nil, errs.Errorf("send from %q: %w", e.name, err)
			}
			// Left by a dead process that had our pid: this process
			// never issues an auxiliary identity twice, so it is not
			// ours. The next try takes another number.
			os.Remove(e.reg.ReplyPath(whom, e.pid))
		}
		if err != nil {
			return nil, errs.Errorf("send from %q: %d reply FIFOs for new identities in the way: %w", e.name, maxAuxTries, err)
		}
	}
	e.busy[s] = struct{}{}
	return s, nil
}

func (e *Endpoint) putSlot(s *slot) {
	e.slotMu.Lock()
	delete(e.busy, s)
	closed := e.isClosed()
	if !closed {
		if len(s.seg.mem) > bigSegment {
			s.idle = time.Now()
		}
		e.free = append(e.free, s)
	}
	e.slotMu.Unlock()
	if closed {
		s.destroy()
	}
}

// bigSegment: a sender keeps a segment of more than bigSegment bytes only
// while it is in use, and for up to two janitor rounds (sweepEvery) after,
// for the next large Send; then it goes (shrinkIdle), and the receivers
// holding it attached let go of it at their next sweep. So the memory of
// one large message returns to the system within about 3 x sweepEvery
// (6 s) of the last Send that needed it.
const bigSegment = 1 << 20

// shrinkIdle detaches the big segments of idle slots that have not been
// used for sweepEvery; the slot makes a new segment at its next Send.
func (e *Endpoint) shrinkIdle() {
	e.slotMu.Lock()
	defer e.slotMu.Unlock()
	for _, s := range e.free {
		if len(s.seg.mem) > bigSegment && time.Since(s.idle) >= sweepEvery {
			sys.ShmDetach(s.seg.mem)
			s.seg = segment{}
		}
	}
}

// Conn is a located receiver on the FIFO transport, used through the
// endpoint it was located from (whose name is the sender's identity). Safe
// for concurrent use. Its watcher (see watch.go) notices when the receiver
// dies.
type Conn struct {
	ep   *Endpoint
	name string
	pid  int
	f    *os.File // the receiver's FIFO, write-only, non-blocking
	raw  syscall.RawConn
	w    *watcher
	// token names the receiver in a segment's claim (see segment.go),
	// from the FIFO opened: the claim is for that receiver and no other.
	token uint64

	// The doorbell's write, for raw.Write: bellFn is made once, with the
	// Conn, and the value and result pass through fields, so that a
	// doorbell (a Trigger's, say) allocates nothing; bellMu makes the
	// doorbells rung on one Conn take turns (each is one non-blocking
	// write).
	bellMu  sync.Mutex
	bellV   int32
	bellErr error
	bellFn  func(fd uintptr) bool

	drains  atomic.Int32 // drains under way (see drain), for tests
	ringing atomic.Int32 // Sends waiting for room in the FIFO (see ring), for tests
}

var _ transport.Conn = (*Conn)(nil)

// Locate finds the live owner of name and opens its receive FIFO. A remote
// name ("host:name") is ErrUnreachable.
func (e *Endpoint) Locate(name string) (*Conn, error) {
	n, err := naming.Parse(name)
	if err != nil {
		return nil, err
	}
	if !n.Local() {
		return nil, errs.Errorf("remote name %q: %w", name, transport.ErrUnreachable)
	}
	ent, err := e.reg.Lookup(n.Name)
	if err != nil {
		return nil, err
	}
	return e.open(ent)
}

// Dial opens the receive FIFO of p (transport.Endpoint).
func (e *Endpoint) Dial(ctx context.Context, p transport.Peer) (transport.Conn, error) {
	if !p.Name.Local() {
		return nil, errs.Errorf("remote name %q: %w", p.Name, transport.ErrUnreachable)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := e.open(p.Entry)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// open opens the receive FIFO of the registry entry ent.
func (e *Endpoint) open(ent naming.Entry) (*Conn, error) {
	name := ent.Name
	if e.isClosed() {
		return nil, errs.Errorf("locate from %q: %w", e.name, transport.ErrClosed)
	}
	fd, err := sys.OpenWriter(ent.Path)
	if err != nil {
		if errors.Is(err, sys.ErrNoReader) || errors.Is(err, fs.ErrNotExist) {
			return nil, errs.Errorf("%w: %q (pid %d) is not reading its FIFO", transport.ErrNotFound, name, ent.PID)
		}
		return nil, errs.Errorf("locate %q: %w", name, err)
	}
	c := &Conn{ep: e, name: name, pid: ent.PID, f: os.NewFile(uintptr(fd), ent.Path)}
	c.bellFn = c.bellWrite
	if c.raw, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, err
	}
	var ferr error
	if cerr := c.raw.Control(func(fd uintptr) { c.token, _, _, ferr = fifoToken(int(fd), c.pid) }); cerr != nil {
		ferr = cerr
	}
	if ferr != nil {
		c.f.Close()
		return nil, errs.Errorf("locate %q: %w", name, ferr)
	}
	if c.w, err = newWatcher(ent); err != nil {
		c.f.Close()
		return nil, err
	}
	// A Conn dropped without Close must not stay reachable through its
	// watcher's goroutine: the watcher refers to no Conn, and the Conn's
	// collection closes it (the FIFO's os.File has its own finalizer).
	runtime.AddCleanup(c, (*watcher).close, c.w)
	return c, nil
}

func (c *Conn) closedErr() error {
	return errs.Errorf("connection to %q: %w", c.name, transport.ErrClosed)
}

// Name and PID identify the located receiver.
func (c *Conn) Name() string { return c.name }

// PID is the receiver's process id.
func (c *Conn) PID() int { return c.pid }

// Transport is "fifo".
func (c *Conn) Transport() string { return Name }

// Buffer is a request area in ordinary memory: Sends from it copy as Send
// does (the FIFO wire has no area shared with the receiver).
func (c *Conn) Buffer(_ context.Context, size int) (transport.Buffer, error) {
	return transport.NewCopyBuffer(c, size)
}

// Close closes the connection's descriptors (the receiver's FIFO and
// pidfd) and stops watching the receiver. Sends in progress on it return
// ErrClosed; the receiver's late answers to them are discarded. It is
// idempotent.
func (c *Conn) Close() error {
	c.w.close()
	if err := c.f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// bellWrite is bellFn: it writes bellV and keeps the result in bellErr.
// Called with bellMu held.
func (c *Conn) bellWrite(fd uintptr) bool {
	c.bellErr = sys.WriteInt32(int(fd), c.bellV)
	return true
}

// doorbell writes one value to the receiver's FIFO without blocking.
func (c *Conn) doorbell(v int32) error {
	c.bellMu.Lock()
	c.bellV, c.bellErr = v, nil
	err := c.raw.Write(c.bellFn)
	werr := c.bellErr
	c.bellMu.Unlock()
	if err == nil {
		err = werr
	} else if c.w.closed.Load() {
		// RawConn reports a closed file in its own words.
		return c.closedErr()
	}
	return c.writeErr(err)
}

// ring writes a Send's doorbell. A full FIFO (thousands of waiting
// doorbells) makes the Send wait its turn rather than fail, looking again
// after a pause that doubles up to 10 ms, until ctx ends or the Conn or
// its endpoint is closed: nothing tells a writer when a reader has made
// room but Go's poller, which knows no context.
func (c *Conn) ring(ctx context.Context, v int32) error {
	err := c.doorbell(v)
	if errors.Is(err, errFIFOFull) {
		c.ringing.Add(1)
		defer c.ringing.Add(-1)
	}
	for pause := 50 * time.Microsecond; errors.Is(err, errFIFOFull); pause = min(2*pause, 10*time.Millisecond) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.w.done:
			t.Stop()
			return c.closedErr()
		case <-c.ep.done:
			t.Stop()
			return errs.Errorf("send from %q: %w", c.ep.name, transport.ErrClosed)
		case <-t.C:
		}
		err = c.doorbell(v)
	}
	return err
}

func (c *Conn) writeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrClosed):
		return c.closedErr()
	case sys.IsBrokenPipe(err):
		return errs.Errorf("%w: receiver %q (pid %d) closed its FIFO", transport.ErrPeerGone, c.name, c.pid)
	case sys.IsWouldBlock(err):
		return errFIFOFull
	}
	return errs.Errorf("doorbell to %q: %w", c.name, err)
}

// errFIFOFull is a doorbell refused by a full FIFO: the receiver is not
// reading (a pipe holds 16,384 doorbells by default). It wraps
// ErrTooLarge, as the shared-memory transport's full proxy ring does, so
// that a Trigger's caller can tell it (Sends wait their turn instead).
var errFIFOFull = errs.Errorf("the receiver is not reading: its FIFO is full: %w", transport.ErrTooLarge)

// Trigger sends proxy (>= 1) to the receiver and returns at once. If the
// receiver's FIFO is full (about 16,000 unread doorbells) it fails rather
// than block, with ErrTooLarge.
func (c *Conn) Trigger(proxy int) error {
	if proxy < 1 || proxy > math.MaxInt32 {
		return errs.Errorf("%w: %d (must be 1..%d)", transport.ErrBadProxy, proxy, math.MaxInt32)
	}
	return c.doorbell(int32(-proxy))
}

// maxData is the largest message or reply the SIMPL header can describe.
const maxData = math.MaxInt32 - HeaderSize

// Send copies req into this process's segment, rings the receiver and
// waits for the reply doorbell. The reply is copied into reply.
//
// If ctx ends (or the Conn is closed) while the receiver holds the
// request, Send returns ctx.Err() (or ErrClosed) and the slot it used is
// set aside until the late answer arrives, so that answer can never reach
// another Send. If the receiver exits first, Send returns ErrPeerGone.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	if len(req) > maxData || len(reply) > maxData {
		return 0, errs.Errorf("send to %q: %w", c.name, transport.TooLarge(max(len(req), len(reply)), maxData))
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if c.w.closed.Load() {
		return 0, c.closedErr()
	}
	if c.w.gone.Load() {
		return 0, c.goneErr(c.pid)
	}
	e := c.ep
	if err := c.awaitRoom(ctx); err != nil {
		return 0, err
	}
	s, err := e.getSlot()
	if err != nil {
		return 0, err
	}
	need := max(len(req), len(reply))
	if s.seg.mem == nil || s.seg.room() < need {
		if err := e.grow(s, need); err != nil {
			e.putSlot(s)
			return 0, err
		}
	}
	s.seg.writeHeader(s.whom, e.pid, need, len(req), len(reply))
	copy(s.seg.data(len(req)), req)
	s.seg.resetHolder()     // the last Send's may have been relayed
	s.seg.setClaim(c.token) // last: see segment.go

	if err := c.ring(ctx, int32(s.seg.id)); err != nil {
		e.putSlot(s)
		return 0, err
	}

	// hw watches the process that holds the request: the receiver, or
	// after a relay the receiver it was handed over to (see holder in
	// segment.go).
	hw := c.w
	defer func() {
		if hw != c.w {
			hw.close()
		}
	}()
	v, err := c.await(ctx, s, hw)
	hops := 0 // holders found exited, having handed the request on
	for err != nil && !errors.Is(err, os.ErrClosed) {
		// A relayer that handed the request over says so (a notice), or
		// the holder exited: a reply it rang first is in the FIFO now.
		handed := errors.Is(err, errHandedOver)
		if !handed && !hw.gone.Load() {
			if hw != c.w && c.w.gone.Load() && !c.w.closed.Load() && ctx.Err() == nil {
				// The relayer, which handed the request over and lived
				// on, has exited since: nothing to this Send.
				v, err = c.await(ctx, s, hw)
				continue
			}
			break
		}
		var ok bool
		if !handed {
			if v, ok = s.pollAnswer(); ok {
				err = nil
				break
			}
		}
		// It may have handed the request over to a live process, which
		// will answer it: wait for that one.
		pid := s.seg.holder()
		if handed && s.seg.holderIsPending() {
			v, err = c.await(ctx, s, hw) // a late notice: the relay under way will send its own
			continue
		}
		if pid == 0 || pid == hw.pid {
			if handed {
				v, err = c.await(ctx, s, hw) // a late notice, of an earlier Send's relay
				continue
			}
			e.retireSlot(s)
			return 0, c.goneErr(hw.pid)
		}
		nw, werr := watchHolder(pid)
		if werr != nil {
			// Exited too, maybe having answered, or handed it over,
			// first.
			if v, ok = s.pollAnswer(); ok {
				err = nil
				break
			}
			if next := s.seg.holder(); next != 0 && next != pid && next != hw.pid && hops < maxDeadHops {
				hops++              // a bound: the word is in memory receivers write
				err = errHandedOver // follow it
				continue
			}
			e.retireSlot(s)
			return 0, c.goneErr(pid)
		}
		if hw != c.w {
			hw.close()
		}
		hw = nw
		v, err = c.await(ctx, s, hw)
	}
	if err != nil {
		if !errors.Is(err, os.ErrClosed) {
			if ctxErr := ctx.Err(); ctxErr != nil {
				c.giveUp(s)
				return 0, ctxErr
			}
			if c.w.closed.Load() {
				c.giveUp(s)
				return 0, c.closedErr()
			}
		}
		if e.isClosed() {
			e.putSlot(s)
			return 0, errs.Errorf("send from %q: %w", e.name, transport.ErrClosed)
		}
		// The receiver may still hold the request: its answer must not
		// reach a later Send on this slot.
		e.retireSlot(s)
		return 0, errs.Errorf("send to %q: reading reply: %w", c.name, err)
	}
	defer e.putSlot(s)
	n := int(s.seg.get(offNBytes))
	switch v {
	case 0:
		if n < 0 || n > s.seg.room() {
			return 0, errs.Errorf("%w: reply size %d outside the %d-byte segment", transport.ErrBadMessage, n, s.seg.room())
		}
		if n > len(reply) {
			return 0, errs.Errorf("send to %q: %w", c.name, transport.ReplyTooLarge(n, len(reply)))
		}
		return copy(reply, s.seg.data(n)), nil
	case -1:
		return 0, errs.Errorf("send to %q: %w", c.name, codeErr(int32(n), len(req), len(reply)))
	}
	return 0, errs.Errorf("%w: reply doorbell %d", transport.ErrBadMessage, v)
}

// grow replaces the slot's segment with one that holds need bytes, and
// its claim trailer.
func (e *Endpoint) grow(s *slot, need int) error {
	size := HeaderSize + need + trailerSize
	size = (size + sys.PageSize - 1) / sys.PageSize * sys.PageSize
	id, mem, err := sys.ShmCreate(size, e.perm)
	if err != nil {
		return errs.Errorf("message buffer of %d bytes: %w", size, err)
	}
	if s.seg.mem != nil {
		sys.ShmDetach(s.seg.mem)
	}
	s.seg = segment{id: id, mem: mem}
	s.seg.setClaim(0)
	return nil
}

// await reads the slot's reply doorbell. It ends early, with the read's
// error, when ctx ends, the process holding the request exits (hw: the
// receiver's watcher c.w, or after a relay the watcher of the receiver
// the request was handed over to) or the Conn is closed; the caller tells
// which from ctx, hw.gone and c.w.closed. A reply FIFO closed by
// Endpoint.Close ends it with os.ErrClosed.
func (c *Conn) await(ctx context.Context, s *slot, hw *watcher) (int32, error) {
	return awaitWatched(ctx, s, c.w, hw)
}

// maxDeadHops bounds how many holders a Send follows that had exited
// already when it looked, each having handed the request on.
const maxDeadHops = 64

// errHandedOver is await's error for a relayer's notice that it handed
// the request over (relayedNotice): look at the holder again.
var errHandedOver = errors.New("simpl: the request was handed over")

// awaitWatched is await with w in the Conn's watcher's place: the wait
// ends when w is closed, or when hw's process exits (w's too, when hw is
// w), or with errHandedOver for a relayer's notice.
func awaitWatched(ctx context.Context, s *slot, w, hw *watcher) (int32, error) {
	w.start.Do(func() { go w.run() })
	if hw != w {
		hw.start.Do(func() { go hw.run() })
	}
	s.dlMu.Lock()
	s.armed = true
	s.waitCtx = ctx
	s.dlMu.Unlock()
	if ctx.Done() != nil {
		s.watched.Watch(ctx, s.interruptFunc)
		if ctx.Err() != nil {
			// Ended before the wait was armed: its AfterFunc may have
			// run already (for an earlier wait, under the same context).
			s.interrupt()
		}
	}
	w.mu.Lock()
	w.waiting[s] = struct{}{}
	// c.w, once its receiver has handed the request over and gone, ends
	// the wait only when the Conn is closed.
	if (hw == w && w.gone.Load()) || w.closed.Load() {
		s.interrupt()
	}
	w.mu.Unlock()
	if hw != w {
		hw.mu.Lock()
		hw.waiting[s] = struct{}{}
		if hw.gone.Load() || hw.closed.Load() {
			s.interrupt()
		}
		hw.mu.Unlock()
	}

	v, err := s.readDoorbell()
	if err == nil && v == relayedNotice {
		err = errHandedOver
	}

	w.mu.Lock()
	delete(w.waiting, s)
	w.mu.Unlock()
	if hw != w {
		hw.mu.Lock()
		delete(hw.waiting, s)
		hw.mu.Unlock()
	}
	s.dlMu.Lock()
	s.armed = false
	s.waitCtx = nil
	if s.fired {
		s.fired = false
		if s.waker != nil {
			sys.Unwake(s.waker)
		} else {
			s.rf.SetReadDeadline(time.Time{})
		}
	}
	s.dlMu.Unlock()
	return v, err
}

// interrupt ends the slot's wait for its reply, if it is waiting.
func (s *slot) interrupt() {
	s.dlMu.Lock()
	if s.armed && !s.fired {
		s.fire()
	}
	s.dlMu.Unlock()
}

// fire ends the wait under way. Called with dlMu held, armed and not
// fired.
func (s *slot) fire() {
	s.fired = true
	if s.waker != nil {
		sys.Wake(s.waker)
	} else {
		s.rf.SetReadDeadline(time.Unix(1, 0))
	}
}

// interruptCtx ends the slot's wait for its reply if that wait's own
// context has ended: a context that ends just as its Send is answered
// must not cut short the slot's next wait, for another Send (under
// another context) whose request the receiver still holds.
func (s *slot) interruptCtx() {
	s.dlMu.Lock()
	if s.armed && !s.fired && s.waitCtx != nil && s.waitCtx.Err() != nil {
		s.fire()
	}
	s.dlMu.Unlock()
}

// read waits for the reply doorbell.
func (s *slot) read() (int32, error) {
	if _, err := io.ReadFull(s.rf, s.in[:]); err != nil {
		return 0, err
	}
	return int32(binary.NativeEndian.Uint32(s.in[:])), nil
}

// readOnThread waits for the reply doorbell as read does, but in a
// system call of the calling thread (ppoll of the reply FIFO and the
// slot's waker), not in Go's poller: a C thread calling through the C
// library wakes at once, instead of through the poller's thread and the
// runtime's hand-off to it. What ends the wait early (see fire) gives
// os.ErrDeadlineExceeded, as read gives after its deadline.
func (s *slot) readOnThread() (int32, error) {
	for {
		if s.closing.Load() {
			return 0, os.ErrClosed
		}
		n, err := sys.ReadNonblock(s.rfd, s.in[:])
		switch {
		case err != nil:
			return 0, err
		case n == len(s.in):
			return int32(binary.NativeEndian.Uint32(s.in[:])), nil
		case n != 0:
			// Doorbells are written whole (4 bytes, under PIPE_BUF).
			return 0, errs.Errorf("%w: %d-byte reply doorbell", transport.ErrBadMessage, n)
		}
		s.dlMu.Lock()
		fired := s.fired
		s.dlMu.Unlock()
		if fired {
			return 0, os.ErrDeadlineExceeded
		}
		if _, err := sys.WaitReadable(s.rfd, s.waker); err != nil {
			return 0, err
		}
	}
}

// pollAnswer is poll for an answer: relayers' notices before it are
// passed over.
func (s *slot) pollAnswer() (int32, bool) {
	for {
		v, ok := s.poll()
		if !ok || v != relayedNotice {
			return v, ok
		}
	}
}

// poll reads the reply doorbell if it is there, without waiting. The
// slot's read deadline must be clear.
func (s *slot) poll() (int32, bool) {
	var n int
	var err error
	rerr := s.rraw.Read(func(fd uintptr) bool {
		n, err = sys.ReadNonblock(int(fd), s.in[:])
		return true
	})
	if rerr != nil || err != nil || n != len(s.in) {
		return 0, false
	}
	return int32(binary.NativeEndian.Uint32(s.in[:])), true
}

// giveUp leaves s, whose request the receiver may still hold, to drain,
// counting it against maxAbandoned at once.
func (c *Conn) giveUp(s *slot) {
	c.ep.abandon(c.pid, 1)
	go c.drain(s)
}

// drain waits for the answer to a Send that gave up, then returns the slot
// to the pool. If the process holding the request (the receiver, or one
// it handed the request over to) exits first, the slot is retired; if the
// endpoint closes first it is destroyed. It watches that process itself,
// not through the Conn, which the caller may close meanwhile.
func (c *Conn) drain(s *slot) {
	e := c.ep
	c.drains.Add(1)
	defer c.drains.Add(-1)
	defer e.abandon(c.pid, -1) // counted by giveUp
	pid := c.pid
	if h := s.seg.holder(); h != 0 {
		pid = h
	}
	for {
		var hw *watcher
		var err error
		if pid == c.pid {
			hw, err = newWatcher(naming.Entry{Name: c.name, PID: c.pid, Created: c.w.created, Path: c.w.path})
		} else {
			hw, err = watchHolder(pid)
		}
		if err == nil {
			_, err = awaitWatched(context.Background(), s, hw, hw)
			for errors.Is(err, errHandedOver) && (s.seg.holderIsPending() || s.seg.holder() == 0 || s.seg.holder() == pid) {
				_, err = awaitWatched(context.Background(), s, hw, hw) // a late notice
			}
			hw.close()
			if err == nil {
				e.putSlot(s)
				return
			}
			if errors.Is(err, os.ErrClosed) {
				e.retireSlot(s) // the endpoint closed
				return
			}
			if errors.Is(err, errHandedOver) {
				pid = s.seg.holder() // handed over by a relayer that lives on
				continue
			}
		}
		// The holder exited (before or while it was watched). A reply it
		// rang first is in the FIFO now.
		if _, ok := s.pollAnswer(); ok {
			e.putSlot(s)
			return
		}
		// It may have handed the request over to a live process first,
		// which will answer it: wait for that one.
		next := s.seg.holder()
		if next == 0 || next == pid {
			e.retireSlot(s)
			return
		}
		pid = next
	}
}

// retireSlot destroys a busy slot whose Send is over but whose request may
// still be answered (by a receiver it was relayed to, say). Its reply FIFO
// goes with it and its identity is never used again, so such a late answer
// finds no one rather than reaching a later Send.
func (e *Endpoint) retireSlot(s *slot) {
	e.slotMu.Lock()
	delete(e.busy, s)
	e.slotMu.Unlock()
	s.destroy()
}
