package qnx

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
)

// peer is this process's simpl connection to one QNX channel, shared by
// every coid to it (as QNX shares one server connection per process).
// Its outbox sends pulses, then the disconnect, one at a time, from a
// goroutine that runs only while the outbox holds something.
type peer struct {
	name string // its key in state.peers
	sc   *simpl.Conn
	refs int  // coids using it (state.mu)
	dead bool // the channel went away: later sends are EBADF (state.mu)

	unblock bool // the channel has NTO_CHF_UNBLOCK
	closing bool // its last item (disconnect or quiet close) is queued (state.mu)

	mu      sync.Mutex
	cond    sync.Cond // signalled when the outbox empties
	out     []outItem
	running bool // the outbox goroutine runs
}

type outItem struct {
	kind  byte // kindPulse or kindDisconnect; 0: close quietly
	pulse header
}

// conn is one coid.
type conn struct {
	p    *peer
	chid int

	// detached ends when ConnectDetach drops the coid: MsgSends on it
	// under way are released with EBADF. Every Send on the coid runs
	// under it, so a transport registers for its end once, not per Send
	// (a thread may take turns between a few coids: package ctxwatch).
	detached context.Context
	detach   context.CancelFunc
}

func newConn(p *peer, chid int) *conn {
	c := &conn{p: p, chid: chid}
	c.detached, c.detach = context.WithCancel(context.Background())
	return c
}

// ConnectAttach connects to channel chid of process pid (0: this
// process) on node nd (only ND_LOCAL_NODE) and returns a coid: with
// NTO_SIDE_CHANNEL in index, one with that bit set; otherwise the lowest
// free id at least index (ids of their own, not file descriptors).
// Connections of one process to one channel share its server connection.
// Errors: ESRCH (no such process or channel), EINVAL (bad flags, index or
// ids), ENOREMOTE (another node).
func ConnectAttach(nd, pid, chid, index, flags int) (int, error) {
	if nd != ND_LOCAL_NODE {
		return -1, ENOREMOTE
	}
	if pid < 0 || chid <= 0 || flags&^(NTO_COF_CLOEXEC|NTO_COF_NOSHARE) != 0 {
		return -1, EINVAL
	}
	if index < 0 || (index&NTO_SIDE_CHANNEL == 0 && index >= firstScoid) {
		return -1, EINVAL
	}
	self := pid == 0 || pid == os.Getpid()
	if pid == 0 {
		pid = os.Getpid()
	}
	return attach(peerName{pid: pid, chid: chid}, self, chid, index)
}

// peerName is a channel as a client names it: by process and chid, or
// by the name it attached (name_open), which always has NTO_CHF_UNBLOCK.
type peerName struct {
	pid, chid int
	name      string
}

