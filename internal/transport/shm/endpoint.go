package shm

import (
	"context"
	"errors"
	"github.com/gosimpl/gosimpl/internal/errs"
	"math"
	"math/bits"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// DefaultMaxMessage is the largest request an endpoint accepts unless
// Options.MaxMessage says otherwise.
const DefaultMaxMessage = 64 << 20

// Limits on what senders may hold in a receiver (issue 16). A sender's
// process may hold DefaultLanesPerProcess lanes (Options.LanesPerProcess),
// each a socket and a nudge pipe here and one concurrent Send there:
// beyond them a lane handshake is answered ackTooMany, which the sender
// reports as ErrTooManyLanes, and a Conn that holds lanes of its own waits
// for one of them instead (see Conn.get). MaxLanes bounds the lanes of all
// senders.
//
// Handshakes in progress (an admitted connection waiting for its hello)
// are at most MaxHandshakesPerUser per user and maxHandshakes in all, each
// for at most helloTimeout: beyond them a connection is answered ackBusy
// (or ackBusyAll) at once if its hello is already there, else by one of
// the maxRefusing answerers if one is free, else closed at once; the
// sender tries again for a while (see busyWait). So a flood of idle
// connections by an admitted user holds at most MaxHandshakesPerUser
// descriptors and goroutines here (and the answerers' 8), and other users'
// senders still get their lanes.
const (
	DefaultLanesPerProcess = 64
	MaxHandshakesPerUser   = 16
	maxHandshakes          = 64
	// helloTimeout bounds the wait for a hello, which a sender writes as
	// soon as it has connected.
	helloTimeout = 500 * time.Millisecond
)

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
	// LanesPerProcess is the most lanes one sender process may hold (one
	// per concurrent Send); zero means DefaultLanesPerProcess.
	LanesPerProcess int
	// Priority makes Sends carry the sending thread's scheduling priority
	// in the lane header, and raise the receiver's serving thread to it
	// while they wait (see layout.go).
	Priority bool
	// Queue is where the endpoint delivers requests and proxies, shared
	// with the other transports of the name. Nil means a queue of the
	// endpoint's own, read by Endpoint.Receive.
	Queue *transport.Queue
}

// Endpoint is the receiving side of one attached name on the shm
// transport: the Source of its Queue, which polls its lanes directly. It
// also dials other receivers as the name. Safe for concurrent use; Close
// is idempotent and unblocks every waiter.
type Endpoint struct {
	name     string
	dir      string // the FIFO directory, for the addresses of peers
	opts     Options
	maxMsg   int
	maxLanes int // per sender process
	perm     os.FileMode
	uid      int
	gid      int
	ln       *net.UnixListener
	q        *transport.Queue
	ownQueue bool

	bellMap *sys.Mapping
	bellFD  *sys.FD
	bell    *bellWords
	// arrivals numbers arrivals in priority order: the FIFO requests
	// its Queue holds and the lanes' requests and proxies as this
	// receiver first sees them posted (stampLocked). Never the tickets
	// senders write: a hostile one would write one far in the past and be
	// received first forever.
	arrivals atomic.Uint32

	lanes  [MaxLanes]atomic.Pointer[rlane]
	top    atomic.Int32       // lane indices in use are below top
	nlanes atomic.Int32       // lanes set up and not released
	polls  uint32             // Poll's count of polls (see scanEvery); Poll's
	pend   [readyWords]uint64 // ready bits taken from the bell; Poll's
	cursor int                // next lane index to look at; Poll's

	done     chan struct{}
	closing  atomic.Bool
	refusing chan struct{} // a token per refused or busy connection being answered

	hsMu   sync.Mutex  // guards hsUser, hsAll and hsConns
	hsUser map[int]int // handshakes in progress by user
	hsAll  int         // handshakes in progress
	// the connections of handshakes and answers under way, which Close
	// cuts short, and their goroutines (lanes' watchers too), which it
	// waits for
	hsConns map[*net.UnixConn]struct{}
	hsWG    sync.WaitGroup

	mu       sync.Mutex // guards freeIdx, all and byPID
	freeIdx  []int
	all      map[*rlane]struct{}
	byPID    map[int]int // lanes by sender process
	closed   bool
	acceptWG sync.WaitGroup
}

