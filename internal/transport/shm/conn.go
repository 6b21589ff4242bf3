package shm

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/ctxwatch"
	"github.com/gosimpl/gosimpl/internal/errs"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/spin"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// inflight counts this process's Sends in progress on every Conn. With
// more of them than processors, a spinning sender only takes a processor
// from another.
var inflight atomic.Int32

// copied counts the message bytes this process's transport copied between
// a lane and the caller's memory: a copying Send's request and reply, and
// a receiver's Reply. The zero-copy calls (Buffer, Data, ReplyBuffer and
// ReplyInPlace) copy none, and CopiedBytes lets tests see that they did
// not.
var copied atomic.Uint64

// CopiedBytes is how many message bytes this process's shm transport has
// copied into or out of lanes so far (see copied).
func CopiedBytes() uint64 { return copied.Load() }

// maxIdleLanes is how many unused lanes a Conn keeps for later Sends, so
// that as many concurrent Sends reuse their lanes; more are released when
// they come back.
const maxIdleLanes = 64

// idleBig is how long a lane larger than bigLane may sit unused before the
// Conn releases it, so a burst of large messages does not hold memory for
// good.
const (
	bigLane = 1 << 20
	idleBig = 2 * time.Second
)

// Conn is the sending side of one located receiver on the shm transport.
// Each concurrent Send uses a lane of its own, up to the receiver's limit
// for this process (DefaultLanesPerProcess unless it set another); Sends
// beyond it wait for a lane within their contexts (see get). Safe for
// concurrent use; Close is idempotent.
type Conn struct {
	addr    string
	pid     int
	whom    string
	maxMsg  int
	opts    Options
	spin    spin.Budget
	closing atomic.Bool

	// pmu is held by Trigger, which writes the proxy lane's ring one
	// proxy at a time, and to change plane (with mu too).
	pmu   sync.Mutex
	plane *lane // the proxy lane (see layout.go), set up by the first Trigger

	mu      sync.Mutex // guards the fields below
	closed  bool
	free    []*lane
	all     map[*lane]struct{}
	bell    *bellWords
	bellMap *sys.Mapping
	janitor *time.Timer
	freed   chan struct{} // closed (and forgotten) when a lane is put back or dropped
	// the sockets of lane handshakes under way, which Close ends, and
	// done, closed by Close, which ends a wait between two attempts
	shakes map[*net.UnixConn]struct{}
	done   chan struct{}
}

// lane is one sender lane as the sender holds it.
type lane struct {
	c     *Conn
	conn  *net.UnixConn
	m     *sys.Mapping
	w     laneWords
	nudge *os.File // read end of the nudge pipe, for a Send parked in Go
	nbuf  [64]byte
	// woken is set when this process woke a parked Send by a read
	// deadline, which the next park clears.
	woken  atomic.Bool
	index  int
	dead   atomic.Bool   // the receiver closed the lane or died
	gone   chan struct{} // closed once the watcher is done with the lane
	wakeFn func()
	idle   time.Time // when it was last put back

	// The contexts whose end wakes the lane's Send, the last few it was
	// given (see package ctxwatch): a sender that keeps its context, or
	// takes turns between a few, allocates nothing. Used only by the
	// Send holding the lane, and by destroy.
	watched ctxwatch.Set

	mapMu    sync.Mutex // held by wake and by destroy's unmap
	unmapped bool

	// A proxy lane's ring words, and the proxies written to it (ptail as
	// this side knows it); used under the Conn's pmu.
	r     ringWords
	pnext uint32
}

// Dial connects to the receiver listening at addr, which must be process
// pid, as the sender whom. It sets up one lane at once, so a receiver
// without the shm transport is found out here; ctx and handshakeTimeout
// bound that handshake (see newLane: a receiver alive and not answering in
// time is ErrUnreachable, not ErrPeerGone).
func Dial(ctx context.Context, addr string, pid int, whom string, opts Options) (*Conn, error) {
	c := &Conn{
		addr:   addr,
		pid:    pid,
		whom:   whom,
		maxMsg: opts.MaxMessage,
		opts:   opts,
		all:    make(map[*lane]struct{}),
		shakes: make(map[*net.UnixConn]struct{}),
		done:   make(chan struct{}),
	}
	c.spin.Init(opts.NoSpin)
	if c.maxMsg <= 0 {
		c.maxMsg = DefaultMaxMessage
	}
	// A lane holds at most MaxLaneData: a larger request is TooLarge
	// here, with the size, not a lane the receiver refuses.
	c.maxMsg = min(c.maxMsg, MaxLaneData-transport.MaxOrigin)
	l, err := c.newLane(ctx, 0, false)
	if err != nil {
		// The handshake may have failed after the receiver's bell was
		// mapped: nobody will close this Conn, so it goes now.
		c.Close()
		return nil, err
	}
	c.put(l)
	return c, nil
}

var _ transport.Conn = (*Conn)(nil)

// PID is the receiver's process id.
func (c *Conn) PID() int { return c.pid }