// attach makes a coid for the channel.
func attach(n peerName, self bool, chid, index int) (int, error) {
	p, err := getPeer(n)
	if err != nil {
		return -1, err
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	coid := -1
	if index&NTO_SIDE_CHANNEL != 0 {
		base := NTO_SIDE_CHANNEL
		if self && chid > 0 && chid <= chidMask {
			base |= selfBit | chid<<chidShift
		}
		for range 0xFFFF {
			state.nextSide = state.nextSide%0xFFFF + 1
			if state.conns[base|state.nextSide] == nil {
				coid = base | state.nextSide
				break
			}
		}
	} else {
		for c := index; c < firstScoid; c++ {
			if state.conns[c] == nil {
				coid = c
				break
			}
		}
	}
	if coid < 0 {
		p.refs--
		if p.refs == 0 {
			delete(state.peers, p.name)
			p.closeQuietly()
		}
		return -1, EAGAIN
	}
	state.conns[coid] = newConn(p, chid)
	return coid, nil
}

// getPeer returns the shared connection to name, locating it the first
// time, with a reference taken.
func getPeer(n peerName) (*peer, error) {
	key := n.name
	if key == "" {
		key = chanName(n.pid, n.chid, false)
	}
	for {
		unblock := n.name != "" // a name_attach'd channel has NTO_CHF_UNBLOCK
		state.mu.Lock()
		p := state.peers[key]
		if p != nil && p.dead {
			// Its server went: a new connection gets a new one, to the
			// server that may hold the name now, while the coids
			// still open on the old one keep it (and fail).
			delete(state.peers, key)
			p = nil
		}
		if p != nil && p.refs > 0 {
			p.refs++
			state.mu.Unlock()
			return p, nil
		}
		if p != nil && p.revive() {
			// Closing quietly (a MsgDeliverEvent's connection, its
			// pulse still on its way): used again, not waited for, so
			// that a second MsgDeliverEvent does not wait for the
			// client to take the first.
			p.closing = false
			p.refs++
			state.mu.Unlock()
			return p, nil
		}
		if p != nil {
			// Detached and still sending its disconnect: a new connection
			// waits for it, so that the server sees the disconnect first;
			// a server that takes none within setupTimeout is as one that
			// cannot be located.
			state.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			sent := p.drainCtx(ctx)
			cancel()
			if !sent {
				return nil, ESRCH
			}
			state.mu.Lock()
			if state.peers[key] == p {
				delete(state.peers, key)
			}
			state.mu.Unlock()
			continue
		}
		id, err := identity()
		state.mu.Unlock()
		if err != nil {
			return nil, EAGAIN
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		sc, err := id.Locate(ctx, key)
		if errors.Is(err, simpl.ErrNotFound) && n.name == "" {
			unblock = true
			sc, err = id.Locate(ctx, chanName(n.pid, n.chid, true))
		}
		cancel()
		if err != nil {
			releaseIdentity()
			if errors.Is(err, simpl.ErrBadName) {
				return nil, EINVAL
			}
			return nil, ESRCH
		}
		np := &peer{name: key, sc: sc, refs: 1, unblock: unblock}
		np.cond.L = &np.mu
		state.mu.Lock()
		if state.peers[key] != nil {
			// Another goroutine connected meanwhile: use its connection.
			state.mu.Unlock()
			sc.Close()
			releaseIdentity()
			continue
		}
		state.peers[key] = np
		state.mu.Unlock()
		return np, nil
	}
}

// ConnectDetach drops coid. Other goroutines' MsgSends on it under way
// are released with EBADF, as QNX releases other threads' (the server is
// not told; a message it has received is answered to nobody). When it
// was this process's last connection to its channel, the server is told
// (a DISCONNECT pulse if its channel asked for one) after the pulses
// already sent. A server passes the scoid of a disconnected client to
// release it. EINVAL for an unknown id.
func ConnectDetach(coid int) error {
	state.mu.Lock()
	c := state.conns[coid]
	if c == nil {
		cl := state.scoids[coid]
		if cl == nil {
			state.mu.Unlock()
			return EINVAL
		}
		delete(state.scoids, coid)
		state.mu.Unlock()
		cl.ch.end(cl, false) // released by its server: no pulse about it
		return nil
	}
	delete(state.conns, coid)
	p := c.p
	p.refs--
	last := p.refs == 0
	p.closing = p.closing || last
	state.mu.Unlock()
	c.detach() // other threads' MsgSends on coid: EBADF
	if last {
		p.push(outItem{kind: kindDisconnect}, true)
	}
	return nil
}

// revive takes back the quiet close of a peer nobody uses, if it is
// still queued behind other items (called with state.mu held): the peer
// then stays open. False when the outbox has a disconnect to send, or is
// at the close already.
func (p *peer) revive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Item 0 is the one run is sending, when it runs: the close is not
	// taken back from under it.
	n := len(p.out)
	if !p.running || n < 2 || p.out[n-1].kind != 0 {
		return false
	}
	p.out = p.out[:n-1]
	return true
}

// closeQuietly closes a peer nobody uses without telling the server
// (called with state.mu held).
func (p *peer) closeQuietly() {
	p.closing = true
	p.push(outItem{}, true)
}

// push queues an item for the outbox goroutine; false when full.
func (p *peer) push(it outItem, force bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && len(p.out) >= outboxLimit {
		return false
	}
	p.out = append(p.out, it)
	if !p.running {
		p.running = true
		go p.run()
	}
	return true
}

// run sends the outbox's items in order until it is empty.
func (p *peer) run() {
	for {
		p.mu.Lock()
		if len(p.out) == 0 {
			p.running = false
			p.cond.Broadcast()
			p.mu.Unlock()
			return
		}
		it := p.out[0]
		p.mu.Unlock()
		var last bool
		switch it.kind {
		case kindPulse, kindDisconnect:
			var b [headerSize]byte
			h := it.pulse
			h.kind = it.kind
			putHeader(b[:], h)
			ctx := context.Background()
			if it.kind == kindDisconnect {
				ctx = exiting.ctx()
			}
			_, err := p.sc.Send(ctx, b[:], nil)
			if err != nil && !errors.Is(err, simpl.ErrRejected) {
				p.markDead()
			}
			last = it.kind == kindDisconnect
		default:
			last = true
		}
		if last {
			p.sc.Close()
			releaseIdentity()
		}
		p.mu.Lock()
		copy(p.out, p.out[1:])
		p.out = p.out[:len(p.out)-1]
		p.mu.Unlock()
	}
}

// drainCtx is drain within ctx: false when ctx ended first. With nothing
// queued it returns at once and allocates nothing.
func (p *peer) drainCtx(ctx context.Context) bool {
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if !running {
		return true
	}
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.running && ctx.Err() == nil {
		p.cond.Wait()
	}
	return !p.running
}

// drainSend waits, for a MsgSend, until the outbox has sent everything
// queued: within ctx (EINTR or ETIMEDOUT) and the calling thread's
// TimerTimeout for the SEND state (ETIMEDOUT, the timeout spent).
func (p *peer) drainSend(ctx context.Context, c *conn) error {
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if !running {
		return nil
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.detached, cancel)()
	if d, ok := peekTimeout(NTO_TIMEOUT_SEND); ok {
		var dcancel context.CancelFunc
		dctx, dcancel = context.WithDeadline(dctx, d)
		defer dcancel()
	}
	if p.drainCtx(dctx) {
		return nil
	}
	if c.detached.Err() != nil {
		return EBADF
	}
	if ctx.Err() != nil {
		return ctxErrno(ctx, ctx.Err(), EINTR)
	}
	takeTimeout(NTO_TIMEOUT_SEND | NTO_TIMEOUT_REPLY)
	return ETIMEDOUT
}

func (p *peer) markDead() {
	state.mu.Lock()
	p.dead = true
	state.mu.Unlock()
}

// lookupConn returns coid's connection: EBADF for an unknown coid or one
// whose channel has gone.
func lookupConn(coid int) (*conn, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	c := state.conns[coid]
	if c == nil || c.p.dead {
		return nil, EBADF
	}
	return c, nil
}

// bufs holds request and reply buffers between sends, so that a steady
// stream of MsgSends allocates nothing.
var bufs sync.Pool

func getBuf(n int) *[]byte {
	b, _ := bufs.Get().(*[]byte)
	if b == nil {
		b = new([]byte)
	}
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

// MsgSend sends smsg on coid and blocks until the server answers; the
// reply (as much as rmsg holds) is in rmsg, and the status MsgReply gave
// is returned. Errors: the errno the server passed to MsgError; EBADF
// (unknown coid, or its channel gone before the call); ESRCH (the
// channel went away while this call waited); EINTR (ctx cancelled) and
// ETIMEDOUT (ctx's deadline, or a TimerTimeout for SEND or REPLY), which
// follow QNX's unblock rules: see TimerTimeout. Any number of goroutines
// may send on one coid at once.
func MsgSend(ctx context.Context, coid int, smsg, rmsg []byte) (int, error) {
	status, _, err := msgSend(ctx, coid, smsg, rmsg)
	return status, err
}

// msgSend is MsgSend, also returning how many reply bytes it wrote into
// rmsg (QNX leaves the rest of the buffer as it was).
func msgSend(ctx context.Context, coid int, smsg, rmsg []byte) (status, got int, err error) {
	defer disarm() // whatever the way out (EBADF here, EINTR behind a pulse)
	c, err := lookupConn(coid)
	if err != nil {
		return -1, 0, err
	}
	// Pulses sent earlier arrive first; the wait for them is the message's
	// SEND state (a TimerTimeout for it bounds it too).
	if err := c.p.drainSend(ctx, c); err != nil {
		return -1, 0, err
	}
	sb := getBuf(headerSize + len(smsg))
	rb := getBuf(replyHeaderSize + len(rmsg))
	defer bufs.Put(sb)
	defer bufs.Put(rb)
	id := int32(state.sendID.Add(1))
	putHeader(*sb, header{kind: kindMsg, a: int32(coid), b: id, c: int32(sys.Gettid())})
	copy((*sb)[headerSize:], smsg)
	n, err := c.p.send(ctx, c.detached, id, *sb, *rb)
	if err != nil {
		if c.detached.Err() != nil {
			return -1, 0, EBADF // ConnectDetach released it
		}
		return -1, 0, err
	}
	status, err = c.p.decodeAnswer((*rb)[:n], rmsg)
	if err != nil {
		return -1, 0, err
	}
	return status, min(len(rmsg), max(n-replyHeaderSize, 0)), nil
}

// MsgSendnc is MsgSend: Go has no thread cancellation points.
func MsgSendnc(ctx context.Context, coid int, smsg, rmsg []byte) (int, error) {
	return MsgSend(ctx, coid, smsg, rmsg)
}

// MsgSendv is MsgSend with the message gathered from siov and the reply
// scattered over riov: only the bytes the server replied are written,
// and the parts' other bytes are left as they were, as on QNX.
func MsgSendv(ctx context.Context, coid int, siov, riov [][]byte) (int, error) {
	n := 0
	for _, p := range riov {
		n += len(p)
	}
	r := make([]byte, n)
	status, got, err := msgSend(ctx, coid, gather(siov), r)
	if err == nil {
		scatter(riov, r[:got])
	}
	return status, err
}

// decodeAnswer reads the server's answer into rmsg.
func (p *peer) decodeAnswer(a, rmsg []byte) (int, error) {
	how, v, ok := decodeReplyHeader(a)
	switch {
	case !ok:
		return -1, ESRVRFAULT
	case how == replyGone:
		p.markDead()
		return -1, ESRCH
	case how == replyError:
		return -1, syscall.Errno(v)
	}
	copy(rmsg, a[replyHeaderSize:])
	return int(v), nil
}

// send runs one simpl Send for MsgSend, with QNX's unblock rules when ctx
// can end or a timeout is armed for this thread. The simpl Send runs
// under detached, the coid's: its end (ConnectDetach) ends the Send at
// once, whatever the state, and the server is not told.
func (p *peer) send(ctx, detached context.Context, id int32, req, reply []byte) (int, error) {
	to, armed := takeTimeout(NTO_TIMEOUT_SEND | NTO_TIMEOUT_REPLY)
	if ctx.Done() == nil && !armed {
		n, err := p.sc.Send(detached, req, reply)
		return n, p.sendErr(err)
	}
	sctx, cancel := context.WithCancel(detached)
	defer cancel()
	// Where the transport knows whether the server has received the
	// message (shared memory), the end of the SEND state is its to tell:
	// ending qctx takes back a message still queued, and closes taken if
	// it was received (see simpl.UntilTaken).
	var (
		qcancel   context.CancelFunc
		taken     chan struct{}
		withdraws = p.sc.WithdrawsQueued()
	)
	if withdraws {
		var qctx context.Context
		qctx, qcancel = context.WithCancel(context.Background())
		defer qcancel()
		taken = make(chan struct{})
		var once sync.Once
		sctx = simpl.UntilTaken(sctx, qctx, func() { once.Do(func() { close(taken) }) })
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.sc.Send(sctx, req, reply)
		done <- result{n, err}
	}()
	var timer <-chan time.Time
	if armed {
		t := time.NewTimer(time.Until(to.deadline))
		defer t.Stop()
		timer = t.C
	}
	var why syscall.Errno
	states := NTO_TIMEOUT_SEND | NTO_TIMEOUT_REPLY
	select {
	case r := <-done:
		return r.n, p.sendErr(r.err)
	case <-ctx.Done():
		why = ctxErrno(ctx, ctx.Err(), EINTR).(syscall.Errno)
	case <-timer:
		why, states = ETIMEDOUT, to.flags
	}
	if !p.unblock && states == NTO_TIMEOUT_SEND|NTO_TIMEOUT_REPLY {
		// Either state ends the call at once and the server is not
		// told: withdraw the message, or leave its answer unread.
		cancel()
		if r := <-done; r.err == nil {
			return r.n, nil // answered first
		}
		return 0, why
	}
	if withdraws && states&NTO_TIMEOUT_SEND != 0 {
		// SEND-blocked: the message is taken back at once, as the QNX
		// kernel does, with no word to the server.
		qcancel()
		select {
		case r := <-done:
			if r.err == nil {
				return r.n, nil // answered first
			}
			if errors.Is(r.err, context.Canceled) {
				return 0, why // taken back
			}
			return r.n, p.sendErr(r.err)
		case <-taken:
		}
		// Off simpl's queue: the server is asked below, as it alone
		// knows whether its application has received the message (a
		// MsgReceivePulse holds what it takes, still SEND-blocked).
	}
	// Ask the server what state the message is in (see channel.unblock).
	uctx, ucancel := context.WithCancel(context.Background())
	defer ucancel()
	answer := make(chan byte, 1)
	go func() {
		var b [headerSize]byte
		putHeader(b[:], header{kind: kindUnblock, a: id, b: int32(states), c: int32(why)})
		var a [1]byte
		n, err := p.sc.Send(uctx, b[:], a[:])
		if err != nil || n != 1 {
			answer <- 0
			return
		}
		answer <- a[0]
	}()
	select {
	case r := <-done:
		ucancel()
		<-answer
		return r.n, p.sendErr(r.err)
	case a := <-answer:
		if a == unblockLeave {
			cancel()
			if r := <-done; r.err == nil {
				return r.n, nil // answered just before it was withdrawn
			}
			return 0, why
		}
		r := <-done
		return r.n, p.sendErr(r.err)
	}
}

// sendErr maps a simpl Send failure.
func (p *peer) sendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, simpl.ErrTooLarge):
		return EMSGSIZE
	case errors.Is(err, simpl.ErrRejected):
		return ESRVRFAULT
	case errors.Is(err, context.Canceled):
		return EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return ETIMEDOUT
	}
	p.markDead()
	return ESRCH
}