// rlane is one sender lane as the receiver holds it.
type rlane struct {
	ep    *Endpoint
	index int
	conn  *net.UnixConn
	m     *sys.Mapping
	w     laneWords
	nudge *sys.FD // write end of the pipe that wakes a sender parked in Go
	whom  string
	cred  sys.Cred
	// proxies marks the Conn's proxy lane (kind laneProxies in the
	// hello), set before the lane is published and never changed: r are
	// its ring words, and it never carries a request.
	proxies bool
	r       ringWords

	mu       sync.Mutex // guards the fields below and keeps m mapped while held
	gone     bool       // the sender closed or died
	busy     bool       // a request was taken and not yet answered
	dead     bool       // released: unmapped
	gen      uint64     // counts the requests taken; names the current one
	data     []byte     // the current request, in place
	origin   []byte     // its origin as the sender wrote it (nil: none), in place
	maxReply int        // the current request's
	prio     transport.Prio
	hasPrio  bool // prio is the current request's sender's, believed
	// A proxy lane's: how many proxies were taken (the receiver's own
	// count; the shared phead is only told it), and, once the sender is
	// gone, the ptail it left (the last proxy to deliver).
	ptaken   uint32
	goneTail uint32
	// The arrival number the receiver gave the posted request when it
	// first saw it (stamped: given); see Endpoint.arrivals.
	stamp   uint32
	stamped bool
	// A proxy lane's arrival numbers, oldest first, a ring of nruns
	// from runs[run0]: the proxies below each run's end (and at or past
	// the run before's) were first seen together and share its number.
	// With the ring full, its two newest runs merge (see proxyStampLocked).
	runs        [8]stampRun
	run0, nruns int
}

// stampRun numbers the proxies of a ring up to end (exclusive, in the
// receiver's count) that it first saw at once.
type stampRun struct{ end, stamp uint32 }

// Listen starts the receiving side of name at the abstract socket addr.
// dir is the FIFO directory, where the endpoint's Dial finds its peers.
func Listen(addr, name string, opts Options) (*Endpoint, error) {
	return listenAt(addr, "", name, opts)
}

func listenAt(addr, dir, name string, opts Options) (*Endpoint, error) {
	e := &Endpoint{
		name:     name,
		dir:      dir,
		opts:     opts,
		maxMsg:   opts.MaxMessage,
		maxLanes: opts.LanesPerProcess,
		perm:     opts.Perm,
		uid:      os.Getuid(),
		gid:      os.Getgid(),
		q:        opts.Queue,
		done:     make(chan struct{}),
		all:      make(map[*rlane]struct{}),
		byPID:    make(map[int]int),
		hsUser:   make(map[int]int),
		hsConns:  make(map[*net.UnixConn]struct{}),
		refusing: make(chan struct{}, maxRefusing),
	}
	if e.maxMsg <= 0 {
		e.maxMsg = DefaultMaxMessage
	}
	if e.perm == 0 {
		e.perm = 0o600
	}
	if e.maxLanes <= 0 {
		e.maxLanes = DefaultLanesPerProcess
	}
	if e.q == nil {
		e.q, e.ownQueue = transport.NewQueue(name, opts.NoSpin), true
	}
	fd, err := sys.NewMemfd("gosimpl-bell", bellSize)
	if err != nil {
		return nil, err
	}
	m, err := sys.Map(fd.Int(), bellSize)
	if err != nil {
		fd.Close()
		return nil, err
	}
	e.bellFD, e.bellMap, e.bell = fd, m, bellOf(m)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		m.Unmap()
		fd.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			// The address holds this process's pid: it is ours already.
			return nil, errs.Errorf("attach %q: %w", name, transport.ErrNameInUse)
		}
		return nil, errs.Errorf("listen on %s: %w", addr, err)
	}
	if err := e.q.SetSource(e, servingBell{e.bell, &e.arrivals}); err != nil {
		ln.Close()
		m.Unmap()
		fd.Close()
		return nil, err
	}
	e.ln = ln
	e.acceptWG.Add(1)
	go e.acceptLoop()
	return e, nil
}

// Receive waits for the next request or proxy on the endpoint's own
// queue (Options.Queue nil).
func (e *Endpoint) Receive(ctx context.Context) (transport.Request, int, error) {
	return e.q.Receive(ctx)
}

