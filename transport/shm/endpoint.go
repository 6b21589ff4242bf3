package shm

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/shm/internal/sys"
)

// DefaultMaxMessage is the largest request an endpoint accepts unless
// Options.MaxMessage says otherwise.
const DefaultMaxMessage = 64 << 20

// handshakeTimeout bounds each side's wait during a lane handshake.
const handshakeTimeout = 2 * time.Second

// Options configure Listen and Dial.
type Options struct {
	// Perm decides who may connect, like a file mode: the owner always
	// (and root); the group when 0o060 is set; everyone when 0o006 is
	// set. Zero means 0600.
	Perm os.FileMode
	// MaxMessage is the largest request Receive accepts; a larger one
	// fails for its sender with ErrTooLarge. Zero means DefaultMaxMessage.
	MaxMessage int
	// NoSpin makes waits sleep at once instead of spinning first: for
	// single-core and battery-powered machines. With spinning on, a
	// waiter polls for up to a few tens of microseconds, adapting to how
	// often that pays off, before it sleeps on its futex.
	NoSpin bool
}

// Endpoint is the receiving side of one attached name on the shm
// transport. It also takes requests from other transports through Post, so
// one Receive serves them all. Safe for concurrent use; Close is idempotent
// and unblocks every waiter.
type Endpoint struct {
	name   string
	maxMsg int
	perm   os.FileMode
	uid    int
	gid    int
	ln     *net.UnixListener

	bellMu   sync.RWMutex // write-held only to unmap the bell
	bellGone bool
	bellMap  *sys.Mapping
	bellFD   int
	bell     *bellWords
	spin     spinner

	lanes   [MaxLanes]atomic.Pointer[rlane]
	top     atomic.Int32  // lane indices in use are below top
	nlanes  atomic.Int32  // lanes set up and not released
	laneUp  chan struct{} // a token when a lane is added, for Receive
	posted  chan posted   // requests from other transports
	rsem    chan struct{}
	pend    [readyWords]uint64 // ready bits taken from the bell, guarded by rsem
	cursor  int                // next lane index to look at, guarded by rsem
	flip    bool               // guarded by rsem: alternate posted and lanes first
	watched context.Context    // guarded by rsem: see watchCtx
	unwatch func() bool
	done    chan struct{}
	closing atomic.Bool

	mu       sync.Mutex // guards freeIdx and all
	freeIdx  []int
	all      map[*rlane]struct{}
	closed   bool
	acceptWG sync.WaitGroup
}

type posted struct {
	req   transport.Request
	proxy int
}

// rlane is one sender lane as the receiver holds it.
type rlane struct {
	ep    *Endpoint
	index int
	conn  *net.UnixConn
	m     *sys.Mapping
	w     laneWords
	nudge int // write end of the pipe that wakes a sender parked in Go
	whom  string
	cred  sys.Cred
	req   Request

	mu   sync.Mutex // guards the fields below and keeps m mapped while held
	gone bool       // the sender closed or died
	busy bool       // a request was taken and not yet answered
	dead bool       // released: unmapped
	gen  uint64     // counts the requests taken; names the current one
}

// Listen starts the receiving side of name at the abstract socket addr.
func Listen(addr, name string, opts Options) (*Endpoint, error) {
	e := &Endpoint{
		name:   name,
		maxMsg: opts.MaxMessage,
		perm:   opts.Perm,
		uid:    os.Getuid(),
		gid:    os.Getgid(),
		posted: make(chan posted, 1024),
		rsem:   make(chan struct{}, 1),
		laneUp: make(chan struct{}, 1),
		done:   make(chan struct{}),
		all:    make(map[*rlane]struct{}),
	}
	e.spin.init(opts.NoSpin)
	if e.maxMsg <= 0 {
		e.maxMsg = DefaultMaxMessage
	}
	if e.perm == 0 {
		e.perm = 0o600
	}
	fd, err := sys.NewMemfd("gosimpl-bell", bellSize)
	if err != nil {
		return nil, err
	}
	m, err := sys.Map(fd, bellSize)
	if err != nil {
		sys.Close(fd)
		return nil, err
	}
	e.bellFD, e.bellMap, e.bell = fd, m, bellOf(m)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		m.Unmap()
		sys.Close(fd)
		if errors.Is(err, syscall.EADDRINUSE) {
			// The address holds this process's pid: it is ours already.
			return nil, fmt.Errorf("simpl: attach %q: %w", name, transport.ErrNameInUse)
		}
		return nil, fmt.Errorf("simpl: listen on %s: %w", addr, err)
	}
	e.ln = ln
	e.acceptWG.Add(1)
	go e.acceptLoop()
	return e, nil
}