// MsgSendPulse queues a pulse (code -128..127, applications 0..127; a
// 32-bit value) to coid's channel and returns at once. Pulses on one coid
// arrive in order, and before any message sent later on it. priority is
// carried but not acted on (-1: the caller's). Errors: EBADF (unknown
// coid), EINVAL (code out of range), EAGAIN (outboxLimit pulses waiting).
func MsgSendPulse(coid, priority, code, value int) error {
	if code < -128 || code > 127 || int64(value) < math.MinInt32 || int64(value) > math.MaxUint32 {
		return EINVAL
	}
	c, err := lookupConn(coid)
	if err != nil {
		return err
	}
	if !c.p.push(outItem{kind: kindPulse, pulse: header{a: int32(code), b: int32(value), c: int32(priority)}}, false) {
		return EAGAIN
	}
	return nil
}

// SigEvent is QNX's struct sigevent, as far as this package uses it.
type SigEvent struct {
	Notify   int // SIGEV_PULSE, SIGEV_UNBLOCK or SIGEV_NONE
	Coid     int // SIGEV_PULSE: the connection the pulse goes through
	Priority int
	Code     int
	Value    int
}

// SigevPulseInit is SIGEV_PULSE_INIT.
func SigevPulseInit(ev *SigEvent, coid, priority, code, value int) {
	*ev = SigEvent{Notify: SIGEV_PULSE, Coid: coid, Priority: priority, Code: code, Value: value}
}