// Dial connects to the receiver p, as this endpoint's name. A receiver
// without the shm transport (a C SIMPL program) is ErrUnreachable.
func (e *Endpoint) Dial(ctx context.Context, p transport.Peer) (transport.Conn, error) {
	if !p.Name.Local() {
		return nil, errs.Errorf("remote name %q: %w", p.Name, transport.ErrUnreachable)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.closing.Load() {
		return nil, errs.Errorf("locate from %q: %w", e.name, transport.ErrClosed)
	}
	c, err := Dial(ctx, Address(e.dir, p.Entry.Name, p.Entry.PID), p.Entry.PID, e.name, e.opts)
	if err != nil {
		return nil, err
	}
	return c, nil
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
		cred, ok := e.admit(c)
		if !ok {
			continue
		}
		if status, limit := e.startHandshake(cred.UID); status != ackOK {
			e.busy(c, status, limit)
			continue
		}
		e.goTalk(c, func() { e.handshake(c, cred) })
	}
}

// goTalk runs talk, a handshake or an answer on c, on a goroutine of its
// own, which Close waits for once it has cut c's wait short.
func (e *Endpoint) goTalk(c *net.UnixConn, talk func()) {
	e.hsMu.Lock()
	e.hsConns[c] = struct{}{}
	e.hsMu.Unlock()
	e.hsWG.Add(1)
	go func() {
		defer e.hsWG.Done()
		talk()
	}()
}

// talked is the end of c's handshake or answer (its lane, if it got one,
// lives on: Close closes it).
func (e *Endpoint) talked(c *net.UnixConn) {
	e.hsMu.Lock()
	delete(e.hsConns, c)
	e.hsMu.Unlock()
}

// startHandshake counts a handshake in progress for uid, or returns the
// ack status and limit that refuse it.
func (e *Endpoint) startHandshake(uid int) (int32, int) {
	e.hsMu.Lock()
	defer e.hsMu.Unlock()
	switch {
	case e.hsUser[uid] >= MaxHandshakesPerUser:
		return ackBusy, MaxHandshakesPerUser
	case e.hsAll >= maxHandshakes:
		return ackBusyAll, maxHandshakes
	}
	e.hsUser[uid]++
	e.hsAll++
	return ackOK, 0
}

// endHandshake uncounts a handshake of uid.
func (e *Endpoint) endHandshake(uid int) {
	e.hsMu.Lock()
	defer e.hsMu.Unlock()
	if e.hsUser[uid]--; e.hsUser[uid] <= 0 {
		delete(e.hsUser, uid)
	}
	e.hsAll--
}

// busy answers a connection beyond the handshake limits with status and
// limit, without a goroutine when its hello is already there (a sender
// writes it as soon as it connects), else through one of the answerers of
// refused connections, else not at all: it is closed at once.
func (e *Endpoint) busy(c *net.UnixConn, status int32, limit int) {
	buf := make([]byte, helloSize+1)
	oob := make([]byte, 64)
	_, oobn, err := readNonblock(c, buf, oob)
	for _, fd := range sys.ReceiveRights(oob[:max(oobn, 0)]) {
		fd.Close()
	}
	if err == nil {
		// The socket's queue is empty now, so closing it does not reset
		// the connection before the sender reads the answer.
		sys.WriteNonblock(c, encodeAck(status, limit))
		c.Close()
		return
	}
	select {
	case e.refusing <- struct{}{}:
		e.goTalk(c, func() { e.answer(c, status, limit) })
	default:
		c.Close()
	}
}

// readNonblock reads one packet and its control message from c if one is
// there, never waiting.
func readNonblock(c *net.UnixConn, b, oob []byte) (n, oobn int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), b, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, oobn, err
}

// Refused connections are answered by at most maxRefusing goroutines at a
// time, each for at most refuseTimeout; beyond them (a flood of connections
// from a user the mode does not admit) a connection is closed as soon as it
// is accepted, so a flood holds no descriptor and no goroutine here.
const (
	maxRefusing   = 8
	refuseTimeout = 250 * time.Millisecond
)

// admit checks who connected, before anything is read from them: the
// connection goes on to the handshake only if the mode admits its user.
func (e *Endpoint) admit(c *net.UnixConn) (sys.Cred, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return sys.Cred{}, false
	}
	cred, err := sys.PeerCred(rc)
	if err == nil && e.allowed(cred) {
		return cred, true
	}
	select {
	case e.refusing <- struct{}{}:
		e.goTalk(c, func() { e.answer(c, ackDenied, 0) })
	default:
		c.Close()
	}
	return cred, false
}