func (e *Endpoint) acceptLoop() {
	defer e.acceptWG.Done()
	for {
		c, err := e.ln.AcceptUnix()
		if err != nil {
			if e.closing.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go e.handshake(c)
	}
}

// allowed applies Perm to the connecting process's credentials.
func (e *Endpoint) allowed(c sys.Cred) bool {
	switch {
	case c.UID == e.uid || c.UID == 0:
		return true
	case (c.GID == e.gid || slices.Contains(c.Groups, e.gid)) && e.perm&0o060 != 0:
		return true
	default:
		return e.perm&0o006 != 0
	}
}

func (e *Endpoint) handshake(c *net.UnixConn) {
	ack := func(status int32, idx int, fds ...int) {
		var oob []byte
		if len(fds) > 0 {
			oob = sys.Rights(fds...)
		}
		c.WriteMsgUnix(encodeAck(status, idx), oob, nil)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return
	}
	cred, err := sys.PeerCred(rc)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	buf := make([]byte, helloSize+1)
	oob := make([]byte, 64)
	n, oobn, _, _, rerr := c.ReadMsgUnix(buf, oob)
	fds, _ := sys.ParseRights(oob[:max(oobn, 0)])
	closeFDs := func() {
		for _, fd := range fds {
			sys.Close(fd)
		}
	}
	if err != nil || !e.allowed(cred) {
		// Refused after its hello was read, so the sender surely gets the
		// answer rather than a reset connection.
		closeFDs()
		ack(ackDenied, 0)
		c.Close()
		return
	}
	if rerr != nil {
		closeFDs()
		c.Close()
		return
	}
	whom, err := decodeHello(buf[:n])
	if err != nil || len(fds) != 1 {
		closeFDs()
		ack(ackBadHello, 0)
		c.Close()
		return
	}
	size, err := sys.CheckMemfd(fds[0], minLaneSize, MaxLaneBytes)
	if err != nil {
		closeFDs()
		ack(ackBadLane, 0)
		c.Close()
		return
	}
	m, err := sys.Map(fds[0], size)
	closeFDs()
	if err != nil {
		ack(ackBadLane, 0)
		c.Close()
		return
	}
	pr, pw, err := sys.NudgePipe()
	if err != nil {
		m.Unmap()
		ack(ackFull, 0)
		c.Close()
		return
	}
	l := &rlane{ep: e, conn: c, m: m, w: wordsOf(m), nudge: pw, whom: whom, cred: cred}
	l.req.l = l
	idx, status := e.addLane(l)
	if status != ackOK {
		m.Unmap()
		sys.Close(pr)
		sys.Close(pw)
		ack(status, 0)
		c.Close()
		return
	}
	ack(ackOK, idx, e.bellFD, pr)
	sys.Close(pr)
	c.SetDeadline(time.Time{})
	// The sender writes nothing more: a read returns when it closes or
	// dies.
	var b [1]byte
	c.Read(b[:])
	l.senderGone()
}

// addLane gives l an index and publishes it; it returns ackClosed or
// ackFull when it cannot.
func (e *Endpoint) addLane(l *rlane) (int, int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ackClosed
	}
	var idx int
	if n := len(e.freeIdx); n > 0 {
		idx = e.freeIdx[n-1]
		e.freeIdx = e.freeIdx[:n-1]
	} else if t := int(e.top.Load()); t < MaxLanes {
		idx = t
		e.top.Store(int32(t + 1))
	} else {
		return 0, ackFull
	}
	l.index = idx
	e.all[l] = struct{}{}
	e.lanes[idx].Store(l)
	e.nlanes.Add(1)
	select {
	case e.laneUp <- struct{}{}:
	default:
	}
	return idx, ackOK
}

// senderGone runs when the lane's socket reports the sender closed or died.
func (l *rlane) senderGone() {
	l.mu.Lock()
	l.gone = true
	release := !l.busy
	l.mu.Unlock()
	if release {
		l.release()
	}
}

// release unmaps the lane and frees its index. The caller must not hold
// l.mu, and the lane must not be busy.
func (l *rlane) release() {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return
	}
	l.dead = true
	l.m.Unmap()
	sys.Close(l.nudge)
	l.mu.Unlock()
	l.conn.Close()
	e := l.ep
	e.mu.Lock()
	if _, ok := e.all[l]; ok {
		delete(e.all, l)
		e.lanes[l.index].Store(nil)
		e.freeIdx = append(e.freeIdx, l.index)
		e.nlanes.Add(-1)
	}
	e.mu.Unlock()
}