// Transport is "shm".
func (c *Conn) Transport() string { return Name }

// WithdrawsQueued is true: a Send knows whether the receiver has taken
// its request (the lane's state word), and takes back one still posted
// (transport.UntilTaken).
func (c *Conn) WithdrawsQueued() bool { return true }

// busyWait bounds how long a lane handshake is tried again while the
// receiver answers that it is busy (too many handshakes in progress) or
// hangs up without an answer though its process lives (it dropped a
// hello it did not get in time); the last error is returned after it.
const busyWait = 2 * time.Second

// handshakeTimeout bounds Dial's lane handshake when ctx has no earlier
// deadline (a variable for the tests).
var handshakeTimeout = 2 * time.Second

// newLane creates a lane holding at least need bytes and hands it to the
// receiver, within ctx. A receiver that dies is reported gone
// (ErrPeerGone) at once, since its death closes the socket; one that is
// alive and does not answer, being stopped (SIGSTOP) or swamped, is
// treated according to patient:
//
//   - patient (a new lane for a Send on a Conn that has one already): the
//     handshake waits for as long as the receiver's socket is there, within
//     ctx, as the Send on an existing lane would wait;
//   - not patient (Dial): it waits handshakeTimeout at most, then fails
//     with ErrUnreachable, not ErrPeerGone, so that Locate tries the next
//     transport: the FIFO transport reaches a stopped receiver without its
//     help, and a Send through it waits until the receiver continues, as
//     on QNX. (Before, a receiver stopped for 2 s was reported gone.)
func (c *Conn) newLane(ctx context.Context, need int, patient bool) (*lane, error) {
	return c.newLaneKind(ctx, need, laneMessages, patient)
}