// answer answers a refused or busy connection with status and index. It
// reads the hello first (within refuseTimeout), so that the sender gets
// the answer rather than a reset connection. It holds a token of
// e.refusing, which it gives back.
func (e *Endpoint) answer(c *net.UnixConn, status int32, index int) {
	defer func() { <-e.refusing }()
	defer e.talked(c)
	c.SetDeadline(time.Now().Add(refuseTimeout))
	buf := make([]byte, helloSize+1)
	oob := make([]byte, 64)
	_, oobn, _, _, _ := c.ReadMsgUnix(buf, oob)
	for _, fd := range sys.ReceiveRights(oob[:max(oobn, 0)]) {
		fd.Close()
	}
	sys.SendRights(c, encodeAck(status, index))
	c.Close()
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

// handshake sets up a lane for an admitted sender, cred, counted in the
// handshakes in progress until it is answered, then serves the lane's
// socket until the sender closes it or dies.
func (e *Endpoint) handshake(c *net.UnixConn, cred sys.Cred) {
	l := e.setUp(c, cred)
	e.talked(c)
	e.endHandshake(cred.UID)
	if l == nil {
		return
	}
	// The sender writes nothing more (its proxies go through the lane's
	// ring): the read returns when it closes or dies, or breaks the
	// protocol by writing, and the lane goes either way.
	var b [1]byte
	c.Read(b[:])
	l.senderGone()
}

// setUp reads the hello of an admitted sender, cred, and answers it: it
// returns the lane, or nil when it refused it and closed c.
func (e *Endpoint) setUp(c *net.UnixConn, cred sys.Cred) *rlane {
	ack := func(status int32, idx int, fds ...*sys.FD) {
		sys.SendRights(c, encodeAck(status, idx), fds...)
	}
	c.SetDeadline(time.Now().Add(helloTimeout))
	buf := make([]byte, helloSize+1)
	oob := make([]byte, 64)
	n, oobn, _, _, rerr := c.ReadMsgUnix(buf, oob)
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		// Once more without waiting: this process may have been stopped
		// while the hello arrived.
		n, oobn, rerr = readNonblock(c, buf, oob)
	}
	fds := sys.ReceiveRights(oob[:max(oobn, 0)])
	closeFDs := func() {
		for _, fd := range fds {
			fd.Close()
		}
	}
	if rerr != nil {
		closeFDs()
		c.Close()
		return nil
	}
	whom, kind, err := decodeHello(buf[:n])
	if err != nil || len(fds) != 1 {
		closeFDs()
		ack(ackBadHello, 0)
		c.Close()
		return nil
	}
	size, err := sys.CheckMemfd(fds[0].Int(), minLaneSize, MaxLaneBytes)
	if err == nil && kind == laneProxies && size < proxyLaneSize {
		err = sys.ErrBadMemfd // too small for the ring
	}
	if err != nil {
		closeFDs()
		ack(ackBadLane, 0)
		c.Close()
		return nil
	}
	m, err := sys.Map(fds[0].Int(), size)
	closeFDs()
	if err != nil {
		ack(ackBadLane, 0)
		c.Close()
		return nil
	}
	pr, pw, err := sys.NudgePipe()
	if err != nil {
		m.Unmap()
		ack(ackFull, 0)
		c.Close()
		return nil
	}
	l := &rlane{ep: e, conn: c, m: m, w: wordsOf(m), nudge: pw, whom: whom, cred: cred}
	if kind == laneProxies {
		l.proxies, l.r = true, ringOf(m)
	}
	idx, status, limit := e.addLane(l)
	if status != ackOK {
		m.Unmap()
		pr.Close()
		pw.Close()
		ack(status, limit)
		c.Close()
		return nil
	}
	c.SetDeadline(time.Time{})
	ack(ackOK, idx, e.bellFD, pr)
	pr.Close()
	return l
}

// addLane gives l an index and publishes it; when it cannot, it returns
// ackClosed, or ackTooMany or ackFull with the limit reached.
func (e *Endpoint) addLane(l *rlane) (int, int32, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ackClosed, 0
	}
	if e.byPID[l.cred.PID] >= e.maxLanes {
		return 0, ackTooMany, e.maxLanes
	}
	var idx int
	if n := len(e.freeIdx); n > 0 {
		idx = e.freeIdx[n-1]
		e.freeIdx = e.freeIdx[:n-1]
	} else if t := int(e.top.Load()); t < MaxLanes {
		idx = t
		e.top.Store(int32(t + 1))
	} else {
		return 0, ackFull, MaxLanes
	}
	l.index = idx
	e.byPID[l.cred.PID]++
	e.all[l] = struct{}{}
	e.lanes[idx].Store(l)
	e.nlanes.Add(1)
	e.q.SourceActive()
	return idx, ackOK, 0
}