// Post queues a request (or a proxy) that arrived on another transport, to
// be returned by Receive in turn. It blocks while 1024 are queued; it
// returns false, and the caller must fail the request, once the endpoint
// is closed.
func (e *Endpoint) Post(req transport.Request, proxy int) bool {
	e.bellMu.RLock()
	defer e.bellMu.RUnlock()
	if e.closing.Load() {
		return false
	}
	select {
	case e.posted <- posted{req, proxy}:
	case <-e.done:
		return false
	}
	e.bell.seq.Add(1)
	if e.bell.sleepers.Load() != 0 {
		sys.FutexWake(e.bell.seq, 1)
	}
	return true
}

// Receive waits for the next request or proxy, from a lane or from Post.
func (e *Endpoint) Receive(ctx context.Context) (transport.Request, int, error) {
	select {
	case e.rsem <- struct{}{}:
	default:
		select {
		case e.rsem <- struct{}{}:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-e.done:
			return nil, 0, e.closedErr()
		}
	}
	defer func() { <-e.rsem }()

	if r, p, ok := e.poll(); ok {
		return r, p, nil
	}
	if e.nlanes.Load() == 0 {
		if r, p, ok, err := e.receivePosted(ctx); ok {
			return r, p, err
		}
	}
	deadline := e.spin.start()
	for spins := 0; ; spins++ {
		if e.closing.Load() {
			return nil, 0, e.closedErr()
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		if r, p, ok := e.poll(); ok {
			e.spin.done(deadline, true)
			return r, p, nil
		}
		if spins&63 == 0 && !e.spin.more(deadline) {
			break
		}
	}
	e.spin.done(deadline, false)
	e.watchCtx(ctx)
	for {
		if e.nlanes.Load() == 0 {
			if r, p, ok, err := e.receivePosted(ctx); ok {
				return r, p, err
			}
		}
		seq := e.bell.seq.Load()
		e.bell.sleepers.Add(1)
		r, p, ok := e.poll()
		if !ok && !e.closing.Load() && ctx.Err() == nil {
			sys.FutexWait(e.bell.seq, seq, 0)
			r, p, ok = e.poll()
		}
		e.bell.sleepers.Add(^uint32(0))
		if ok {
			return r, p, nil
		}
		if e.closing.Load() {
			return nil, 0, e.closedErr()
		}
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
	}
}

// receivePosted waits in Go, without spinning or the futex, for a request
// from another transport, while this endpoint has no lane: a FIFO request
// then costs one goroutine hand-off rather than a futex wake-up. It
// reports ok false when a lane was added meanwhile, and the caller goes
// back to watching lanes too. The caller holds rsem.
func (e *Endpoint) receivePosted(ctx context.Context) (transport.Request, int, bool, error) {
	select {
	case p := <-e.posted:
		return p.req, p.proxy, true, nil
	case <-e.laneUp:
		return nil, 0, false, nil
	case <-ctx.Done():
		return nil, 0, true, ctx.Err()
	case <-e.done:
		return nil, 0, true, e.closedErr()
	}
}

// watchCtx makes sure the end of ctx wakes a sleeping Receive. The
// registration stays for later Receives with the same context, as a server
// loop passes, so they cost no allocation; a late wake-up is harmless. The
// caller holds rsem.
func (e *Endpoint) watchCtx(ctx context.Context) {
	if ctx.Done() == nil || ctx == e.watched {
		return
	}
	if e.unwatch != nil {
		e.unwatch()
	}
	e.watched, e.unwatch = ctx, context.AfterFunc(ctx, e.wakeReceivers)
}

func (e *Endpoint) wakeReceivers() {
	e.bellMu.RLock()
	if !e.bellGone {
		e.bell.seq.Add(1)
		sys.FutexWake(e.bell.seq, 1<<30)
	}
	e.bellMu.RUnlock()
}

func (e *Endpoint) closedErr() error {
	return fmt.Errorf("simpl: receive on %q: %w", e.name, transport.ErrClosed)
}

// poll returns one waiting request, alternating between posted ones and
// lanes so neither starves the other. The caller holds rsem.
func (e *Endpoint) poll() (transport.Request, int, bool) {
	e.flip = !e.flip
	if e.flip {
		if r, p, ok := e.pollPosted(); ok {
			return r, p, true
		}
	}
	if r, ok := e.pollLanes(); ok {
		return r, 0, true
	}
	if !e.flip {
		return e.pollPosted()
	}
	return nil, 0, false
}

func (e *Endpoint) pollPosted() (transport.Request, int, bool) {
	select {
	case p := <-e.posted:
		return p.req, p.proxy, true
	default:
		return nil, 0, false
	}
}

// pollLanes takes one posted lane. Ready bits are taken from the bell a
// word at a time and served in index order from a rotating cursor, so a
// busy lane cannot starve the others.
func (e *Endpoint) pollLanes() (*Request, bool) {
	words := (int(e.top.Load()) + 63) / 64
	any := false
	for w := 0; w < words; w++ {
		if e.pend[w] == 0 && e.bell.ready[w].Load() != 0 {
			e.pend[w] = e.bell.ready[w].Swap(0)
		}
		any = any || e.pend[w] != 0
	}
	if !any {
		return nil, false
	}
	// Visit every pending bit once, in circular order from the cursor:
	// the cursor's own word first from the cursor on, the other words,
	// then the cursor's word below the cursor. Each visited bit is
	// cleared, so nothing is left pending when this returns nothing.
	start := e.cursor % (words * 64)
	sw := start / 64
	for i := 0; i <= words; i++ {
		w := (sw + i) % words
		m := e.pend[w]
		if i == 0 {
			m &^= (1 << (start % 64)) - 1
		}
		for m != 0 {
			b := bits.TrailingZeros64(m)
			m &^= 1 << b
			e.pend[w] &^= 1 << b
			idx := w*64 + b
			if r, ok := e.take(idx); ok {
				e.cursor = idx + 1
				return r, true
			}
		}
	}
	return nil, false
}

// take claims lane idx's posted message, checking its header. A corrupt
// header is answered at once and skipped.
func (e *Endpoint) take(idx int) (*Request, bool) {
	l := e.lanes[idx].Load()
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead || l.gone || l.busy || !l.w.state.CompareAndSwap(lanePosted, laneTaken) {
		return nil, false
	}
	n := int(l.w.nbytes.Load())
	maxReply := int(l.w.maxReply.Load())
	code := uint32(codeOK)
	switch {
	case n > len(l.w.data) || maxReply > len(l.w.data):
		code = codeBadHeader
	case n > e.maxMsg:
		code = codeTooLarge
	}
	if code != codeOK {
		l.answerLocked(code, 0)
		return nil, false
	}
	l.busy = true
	l.gen++
	l.req.gen = l.gen
	l.req.data = l.w.data[:n:n]
	l.req.maxReply = maxReply
	return &l.req, true
}

// answerLocked completes the lane's message with code and an n-byte reply
// already in place, and wakes the sender. It reports false when the sender
// gave up first. The caller holds l.mu.
func (l *rlane) answerLocked(code uint32, n int) bool {
	l.w.nbytes.Store(uint32(n))
	l.w.code.Store(code)
	if !l.w.state.CompareAndSwap(laneTaken, laneAnswered) {
		return false
	}
	switch l.w.swait.Swap(0) {
	case swaitNone:
	case swaitPipe:
		sys.Nudge(l.nudge)
	default:
		sys.FutexWake(l.w.swait, 1)
	}
	return true
}

// Close stops accepting lanes, fails every request taken or posted and not
// answered with ErrPeerGone for its sender, and wakes every Receive.
func (e *Endpoint) Close() error {
	if e.closing.Swap(true) {
		return nil
	}
	close(e.done)
	e.ln.Close()
	e.acceptWG.Wait()
	e.wakeReceivers()
	// Wait out Posts in flight: after this none can queue more.
	e.bellMu.Lock()
	e.bellMu.Unlock()
	// Requests queued by other transports.
	for {
		select {
		case p := <-e.posted:
			if p.req != nil {
				p.req.Abort()
			}
			continue
		default:
		}
		break
	}
	e.mu.Lock()
	e.closed = true
	lanes := make([]*rlane, 0, len(e.all))
	for l := range e.all {
		lanes = append(lanes, l)
	}
	e.mu.Unlock()
	for _, l := range lanes {
		l.mu.Lock()
		busy := l.busy
		if !l.dead {
			if busy {
				// The sender hears now; the request's data stays mapped
				// until its holder answers (which then fails).
				l.answerLocked(codeClosed, 0)
				l.gone = true
			} else if l.w.state.CompareAndSwap(lanePosted, laneTaken) {
				l.answerLocked(codeClosed, 0)
			}
		}
		l.mu.Unlock()
		if !busy {
			l.release()
		} else {
			l.conn.Close()
		}
	}
	// A Receive still inside holds rsem; once it leaves, the bell can go.
	// Post and late context wake-ups hold bellMu while they touch it.
	e.rsem <- struct{}{}
	if e.unwatch != nil {
		e.unwatch()
	}
	e.bellMu.Lock()
	e.bellGone = true
	e.bellMap.Unmap()
	sys.Close(e.bellFD)
	e.bellMu.Unlock()
	return nil
}