// SigevUnblockInit is SIGEV_UNBLOCK_INIT.
func SigevUnblockInit(ev *SigEvent) { *ev = SigEvent{Notify: SIGEV_UNBLOCK} }

// EventSize is the size of a SigEvent as EncodeEvent writes it into a
// message: five little-endian int32s, Notify, Coid, Priority, Code, Value.
const EventSize = 20

// EncodeEvent writes ev into b (EventSize bytes), for a client to put in
// its request; DecodeEvent reads it on the server.
func EncodeEvent(b []byte, ev SigEvent) bool {
	if len(b) < EventSize {
		return false
	}
	for i, v := range []int{ev.Notify, ev.Coid, ev.Priority, ev.Code, ev.Value} {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	return true
}

// DecodeEvent reads a SigEvent that EncodeEvent wrote.
func DecodeEvent(b []byte) (SigEvent, bool) {
	if len(b) < EventSize {
		return SigEvent{}, false
	}
	var v [5]int
	for i := range v {
		v[i] = int(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return SigEvent{Notify: v[0], Coid: v[1], Priority: v[2], Code: v[3], Value: v[4]}, true
}

// MsgDeliverEvent delivers ev to the client of rcvid, which may have been
// answered already (until its slot is reused or its client goes). For
// SIGEV_PULSE, ev.Coid must be a side-channel connection the client made
// with ConnectAttach to a channel of its own process (QNX's pattern):
// the pulse goes to that channel. Errors: ESRCH (rcvid unknown, client
// gone), EINVAL (another kind of event or coid), EBADF (the client's
// channel is gone).
func MsgDeliverEvent(rcvid int, ev *SigEvent) error {
	if ev == nil {
		return EFAULT
	}
	if ev.Notify != SIGEV_PULSE || ev.Coid&(NTO_SIDE_CHANNEL|selfBit) != NTO_SIDE_CHANNEL|selfBit {
		return EINVAL
	}
	if ev.Code < -128 || ev.Code > 127 {
		return EINVAL
	}
	cl := rcvids.client(rcvid)
	if cl == nil || cl.isGone() {
		return ESRCH
	}
	chid := ev.Coid >> chidShift & chidMask
	p, err := getPeer(peerName{pid: cl.pid, chid: chid})
	if err != nil {
		return EBADF
	}
	p.push(outItem{kind: kindPulse, pulse: header{a: int32(ev.Code), b: int32(ev.Value), c: int32(ev.Priority)}}, true)
	state.mu.Lock()
	p.refs--
	if p.refs == 0 {
		p.closeQuietly()
	}
	state.mu.Unlock()
	return nil
}

// exitSignal ends the disconnects in flight when the process shuts down
// (Shutdown): the servers learn of the exit from their pidfds instead.
type exitSignal struct {
	mu     sync.Mutex
	c      context.Context
	cancel context.CancelFunc
}

var exiting exitSignal

func (e *exitSignal) ctx() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c == nil {
		e.c, e.cancel = context.WithCancel(context.Background())
	}
	return e.c
}

// fire ends the disconnects in flight and those to come until reset.
func (e *exitSignal) fire() {
	e.ctx()
	e.cancel()
}

// reset lets later disconnects be sent again.
func (e *exitSignal) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancel()
	e.c = nil
}