// senderGone runs when the lane's socket reports the sender closed or died.
//
// A proxy lane with proxies in its ring stays until they are taken: the
// sender triggered them before it went, as a socket's packets were read
// after its peer closed. Only those up to the ptail read here are (a
// ptail more than proxyRing ahead, or written later, is not believed).
// The bell is rung for them, in case the sender died between its ptail
// store and its own ring; it is still mapped while the lane is not dead
// (Close releases every lane before it unmaps the bell).
func (l *rlane) senderGone() {
	l.mu.Lock()
	l.gone = true
	release := !l.busy
	if l.proxies && !l.dead {
		l.goneTail = l.r.tail.Load()
		if n := l.goneTail - l.ptaken; n != 0 && n <= proxyRing {
			release = false
			l.ep.bell.ring(l.index)
		}
	}
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
	l.nudge.Close()
	l.mu.Unlock()
	l.conn.Close()
	e := l.ep
	e.mu.Lock()
	if _, ok := e.all[l]; ok {
		delete(e.all, l)
		if e.byPID[l.cred.PID]--; e.byPID[l.cred.PID] <= 0 {
			delete(e.byPID, l.cred.PID)
		}
		e.lanes[l.index].Store(nil)
		e.freeIdx = append(e.freeIdx, l.index)
		e.nlanes.Add(-1)
	}
	e.mu.Unlock()
}

// Active reports whether the endpoint has lanes to poll (transport.Source).
func (e *Endpoint) Active() bool { return e.nlanes.Load() != 0 }

// Poll takes one posted lane's message, or one proxy from a proxy lane
// (transport.Source).
func (e *Endpoint) Poll() (transport.Request, int, bool) {
	l, gen, proxy, ok := e.pollLanes()
	switch {
	case !ok:
		return transport.Request{}, 0, false
	case proxy > 0:
		return transport.Request{}, proxy, true
	}
	return transport.NewRequest(l, gen), 0, true
}

// pollLanes takes one posted lane's message (l and gen), or one proxy
// (proxy > 0). Ready bits are taken from the bell a word at a time and
// served in index order from a rotating cursor, so a busy lane cannot
// starve the others: a proxy lane gives one proxy per visit, and keeps
// its bit pending while more wait.
func (e *Endpoint) pollLanes() (*rlane, uint64, int, bool) {
	words := (int(e.top.Load()) + 63) / 64
	any := false
	for w := 0; w < words; w++ {
		if e.pend[w] == 0 && e.bell.ready[w].Load() != 0 {
			e.pend[w] = e.bell.ready[w].Swap(0)
		}
		any = any || e.pend[w] != 0
	}
	// After a sleep, and every scanEvery polls, every lane is looked at,
	// whatever bits are set: a hostile sender may keep a bit of its own
	// set (or keep posting) while it clears the others'.
	if e.polls++; e.bell.slept.Load() || e.polls%scanEvery == 0 {
		any = e.scanAll(words) || any
	}
	if !any {
		return nil, 0, 0, false
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
			if l, gen, proxy, more, ok := e.takeAny(idx); ok {
				if more {
					e.pend[w] |= 1 << b
				}
				e.cursor = idx + 1
				return l, gen, proxy, true
			}
		}
	}
	return nil, 0, 0, false
}

// scanEvery is how often (in polls) Poll looks at every lane while it
// does not sleep: a receiver kept busy by one sender's requests, that
// sender clearing the others' ready bits, still sees theirs.
const scanEvery = 1024

// scanAll marks every live lane pending, as if its ready bit were set,
// after a sleep on the bell (a timeout, or a wake whose bits a hostile
// sender cleared: see maxSleep) and every scanEvery polls; the visit
// then takes what is posted. It reports whether any lane is live.
func (e *Endpoint) scanAll(words int) bool {
	e.bell.slept.Store(false)
	any := false
	for w := 0; w < words; w++ {
		for b := 0; b < 64; b++ {
			if e.lanes[w*64+b].Load() != nil {
				e.pend[w] |= 1 << b
				any = true
			}
		}
	}
	return any
}