// newLaneKind is newLane for a lane of kind (laneMessages or laneProxies:
// a proxy lane's size is proxyLaneSize, whatever need).
func (c *Conn) newLaneKind(ctx context.Context, need int, kind uint32, patient bool) (*lane, error) {
	var until time.Time
	backoff := 5 * time.Millisecond
	for {
		l, retry, err := c.tryLane(ctx, need, kind, patient)
		if !retry {
			return l, err
		}
		if until.IsZero() {
			until = time.Now().Add(busyWait)
		}
		if time.Now().After(until) {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-c.done:
			t.Stop()
			return nil, errs.Errorf("send: %w", transport.ErrClosed)
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// tryLane makes one attempt at newLane; retry reports an answer worth
// trying again after a while (busy, or hung up by a live receiver).
func (c *Conn) tryLane(ctx context.Context, need int, kind uint32, patient bool) (_ *lane, retry bool, _ error) {
	size := laneSize(need)
	if kind == laneProxies {
		size = proxyLaneSize
	}
	fd, err := sys.NewMemfd("gosimpl-lane", size)
	if err != nil {
		return nil, false, errs.Errorf("new lane: %w", err)
	}
	defer fd.Close()
	m, err := sys.Map(fd.Int(), size)
	if err != nil {
		return nil, false, errs.Errorf("new lane: %w", err)
	}
	fail := func(err error) (*lane, bool, error) {
		m.Unmap()
		return nil, false, err
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: c.addr, Net: "unixpacket"})
	if err != nil {
		m.Unmap()
		// A full backlog (EAGAIN) is a receiver that has not caught up
		// with its connections yet.
		retry := errors.Is(err, syscall.EAGAIN) && sys.ProcessExists(c.pid)
		return nil, retry, errs.Errorf("connect to %s: %w (%v)", c.addr, transport.ErrPeerGone, err)
	}
	rc, err := conn.SyscallConn()
	if err == nil {
		var cred sys.Cred
		if cred, err = sys.PeerCred(rc); err == nil && cred.PID != c.pid {
			err = fmt.Errorf("listener is pid %d, not %d", cred.PID, c.pid)
		}
	}
	if err != nil {
		conn.Close()
		return fail(errs.Errorf("connect to %s: %w: %v", c.addr, transport.ErrPeerGone, err))
	}
	// ctx bounds the wait, and handshakeTimeout unless patient (see
	// newLane). The socket reports the receiver's death in any case.
	deadline, _ := ctx.Deadline()
	if !patient {
		if d := time.Now().Add(handshakeTimeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	conn.SetDeadline(deadline)
	// Close ends the handshake too (see Close).
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return fail(errs.Errorf("send: %w", transport.ErrClosed))
	}
	c.shakes[conn] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.shakes, conn)
		c.mu.Unlock()
	}()
	// The end of ctx ends the handshake; stop reports whether it did.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	// A receiver that refuses this user answers before it reads the hello
	// and hangs up, so the hello may fail to go out: its answer is still
	// there to read, and says why.
	werr := sys.SendRights(conn, encodeHello(c.whom, kind), fd)
	buf := make([]byte, ackSize+1)
	oob := make([]byte, 64)
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	fds := sys.ReceiveRights(oob[:max(oobn, 0)])
	closeFDs := func() {
		for _, f := range fds {
			f.Close()
		}
	}
	if err != nil {
		if werr != nil {
			err = werr
		}
		closeFDs()
		conn.Close()
		stop()
		if cerr := ctxEnded(ctx, deadline); cerr != nil {
			return fail(cerr)
		}
		if c.closing.Load() {
			return fail(errs.Errorf("send: %w", transport.ErrClosed))
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && sys.ProcessExists(c.pid) {
			return fail(errs.Errorf("lane handshake with %s: no answer within %v (the receiver is stopped or swamped): %w",
				c.addr, handshakeTimeout, transport.ErrUnreachable))
		}
		m.Unmap()
		// Hung up without an answer: a receiver beyond its handshake
		// limits may close a connection before the hello arrives. Worth
		// another try only if it lives.
		return nil, sys.ProcessExists(c.pid), errs.Errorf("lane handshake with %s: %w: %v", c.addr, transport.ErrPeerGone, err)
	}
	status, idx, err := decodeAck(buf[:n])
	if err == nil && status == ackOK && werr != nil {
		err = errs.Errorf("lane handshake with %s: %w: %v", c.addr, transport.ErrPeerGone, werr)
	}
	if err == nil && status != ackOK {
		err = ackErr(status, idx)
		retry = status == ackBusy || status == ackBusyAll
	}
	if err == nil && len(fds) != 2 {
		err = errs.Errorf("lane handshake: %d descriptors: %w", len(fds), transport.ErrBadMessage)
	}
	if err == nil {
		err = c.mapBell(fds[0].Int())
	}
	var nudge *os.File
	if err == nil {
		if nudge, err = sys.NudgeReader(fds[1]); err != nil {
			err = errs.Errorf("lane handshake: %w: %v", transport.ErrBadMessage, err)
		}
	}
	closeFDs() // (nudge's descriptor is nudge's now: closing its FD does nothing)
	if err == nil && !stop() {
		err = ctx.Err() // ended now: its deadline may be set on the socket
	}
	if err != nil {
		stop()
		conn.Close()
		if nudge != nil {
			nudge.Close()
		}
		m.Unmap()
		return nil, retry, err
	}
	conn.SetDeadline(time.Time{})
	l := &lane{c: c, conn: conn, m: m, w: wordsOf(m), nudge: nudge, index: idx, gone: make(chan struct{})}
	if kind == laneProxies {
		l.r = ringOf(m)
	}
	l.wakeFn = l.wake
	go l.watch()
	return l, false, nil
}

// ctxEnded is ctx's error if it ended, or DeadlineExceeded if the socket
// deadline, when it was ctx's, has passed (a moment before ctx's own timer
// says so).
func ctxEnded(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && d.Equal(deadline) && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// ackErr is the sender's error for a refused handshake; index is the
// limit for the statuses of a limit.
func ackErr(status int32, index int) error {
	switch status {
	case ackFull:
		if index <= 0 {
			return errs.Errorf("receiver is out of resources for a lane: %w", transport.ErrTooManyLanes)
		}
		return errs.Errorf("receiver has no free lane: %w", &transport.LaneLimitError{Per: "receiver", Limit: index})
	case ackTooMany:
		return errs.Errorf("lane handshake: %w", &transport.LaneLimitError{Per: "process", Limit: index})
	case ackBusy:
		return errs.Errorf("receiver is busy with lane handshakes of this user: %w", &transport.LaneLimitError{Per: "user", Limit: index})
	case ackBusyAll:
		return errs.Errorf("receiver is busy with lane handshakes: %w", &transport.LaneLimitError{Per: "receiver", Limit: index})
	case ackDenied:
		return errs.Errorf("receiver refused this user: %w", os.ErrPermission)
	case ackClosed:
		return errs.Errorf("receiver is detaching: %w", transport.ErrPeerGone)
	}
	return errs.Errorf("receiver refused the lane (status %d): %w", status, transport.ErrBadMessage)
}

// mapBell maps the receiver's bell the first time a lane brings it.
func (c *Conn) mapBell(fd int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		// Close may have unmapped the bell already, with its last
		// lane: one mapped now would never be unmapped.
		return errs.Errorf("send: %w", transport.ErrClosed)
	}
	if c.bell != nil {
		return nil
	}
	if _, err := sys.CheckMemfd(fd, bellSize, bellSize); err != nil {
		return errs.Errorf("receiver's bell: %w: %v", transport.ErrBadMessage, err)
	}
	m, err := sys.Map(fd, bellSize)
	if err != nil {
		return errs.Errorf("receiver's bell: %w", err)
	}
	c.bellMap, c.bell = m, bellOf(m)
	return nil
}

// watch waits for the receiver to close the lane's socket or die, then
// marks the lane dead and wakes a Send waiting on it.
func (l *lane) watch() {
	var b [1]byte
	l.conn.Read(b[:])
	l.dead.Store(true)
	l.wake()
	close(l.gone)
}

// takeFree takes the free lane put back last, or returns nil if there is
// none or the Conn is closed.
func (c *Conn) takeFree() *lane {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.free) == 0 {
		return nil
	}
	l := c.free[len(c.free)-1]
	c.free = c.free[:len(c.free)-1]
	return l
}

// get returns an idle lane that holds need bytes, or a new one.
//
// When the receiver refuses a new lane because this process holds as many
// as it allows (DefaultLanesPerProcess), a Conn that holds lanes of its own
// (idle, or in use by other Sends and Buffers) waits, within ctx, for one
// of them: an idle one too small is dropped to make room, and a Send
// coming back frees one. One that holds none fails with ErrTooManyLanes
// (a LaneLimitError). So a process at the limit queues its concurrent
// Sends, as a receiver queues senders, rather than failing them; a Send
// with no deadline waits for as long as the lanes are held (a Buffer holds
// its lane until closed).
func (c *Conn) get(ctx context.Context, need int) (*lane, error) {
	return c.acquire(ctx, need, laneMessages)
}

// acquire is get for a lane of kind. A proxy lane is always a new one,
// not counted in c.all: the caller keeps it as c.plane. Its handshake is
// not patient (see newLane): a Trigger does not wait for a receiver that
// is stopped, it fails with ErrUnreachable after handshakeTimeout.
func (c *Conn) acquire(ctx context.Context, need int, kind uint32) (*lane, error) {
	backoff := 5 * time.Millisecond
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errs.Errorf("send: %w", transport.ErrClosed)
		}
		for i := len(c.free) - 1; i >= 0 && kind == laneMessages; i-- {
			l := c.free[i]
			if len(l.w.data) >= need {
				c.free = append(c.free[:i], c.free[i+1:]...)
				c.mu.Unlock()
				return l, nil
			}
		}
		c.mu.Unlock()
		l, err := c.newLaneKind(ctx, need, kind, kind == laneMessages)
		if err == nil {
			c.mu.Lock()
			closed := c.closed
			if !closed && kind == laneMessages {
				c.all[l] = struct{}{}
			}
			c.mu.Unlock()
			if closed {
				l.destroy()
				return nil, errs.Errorf("send: %w", transport.ErrClosed)
			}
			return l, nil
		}
		var le *transport.LaneLimitError
		if !errors.As(err, &le) || le.Per != "process" {
			return nil, err
		}
		c.mu.Lock()
		if len(c.all) == 0 || c.closed {
			c.mu.Unlock()
			return nil, err
		}
		var drop *lane
		if len(c.free) > 0 {
			// Idle, but too small for this Send: its place is worth more.
			drop = c.free[0]
			c.free = c.free[1:]
			delete(c.all, drop)
		}
		if c.freed == nil {
			c.freed = make(chan struct{})
		}
		freed := c.freed
		c.mu.Unlock()
		if drop != nil {
			drop.destroy()
		}
		// The receiver frees a lane's place when it sees the lane's socket
		// close, a moment after the drop; lanes of this process's other
		// Conns are not signalled here. So look again after a while too.
		t := time.NewTimer(backoff)
		select {
		case <-freed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// signalLocked wakes the Sends waiting in get for a lane. The caller holds
// c.mu.
func (c *Conn) signalLocked() {
	if c.freed != nil {
		close(c.freed)
		c.freed = nil
	}
}

// put makes l available to later Sends, releasing a lane when too many are
// idle.
func (c *Conn) put(l *lane) {
	c.mu.Lock()
	if c.closed || l.isGone() {
		c.mu.Unlock()
		c.discard(l)
		return
	}
	c.all[l] = struct{}{}
	var drop *lane
	if len(c.free) >= maxIdleLanes {
		drop = c.free[0] // the oldest
		c.free = c.free[1:]
		delete(c.all, drop)
	}
	if len(l.w.data) > bigLane {
		l.idle = time.Now()
		if c.janitor == nil {
			c.janitor = time.AfterFunc(idleBig, c.sweep)
		}
	}
	c.free = append(c.free, l)
	c.signalLocked()
	c.mu.Unlock()
	if drop != nil {
		drop.destroy()
	}
}

// discard drops a lane that can no longer be used.
func (c *Conn) discard(l *lane) {
	c.mu.Lock()
	delete(c.all, l)
	c.signalLocked()
	bell := c.bellToUnmapLocked()
	c.mu.Unlock()
	l.destroy()
	if bell != nil {
		bell.Unmap()
	}
}

// bellToUnmapLocked returns the bell's mapping, once, when the Conn is
// closed and no lane is left to ring it.
func (c *Conn) bellToUnmapLocked() *sys.Mapping {
	if !c.closed || len(c.all) > 0 || c.plane != nil || c.bellMap == nil {
		return nil
	}
	m := c.bellMap
	c.bellMap, c.bell = nil, nil
	return m
}

// sweep releases big lanes idle for idleBig.
func (c *Conn) sweep() {
	c.mu.Lock()
	c.janitor = nil
	var drop []*lane
	keep := c.free[:0]
	big := false
	for _, l := range c.free {
		switch {
		case len(l.w.data) <= bigLane:
			keep = append(keep, l)
		case time.Since(l.idle) >= idleBig:
			drop = append(drop, l)
			delete(c.all, l)
		default:
			keep = append(keep, l)
			big = true
		}
	}
	c.free = keep
	if big && !c.closed {
		c.janitor = time.AfterFunc(idleBig, c.sweep)
	}
	c.mu.Unlock()
	for _, l := range drop {
		l.destroy()
	}
}

func (l *lane) destroy() {
	l.watched.Stop()
	l.conn.Close()
	<-l.gone // the watcher has woken the lane for the last time
	l.mapMu.Lock()
	l.unmapped = true
	l.m.Unmap()
	l.nudge.Close()
	l.mapMu.Unlock()
}

// Trigger writes proxy (1 or more) into the Conn's proxy lane and rings
// the receiver's bell, as a Send posts a message, and returns at once
// (see layout.go). The first Trigger sets the lane up, a handshake that
// waits handshakeTimeout at most for a receiver that does not answer
// (stopped: ErrUnreachable) and busyWait at most for a place at the
// process's lane limit (it gives up an idle lane of the Conn for it, see
// get). A Trigger fails rather than wait when the receiver has not taken
// the proxyRing proxies written before (ErrTooLarge).
func (c *Conn) Trigger(proxy int) error {
	if proxy < 1 || proxy > math.MaxInt32 {
		return errs.Errorf("proxy %d (must be 1..%d): %w", proxy, math.MaxInt32, transport.ErrBadProxy)
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	l, err := c.proxyLane()
	if err != nil {
		return err
	}
	// A head the receiver wrote ahead of ptail makes the difference
	// huge: full, too. The modulo in entry keeps even that in the ring.
	if l.pnext-l.r.head.Load() >= proxyRing {
		return errs.Errorf("trigger to pid %d: the receiver is not reading (%d proxies waiting): %w", c.pid, proxyRing, transport.ErrTooLarge)
	}
	l.r.entry(l.pnext).Store(encodeEntry(int32(proxy), c.bell.Ticket()))
	l.pnext++
	l.r.tail.Store(l.pnext)
	c.bell.ring(l.index)
	return nil
}

// proxyLane returns the Conn's proxy lane, set up now if it has none. A
// lane the receiver closed is dropped with an error that says why (the
// next Trigger sets up another). The caller holds c.pmu.
func (c *Conn) proxyLane() (*lane, error) {
	if l := c.plane; l != nil {
		// The receiver writes pcode before it closes the lane's socket,
		// so a dropped ring is known here even before the watcher sees
		// the socket close.
		code := l.r.code.Load()
		if !l.isGone() && code == 0 {
			return l, nil
		}
		c.dropProxyLane()
		if code == codeBadRing {
			return nil, errs.Errorf("trigger to pid %d: the receiver found this sender's proxy ring corrupt and dropped it: %w", c.pid, transport.ErrBadMessage)
		}
		if c.closing.Load() {
			return nil, errs.Errorf("trigger: %w", transport.ErrClosed)
		}
		return nil, errs.Errorf("trigger to pid %d: receiver closed or died: %w", c.pid, transport.ErrPeerGone)
	}
	if c.closing.Load() {
		return nil, errs.Errorf("trigger: %w", transport.ErrClosed)
	}
	// The handshake is bounded by handshakeTimeout, and the wait for a
	// lane's place at the process's limit by busyWait. (The context and
	// its timer are made only here: a steady Trigger allocates nothing.)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout+busyWait)
	l, err := c.acquire(ctx, 0, laneProxies)
	cancel()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.plane = l
	}
	c.mu.Unlock()
	if closed {
		l.destroy()
		return nil, errs.Errorf("trigger: %w", transport.ErrClosed)
	}
	return l, nil
}

// dropProxyLane releases the proxy lane. Its socket's closing tells the
// receiver, which still delivers the proxies in the ring (see
// senderGone). The caller holds c.pmu.
func (c *Conn) dropProxyLane() {
	c.mu.Lock()
	l := c.plane
	c.plane = nil
	bell := c.bellToUnmapLocked()
	c.mu.Unlock()
	if l != nil {
		l.destroy()
	}
	if bell != nil {
		bell.Unmap()
	}
}

// Send copies req into a lane, wakes the receiver and waits for its
// answer, which it copies into reply.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	if len(req) > c.maxMsg {
		return 0, errs.Errorf("send to pid %d: %w", c.pid, transport.TooLarge(len(req), c.maxMsg))
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// Counted from here, so that a Send waiting for the pool's lock
	// already makes the others yield.
	crowd := inflight.Add(1)
	defer inflight.Add(-1)
	o := transport.OriginFrom(ctx)
	need := len(req)
	if o != nil {
		need += transport.MaxOrigin
	}
	gctx := ctx
	if queued, _, ok := transport.UntilTakenFrom(ctx); ok {
		// Not posted yet, so still the sender's: the end of the wait
		// in the queue ends the wait for a lane too (a new lane's
		// handshake with a stopped receiver, the lane limit).
		var stop context.CancelFunc
		gctx, stop = context.WithCancel(ctx)
		defer stop()
		defer context.AfterFunc(queued, stop)()
	}
	// A reply buffer larger than a lane holds takes what a lane holds: a
	// larger reply is ErrReplyTooLarge, with its size.
	room := min(len(reply), MaxLaneData)
	l, err := c.get(gctx, max(need, room))
	if err != nil {
		if queued, _, ok := transport.UntilTakenFrom(ctx); ok && queued.Err() != nil && ctx.Err() == nil {
			return 0, queued.Err()
		}
		return 0, err
	}
	copied.Add(uint64(copy(l.w.data, req)))
	olen := 0
	if o != nil {
		// Written in place: the lane holds MaxOrigin more bytes.
		b, err := transport.AppendOrigin(l.w.data[len(req):len(req)], o)
		if err != nil {
			c.put(l)
			return 0, errs.Errorf("send to pid %d: %w", c.pid, err)
		}
		olen = len(b)
	}
	l.w.origin.Store(uint32(olen))
	n, keep, err := c.exchange(ctx, l, len(req), room, crowd)
	if err == nil {
		copied.Add(uint64(copy(reply, l.w.data[:n])))
	}
	if keep {
		c.put(l)
	} else {
		c.discard(l)
	}
	return n, err
}

// exchange sends the n-byte request already in l and waits for the answer
// of up to maxReply bytes, left in place; it returns the reply's size.
// crowd is the count of this process's Sends in progress, this one's
// included.
// keep reports whether l may carry another message: false when the
// receiver took the message and the Send gave up, or the lane broke.
func (c *Conn) exchange(ctx context.Context, l *lane, n, maxReply int, crowd int32) (int, bool, error) {
	l.w.nbytes.Store(uint32(n))
	l.w.maxReply.Store(uint32(maxReply))
	l.w.code.Store(0)
	p, carry := c.prio()
	if carry {
		l.w.prio.Store(encodePrio(p))
	} else {
		l.w.prio.Store(0)
	}
	if carry {
		// Before the request is posted, not after: a raise made after
		// could land once the receiver has answered and set its thread
		// back, leaving the thread at this Send's priority with no
		// request of it waiting (seen under qemu, where a thread may
		// stall between the rank word and the raise).
		c.boost(p)
	}
	l.w.ticket.Store(c.bell.Ticket())
	l.w.state.Store(lanePosted)
	c.bell.ring(l.index)
	if crowd > 1 {
		// Other goroutines of this process are sending too: let them
		// post before this one waits, or one that always gets its reply
		// quickly keeps the processor and the others never send.
		runtime.Gosched()
	}

	// A lone Send spins without asking the scheduler (GOMAXPROCS takes its
	// lock) and then sleeps on the futex, the cheapest wake-up. A crowded
	// one spins only if there are processors to spare, then parks in Go
	// (see swaitPipe): a thread in FUTEX_WAIT keeps its processor, and
	// goroutines queued behind it could wait for as long as the others
	// keep it busy. The yield above already lets the goroutines queued
	// behind it send before it can send again; yielding once more after
	// the answer cost 40% of the throughput of 16 senders and bought no
	// fairness (docs/benchmarks.md).
	spin, park := true, false
	if crowd > 1 {
		spin, park = int(crowd) < runtime.GOMAXPROCS(0), true
	}
	st, qerr := l.wait(ctx, spin, park)
	switch st {
	case laneAnswered:
	case laneIdle, laneAbandoned:
		// Withdrawn before the receiver took it, or given up while it
		// worked: the receiver's late answer goes nowhere.
		keep := st == laneIdle && !l.isGone()
		if qerr != nil {
			return 0, keep, qerr
		}
		if err := ctx.Err(); err != nil {
			return 0, keep, err
		}
		if c.closing.Load() {
			return 0, keep, errs.Errorf("send: %w", transport.ErrClosed)
		}
		return 0, keep, errs.Errorf("send to pid %d: receiver closed or died: %w", c.pid, transport.ErrPeerGone)
	default:
		return 0, false, errs.Errorf("send: lane in state %d: %w", st, transport.ErrBadMessage)
	}
	code := l.w.code.Load()
	size := wordInt(l.w.nbytes.Load())
	if code != codeOK {
		l.w.state.Store(laneIdle)
		return 0, true, codeErr(code, n, maxReply, size)
	}
	if size > maxReply {
		return 0, false, errs.Errorf("reply of %d bytes for a %d-byte buffer: %w", size, maxReply, transport.ErrBadMessage)
	}
	l.w.state.Store(laneIdle)
	return size, true, nil
}

// prio is the priority a Send carries (Options.Priority): the calling
// thread's. A goroutine runs on whichever thread the runtime gives it, so
// a sender whose priority matters locks its goroutine to a thread it has
// set (see docs/realtime.md). A policy the lane cannot carry
// (SCHED_DEADLINE) is carried as none.
func (c *Conn) prio() (transport.Prio, bool) {
	if !c.opts.Priority {
		return transport.Prio{}, false
	}
	s, err := sys.GetSched(0)
	if err != nil || s.Check() != nil {
		return transport.Prio{}, false
	}
	return transport.Prio(s), true
}

// boost raises the receiver's serving thread to p while this Send waits,
// if the receiver published a thread serving at a lower rank (see
// layout.go): first the rank word, so that the receiver, which settles
// its thread again after each change of it, cannot miss the raise; then
// the thread. The change is made with this process's privileges; without
// them (EPERM) nothing is raised here, and the receiver applies p itself
// when it takes the request.
func (c *Conn) boost(p transport.Prio) {
	b := c.bell
	mine := p.Rank()
	for {
		r := b.srank.Load()
		if r == 0 || r >= mine {
			return
		}
		if b.srank.CompareAndSwap(r, mine) {
			break
		}
	}
	sys.SetThreadSched(c.pid, int(b.server.Load()), sys.Sched(p))
}

// Buffer is a lane held by one sender, for building requests and reading
// replies in place, with no copy on this side. Its layout is the lane's
// (see layout.go): one area that holds the request going out and then the
// reply coming back over it.
//
//	b, _ := conn.Buffer(4096)
//	n := encode(b.Bytes())           // build the request in place
//	reply, err := b.Send(ctx, n, 4096)
//	use(reply)                       // valid until Bytes is written again
//
// How long each view is valid: Bytes is valid until Close; a reply returned
// by Send holds until the next write to Bytes, the next Send or Close.
// Close unmaps the lane, so a view kept past Close faults when touched
// instead of reaching another message. While a Send is in flight the
// receiver owns the area; writing to it then is a bug in the caller that
// the receiver sees as a changed request.
//
// A Send that gives up after the receiver took its message (context ended)
// spends the Buffer: the receiver may still write its late answer there,
// so later Sends fail with ErrClosed and the Buffer should be closed and
// replaced. Not safe for concurrent use; Close is idempotent.
type Buffer struct {
	c     *Conn
	l     *lane
	size  int
	spent bool
}

// Buffer reserves a lane of at least size bytes for the caller (an idle
// one of the Conn's, or a new one) until Close releases it.
func (c *Conn) Buffer(ctx context.Context, size int) (transport.Buffer, error) {
	if size < 0 || size > c.maxMsg {
		return nil, errs.Errorf("buffer for pid %d: %w", c.pid, transport.TooLarge(size, c.maxMsg))
	}
	l, err := c.get(ctx, size)
	if err != nil {
		return nil, err
	}
	return &Buffer{c: c, l: l, size: size}, nil
}

// Bytes is the area to build requests in: size bytes of the lane, or nil
// once closed.
func (b *Buffer) Bytes() []byte {
	if b.l == nil {
		return nil
	}
	return b.l.w.data[:b.size:b.size]
}

// Send sends the first n bytes of Bytes and waits for an answer of up to
// maxReply bytes, which it returns as a view of the lane.
func (b *Buffer) Send(ctx context.Context, n, maxReply int) ([]byte, error) {
	switch {
	case b.l == nil:
		return nil, errs.Errorf("send from a closed buffer: %w", transport.ErrClosed)
	case b.spent:
		return nil, errs.Errorf("send from a buffer whose earlier message was abandoned: %w", transport.ErrClosed)
	}
	if err := transport.CheckBuffer(n, maxReply, b.size); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	crowd := inflight.Add(1)
	defer inflight.Add(-1)
	b.l.w.origin.Store(0) // the lane may have carried one before
	size, keep, err := b.c.exchange(ctx, b.l, n, maxReply, crowd)
	if !keep {
		b.spent = true
	}
	if err != nil {
		return nil, err
	}
	return b.l.w.data[:size:size], nil
}

// Close releases the lane: it is unmapped, never handed to another Send,
// so a view kept by mistake faults instead of corrupting a later message.
// A Buffer is meant to be kept and reused; setting one up costs a lane
// handshake with the receiver.
func (b *Buffer) Close() error {
	if b.l == nil {
		return nil
	}
	l := b.l
	b.l = nil
	b.c.discard(l)
	return nil
}

// wait spins, then sleeps on the lane's state word until the receiver
// answers, ctx ends or the receiver goes. On the way out it returns
// laneAnswered, or the state it left a withdrawn lane in: laneIdle (not
// taken: reusable) or laneAbandoned (taken: must be dropped).
//
// For a ctx made by transport.UntilTaken, the end of its queued context
// takes the request back if it is still posted, and wait returns laneIdle
// and queued's error (qerr); once the receiver has taken the request, it
// calls the context's taken function and waits on.
func (l *lane) wait(ctx context.Context, spin, park bool) (state uint32, qerr error) {
	c := l.c
	deadline := c.spin.Start()
	for spins := 0; spin; spins++ {
		if l.w.state.Load() == laneAnswered {
			c.spin.Done(true)
			return laneAnswered, nil
		}
		if spins&63 == 0 && !c.spin.More(deadline) {
			break
		}
	}
	if spin {
		c.spin.Done(false)
	}
	l.watched.Watch(ctx, l.wakeFn) // a late wake-up of a later Send is harmless: it looks again and sleeps on
	queued, taken, untilTaken := transport.UntilTakenFrom(ctx)
	if untilTaken {
		defer context.AfterFunc(queued, l.wakeFn)()
	}
	for {
		s := l.w.state.Load()
		if s == laneAnswered {
			return s, nil
		}
		if untilTaken && queued.Err() != nil {
			if l.w.state.CompareAndSwap(lanePosted, laneIdle) {
				return laneIdle, queued.Err() // still queued: taken back
			}
			// Taken (or answered meanwhile, which the loop sees): the
			// wait in the queue is over.
			untilTaken = false
			if taken != nil {
				taken()
			}
			continue
		}
		if ctx.Err() != nil || l.isGone() || c.closing.Load() {
			return l.withdraw(), nil
		}
		// Announce the sleep, then look again: whoever changes what we
		// wait for clears swait after doing so and wakes us if it was set.
		// (A swap, not a store: only a read-modify-write is a full
		// fence in every build; under the race detector a store is a
		// mere release and the look below could pass it.)
		how := uint32(swaitFutex)
		if park {
			how = swaitPipe
			if l.woken.Swap(false) {
				l.nudge.SetReadDeadline(time.Time{})
			}
		}
		l.w.swait.Swap(how)
		if l.w.state.Load() == s && ctx.Err() == nil && !(untilTaken && queued.Err() != nil) && !l.isGone() && !c.closing.Load() {
			if park {
				// Nudges may be left from earlier wake-ups; the loop
				// looks again either way.
				l.nudge.Read(l.nbuf[:])
			} else {
				sys.FutexWait(l.w.swait, swaitFutex, 0)
			}
		}
		l.w.swait.Store(swaitNone)
	}
}

// wake interrupts the Send waiting on the lane, if one sleeps; its reason
// (context, receiver gone, Close) must be visible before the call.
//
// It wakes both ways whatever swait says: swait is shared, and a
// receiver that cleared it to answer and died (or a hostile one that
// cleared it and never answered) would otherwise leave the Send asleep
// for good, unwoken by its context, the receiver's death or Close. A
// wake-up with nobody asleep costs a system call and, for a parked Send,
// one more look at the lane. Not on the answer's path: the receiver
// wakes the Send itself.
func (l *lane) wake() {
	l.mapMu.Lock()
	defer l.mapMu.Unlock()
	if l.unmapped {
		return // a late context wake-up of a dropped lane
	}
	l.w.swait.Swap(swaitNone)
	// The deadline first, then the flag that tells the Send to clear
	// it: the other way round, a Send could clear it between the two and
	// the deadline stay past, its later reads returning at once (a spin)
	// with no flag left to clear it.
	l.nudge.SetReadDeadline(time.Unix(1, 0))
	l.woken.Store(true)
	sys.FutexWake(l.w.swait, 1)
}

func (l *lane) isGone() bool { return l.dead.Load() }

// withdraw takes the message back: before the receiver took it, the lane
// is reusable; after, it is abandoned. If the answer arrived meanwhile, it
// counts.
func (l *lane) withdraw() uint32 {
	if l.w.state.CompareAndSwap(lanePosted, laneIdle) {
		return laneIdle
	}
	if l.w.state.CompareAndSwap(laneTaken, laneAbandoned) {
		return laneAbandoned
	}
	if s := l.w.state.Load(); s == laneAnswered {
		return s
	}
	return laneAbandoned
}

// Close releases every lane but those Buffers hold: Sends in progress
// return ErrClosed (their messages withdrawn, or abandoned if the
// receiver took them) and drop their lanes. A Buffer's lane stays mapped,
// and counts against the receiver's lane limit, until Buffer.Close: a
// Buffer must be closed whether or not its Conn is.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.closing.Store(true)
	c.signalLocked()
	close(c.done)
	for conn := range c.shakes {
		conn.SetDeadline(time.Unix(1, 0))
	}
	for l := range c.all {
		l.wake()
	}
	free := c.free
	c.free = nil
	for _, l := range free {
		delete(c.all, l)
	}
	if c.janitor != nil {
		c.janitor.Stop()
	}
	bell := c.bellToUnmapLocked()
	c.mu.Unlock()
	for _, l := range free {
		l.destroy()
	}
	if bell != nil {
		bell.Unmap()
	}
	// After a Trigger in progress (Triggers after this one see closing).
	c.pmu.Lock()
	c.dropProxyLane()
	c.pmu.Unlock()
	return nil
}