// takeAny takes what lane idx holds: its posted message (l and gen), or
// for a proxy lane its next proxy (proxy > 0, more when others wait).
func (e *Endpoint) takeAny(idx int) (l *rlane, gen uint64, proxy int, more, ok bool) {
	l = e.lanes[idx].Load()
	if l == nil {
		return nil, 0, 0, false, false
	}
	if l.proxies {
		proxy, more = l.takeProxy()
		return nil, 0, proxy, more, proxy > 0
	}
	l, gen, ok = e.take(idx)
	return l, gen, 0, false, ok
}

// takeProxy takes the next proxy of proxy lane l (0 when none waits);
// more reports that others wait after it. A corrupt ring, or a ring
// drained after its sender went, releases the lane.
func (l *rlane) takeProxy() (proxy int, more bool) {
	l.mu.Lock()
	proxy, _, n, drop := l.proxyLocked(true)
	l.mu.Unlock()
	if drop {
		l.release()
	}
	return proxy, n > 1
}

// proxyLocked looks at proxy lane l's next proxy, and takes it when take
// is set: it returns the proxy (0: none), its ticket and how many wait,
// that one included. drop reports that the lane must be released (by the
// caller, without l.mu): its sender is gone and nothing is left to take,
// or its ring is corrupt (see layout.go: codeBadRing is then in pcode).
// The caller holds l.mu.
func (l *rlane) proxyLocked(take bool) (proxy int, ticket, n uint32, drop bool) {
	if l.dead {
		return 0, 0, 0, false
	}
	tail := l.goneTail
	if !l.gone {
		tail = l.r.tail.Load()
	}
	n = tail - l.ptaken
	if n == 0 {
		return 0, 0, 0, l.gone
	}
	p, t, ok := decodeEntry(l.r.entry(l.ptaken).Load())
	if n > proxyRing || !ok {
		l.r.code.Store(codeBadRing)
		l.gone = true
		return 0, 0, 0, true
	}
	if take {
		l.ptaken++
		l.r.head.Store(l.ptaken)
		l.dropRunsLocked()
		drop = n == 1 && l.gone
	}
	return p, t, n, drop
}

// take claims lane idx's posted message, checking its header. A corrupt
// header is answered at once and skipped.
func (e *Endpoint) take(idx int) (*rlane, uint64, bool) {
	l := e.lanes[idx].Load()
	if l == nil {
		return nil, 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proxies || l.dead || l.gone || l.busy || !l.w.state.CompareAndSwap(lanePosted, laneTaken) {
		return nil, 0, false
	}
	n := wordInt(l.w.nbytes.Load())
	maxReply := wordInt(l.w.maxReply.Load())
	olen := wordInt(l.w.origin.Load())
	prio, hasPrio, perr := decodePrio(l.w.prio.Load())
	code := uint32(codeOK)
	switch {
	case n > len(l.w.data) || maxReply > len(l.w.data) || olen > transport.MaxOrigin || olen > len(l.w.data)-n || perr != nil:
		code = codeBadHeader
	case n > e.maxMsg:
		code = codeTooLarge
	}
	if code != codeOK {
		// Its limit, for codeTooLarge, capped to the uint32 the wire
		// carries. Compared as uint64 so this compiles where int is 32 bits
		// (there maxMsg cannot exceed the cap and comes back unchanged).
		l.answerLocked(code, int(min(uint64(e.maxMsg), math.MaxUint32)))
		return nil, 0, false
	}
	l.busy = true
	l.gen++
	l.stamped = false // the next request is stamped when seen
	l.data = l.w.data[:n:n]
	l.origin = nil
	if olen > 0 {
		l.origin = l.w.data[n : n+olen : n+olen]
	}
	l.maxReply = maxReply
	l.prio, l.hasPrio = prio, hasPrio && e.trusts(l)
	return l, l.gen, true
}

// trusts reports whether the endpoint believes the priority l's sender
// carries: only of its own user or root (see layout.go).
func (e *Endpoint) trusts(l *rlane) bool { return l.cred.UID == e.uid || l.cred.UID == 0 }

// waitingRank is the rank lane l's posted request counts at in priority
// order, and its arrival number (stampLocked); ok is false when l holds
// no posted request. The caller holds l.mu.
func (e *Endpoint) waitingRank(l *rlane) (p transport.Prio, ticket uint32, ok bool) {
	if l.proxies || l.dead || l.gone || l.busy || l.w.state.Load() != lanePosted {
		l.stamped = false // withdrawn, say: posted again, it is stamped again
		return p, 0, false
	}
	p = transport.DefaultPrio
	// A bad word is found out when the request is taken; until then it
	// counts as none.
	if q, has, err := decodePrio(l.w.prio.Load()); err == nil && has && e.trusts(l) {
		p = q
	}
	return p, e.stampLocked(l), true
}

// stampLocked is the arrival number of l's posted request or next proxy:
// the next of the receiver's count the first time the receiver sees it,
// the same after. Two posted while the receiver was busy are numbered in
// the order it looks at them, not that of their posting, which only
// their senders' words tell and a hostile sender could forge. The caller
// holds l.mu.
func (e *Endpoint) stampLocked(l *rlane) uint32 {
	if !l.stamped {
		l.stamp, l.stamped = e.arrivals.Add(1), true
	}
	return l.stamp
}

// proxyStampLocked is the arrival number of proxy lane l's next proxy,
// n proxies waiting (proxyLocked's n): those the receiver sees for the
// first time are numbered now, together. The caller holds l.mu.
func (e *Endpoint) proxyStampLocked(l *rlane, n uint32) uint32 {
	end := l.ptaken + n
	last := &l.runs[(l.run0+l.nruns-1+len(l.runs))%len(l.runs)]
	switch {
	case l.nruns > 0 && int32(end-last.end) <= 0: // none new
	case l.nruns == len(l.runs):
		// Full: the two newest runs become one, under the newer's
		// number (the older's proxies count as arrived later: only
		// their sender's loss), and the new proxies get a number of
		// their own. Nothing is numbered before it was seen.
		prev := &l.runs[(l.run0+l.nruns-2+len(l.runs))%len(l.runs)]
		prev.end, prev.stamp = last.end, last.stamp
		*last = stampRun{end: end, stamp: e.arrivals.Add(1)}
	default:
		l.runs[(l.run0+l.nruns)%len(l.runs)] = stampRun{end: end, stamp: e.arrivals.Add(1)}
		l.nruns++
	}
	return l.runs[l.run0].stamp
}

// dropRunsLocked drops the runs whose proxies were all taken. The caller
// holds l.mu.
func (l *rlane) dropRunsLocked() {
	for l.nruns > 0 && int32(l.runs[l.run0].end-l.ptaken) <= 0 {
		l.run0 = (l.run0 + 1) % len(l.runs)
		l.nruns--
	}
}

// servingBell is the bell as the receiver's Queue uses it: its arrivals
// are numbered by the receiver's own count, which the lanes' share.
type servingBell struct {
	*bellWords
	arrivals *atomic.Uint32
}

func (b servingBell) Ticket() uint32 { return b.arrivals.Add(1) }

// The endpoint is a PrioSource: the queue can receive from it in priority
// order.
var _ transport.PrioSource = (*Endpoint)(nil)

// Candidates returns the best and the oldest posted request or proxy
// (transport.PrioSource). Ready bits are taken from the bell into pend as
// by Poll; a bit whose lane holds no posted request is dropped (a lane
// posted again rings again). A proxy lane's candidate is its next proxy,
// at DefaultPrio's rank (a proxy carries no priority) and the ticket its
// sender took for it.
func (e *Endpoint) Candidates() (best, oldest transport.Candidate, ok bool) {
	words := (int(e.top.Load()) + 63) / 64
	if e.bell.slept.Load() {
		e.scanAll(words) // see pollLanes
	}
	for w := 0; w < words; w++ {
		if e.bell.ready[w].Load() != 0 {
			e.pend[w] |= e.bell.ready[w].Swap(0)
		}
		for m := e.pend[w]; m != 0; {
			b := bits.TrailingZeros64(m)
			m &^= 1 << b
			idx := w*64 + b
			l := e.lanes[idx].Load()
			if l == nil {
				e.pend[w] &^= 1 << b
				continue
			}
			l.mu.Lock()
			var (
				p      transport.Prio
				ticket uint32
				posted bool
			)
			if l.proxies {
				proxy, _, n, drop := l.proxyLocked(false)
				p, posted = transport.DefaultPrio, proxy > 0
				if posted {
					ticket = e.proxyStampLocked(l, n)
				}
				l.mu.Unlock()
				if drop {
					l.release()
				}
			} else {
				p, ticket, posted = e.waitingRank(l)
				l.mu.Unlock()
			}
			if !posted {
				e.pend[w] &^= 1 << b
				continue
			}
			c := transport.Candidate{Rank: p.Rank(), Ticket: ticket, ID: idx}
			if !ok || c.Rank > best.Rank || c.Rank == best.Rank && int32(c.Ticket-best.Ticket) < 0 {
				best = c
			}
			if !ok || int32(c.Ticket-oldest.Ticket) < 0 {
				oldest = c
			}
			ok = true
		}
	}
	return best, oldest, ok
}

// Take takes the posted request, or the next proxy, of lane c.ID
// (transport.PrioSource).
func (e *Endpoint) Take(c transport.Candidate) (transport.Request, int, bool) {
	if c.ID < 0 || c.ID >= MaxLanes {
		return transport.Request{}, 0, false
	}
	e.pend[c.ID/64] &^= 1 << (c.ID % 64)
	l, gen, proxy, more, ok := e.takeAny(c.ID)
	switch {
	case !ok:
		return transport.Request{}, 0, false
	case proxy > 0:
		if more {
			e.pend[c.ID/64] |= 1 << (c.ID % 64)
		}
		return transport.Request{}, proxy, true
	}
	return transport.NewRequest(l, gen), 0, true
}

// Waiting counts the requests posted and the proxies triggered and not
// yet taken, for tests and diagnostics. Safe for concurrent use.
func (e *Endpoint) Waiting() int {
	n := 0
	top := int(e.top.Load())
	for idx := 0; idx < top; idx++ {
		if l := e.lanes[idx].Load(); l != nil {
			l.mu.Lock()
			if l.proxies {
				// Looked at, not taken: a corrupt ring counts as empty here
				// and is dropped by the next Receive.
				if !l.dead {
					tail := l.goneTail
					if !l.gone {
						tail = l.r.tail.Load()
					}
					if k := tail - l.ptaken; k <= proxyRing {
						n += int(k)
					}
				}
			} else if _, _, posted := e.waitingRank(l); posted {
				n++
			}
			l.mu.Unlock()
		}
	}
	return n
}

// MaxWaiting is the highest priority among the posted requests
// (transport.PrioSource). It looks at every lane, not at the ready bits
// (those are Receive's), so it may run alongside a Receive.
func (e *Endpoint) MaxWaiting() (best transport.Prio, ok bool) {
	top := int(e.top.Load())
	for idx := 0; idx < top; idx++ {
		l := e.lanes[idx].Load()
		if l == nil {
			continue
		}
		l.mu.Lock()
		p, _, posted := e.waitingRank(l)
		l.mu.Unlock()
		if posted && (!ok || p.Rank() > best.Rank()) {
			best, ok = p, true
		}
	}
	return best, ok
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

// Close stops accepting lanes, fails every request taken and not answered
// with ErrPeerGone for its sender, and stops its Queue polling it (and
// closes the Queue if it is the endpoint's own).
func (e *Endpoint) Close() error {
	if e.closing.Swap(true) {
		return nil
	}
	close(e.done)
	if e.ownQueue {
		e.q.Close()
	}
	e.ln.Close()
	e.acceptWG.Wait()
	// Handshakes and answers under way stop waiting for their hellos.
	e.hsMu.Lock()
	for c := range e.hsConns {
		c.SetDeadline(time.Unix(1, 0))
	}
	e.hsMu.Unlock()
	// No Receive polls the lanes or sleeps on the bell after this.
	e.q.RemoveSource(e)
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
				// The sender hears now, and the lane's shared memory and
				// nudge pipe go: the request's data stays, in a private
				// copy, until its holder answers (which then fails), so
				// a request held and never answered keeps nothing shared.
				l.answerLocked(codeClosed, 0)
				l.gone = true
				l.m.Privatize(HeaderSize + len(l.data))
				l.nudge.Close()
			} else if !l.proxies && l.w.state.CompareAndSwap(lanePosted, laneTaken) {
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
	// Every lane's connection is closed: their watchers return, and the
	// handshakes cut short find the endpoint closed.
	e.hsWG.Wait()
	e.bellMap.Unmap()
	e.bellFD.Close()
	return nil
}
