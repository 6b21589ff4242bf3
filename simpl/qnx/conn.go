package qnx

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"sync"
	"sync/atomic"
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

	// target is the channel, when it is one of this process's: the
	// incarnation this peer reaches. ChannelDestroy marks its peers dead,
	// and a new connection to a channel re-created with the same chid
	// (or name) gets a new peer.
	target *channel

	unblock bool // the channel has NTO_CHF_UNBLOCK

	// spoke is set once the server has taken a pulse of this peer, or
	// a message went out on it: the server has a record of this process
	// then (unless every message was withdrawn unreceived), and watches
	// it (a pidfd), so a disconnect need not be waited for at exit (see
	// run).
	spoke atomic.Bool

	closing bool // its last item (disconnect or quiet close) is queued (state.mu)

	mu      sync.Mutex
	cond    sync.Cond // signalled when the outbox empties
	out     []outItem
	running bool // the outbox goroutine runs
	shut    bool // run is closing it: too late to reopen
}

type outItem struct {
	kind  byte // kindPulse or kindDisconnect; 0: close quietly
	pulse header
	keep  bool // a disconnect after which the peer stays open (reopen)
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
// It does not wait for the server: after this process's last
// ConnectDetach from the channel, the disconnect still goes to the server
// first, and the new connection follows it (a new scoid there). Errors:
// ESRCH (no such process or channel), EINVAL (bad flags, index or ids),
// ENOREMOTE (another node).
func ConnectAttach(nd, pid, chid, index, flags int) (int, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
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
		target := ownChannel(n)
		p := state.peers[key]
		if p != nil && (p.dead || p.target != target) {
			// Its server went (or, for a channel of this process, this
			// is a new one with its chid or name): a new connection gets
			// a new one, to the server that may hold the name now, while
			// the coids still open on the old one keep it (and fail).
			p.dead = true
			delete(state.peers, key)
			p = nil
		}
		if p != nil && p.refs > 0 {
			p.refs++
			state.mu.Unlock()
			return p, nil
		}
		if p != nil && p.reopen() {
			// Nobody used it, and it is still to close: closing quietly
			// (a MsgDeliverEvent's connection, its pulse still on its
			// way), or sending the disconnect of the coids detached. It
			// is used again, not waited for: ConnectAttach does not
			// block, and a second MsgDeliverEvent does not wait for the
			// client to take the first. The disconnect still goes first.
			p.closing = false
			p.refs++
			state.mu.Unlock()
			return p, nil
		}
		if p != nil {
			// Closing this moment (its last item sent): a new connection
			// waits for the close, which does not block.
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
		np := &peer{name: key, sc: sc, refs: 1, unblock: unblock, target: target}
		np.cond.L = &np.mu
		state.mu.Lock()
		if state.peers[key] != nil || ownChannel(n) != target {
			// Another goroutine connected meanwhile: use its connection.
			state.mu.Unlock()
			sc.Close()
			releaseIdentity()
			continue
		}
		state.peers[key] = np
		state.open[np] = true
		state.mu.Unlock()
		return np, nil
	}
}

// ownChannel is the channel of this process that n names, nil when it
// names another process's (called with state.mu held).
func ownChannel(n peerName) *channel {
	if n.name == "" {
		if n.pid != os.Getpid() {
			return nil
		}
		return state.chans[n.chid]
	}
	for _, ch := range state.chans {
		if ch != nil && ch.sc.Name() == n.name {
			return ch
		}
	}
	return nil
}

// ConnectDetach drops coid. Other goroutines' MsgSends on it under way
// are released with EBADF, as QNX releases other threads' (the server is
// not told; a message it has received is answered to nobody). When it
// was this process's last connection to its channel, the server is told
// (a DISCONNECT pulse if its channel asked for one) after the pulses
// already sent. A server passes the scoid of a disconnected client to
// release it. EINVAL for an unknown id.
func ConnectDetach(coid int) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
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
	if p.refs == 0 && !p.closing {
		// Queued in the same step, so that a new connection to the
		// channel finds it queued (and reopens the peer behind it).
		p.closing = true
		p.finish()
	}
	state.mu.Unlock()
	c.detach() // other threads' MsgSends on coid: EBADF
	return nil
}

// reopen takes a peer nobody uses back into use, if its last item is
// still to be done (called with state.mu held): a quiet close still
// queued behind other items is taken back; a disconnect, queued or being
// sent, still goes (the server learns that the earlier connections
// ended, as on QNX, where the new one is a new server connection), but
// the peer stays open after it. False when run is closing it already.
func (p *peer) reopen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.out)
	if !p.running || p.shut || n == 0 {
		return false
	}
	switch last := &p.out[n-1]; {
	case last.kind == kindDisconnect:
		last.keep = true
		return true
	case last.kind == 0 && n >= 2:
		// Item 0 is the one run is sending: the close is not taken
		// back from under it.
		p.out = p.out[:n-1]
		return true
	}
	return false
}

// finish queues the last item of a peer whose last coid went (called
// with state.mu held, closing set): the disconnect, or a quiet close
// when the channel went (nobody to tell, and its name may be another
// channel's now).
func (p *peer) finish() {
	if p.dead || (p.target != nil && !p.spoke.Load()) {
		// A connection to this process's own channel that never sent
		// (a side channel kept for MsgDeliverEvent, say): its server is
		// this process, which may be exiting and never receive it.
		p.push(outItem{}, true)
		return
	}
	p.push(outItem{kind: kindDisconnect}, true)
}

// abandon drops the pulses a peer whose channel was destroyed still has
// to send (called with state.mu held, dead set): they have nowhere to
// go. The item being sent stays; so does a close to come, made quiet.
func (p *peer) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.out)
	if !p.running || n < 2 {
		return
	}
	closing := false
	for _, it := range p.out[1:] {
		if it.kind != kindPulse && !it.keep {
			closing = true
		}
	}
	p.out = p.out[:1]
	if closing {
		p.out = append(p.out, outItem{})
	}
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
			ctx := exiting.abandonCtx()
			if it.kind == kindDisconnect && p.spoke.Load() {
				// At exit (Shutdown) the server learns of it from
				// the process's pidfd instead. A server that has no
				// record of this process (it never took anything
				// from it) does not watch it: Shutdown waits for
				// that disconnect, within its ctx, as for pulses,
				// and ends it when its ctx ends (abandonCtx).
				ctx = exiting.ctx()
			}
			_, err := p.sc.Send(ctx, b[:], nil)
			if err != nil && !errors.Is(err, simpl.ErrRejected) {
				p.markDead()
			}
			if err == nil && it.kind == kindPulse {
				p.spoke.Store(true)
			}
			if it.kind == kindDisconnect {
				p.spoke.Store(false) // the server's record of it ends here
			}
			last = it.kind == kindDisconnect
		default:
			last = true
		}
		p.mu.Lock()
		if last && p.out[0].keep {
			last = false // reopened: the peer stays
		}
		p.shut = last
		p.mu.Unlock()
		if last {
			p.sc.Close()
			releaseIdentity()
			state.mu.Lock()
			delete(state.open, p)
			state.mu.Unlock()
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
// (unknown coid, or its channel gone before the call: a channel of this
// process as soon as it is destroyed, another process's once a send
// found it gone); ESRCH (the channel went away while this call waited,
// or, for another process's channel, before it, unknown to this one);
// EINTR (ctx cancelled) and ETIMEDOUT (ctx's deadline, or a TimerTimeout
// for SEND or REPLY), which follow QNX's unblock rules: see TimerTimeout.
// Any number of goroutines may send on one coid at once.
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
	rb := getBuf(replyHeaderSize + runSlack + len(rmsg))
	defer bufs.Put(sb)
	defer bufs.Put(rb)
	id := int32(state.sendID.Add(1))
	putHeader(*sb, header{kind: kindMsg, a: int32(coid), b: id, c: int32(sys.Gettid())})
	copy((*sb)[headerSize:], smsg)
	c.p.spoke.Store(true)
	n, err := c.p.send(ctx, c.detached, id, *sb, *rb)
	if err != nil {
		if c.detached.Err() != nil {
			return -1, 0, EBADF // ConnectDetach released it
		}
		return -1, 0, err
	}
	return c.p.decodeAnswer((*rb)[:n], rmsg)
}

// MsgSendnc is MsgSend: Go has no thread cancellation points.
func MsgSendnc(ctx context.Context, coid int, smsg, rmsg []byte) (int, error) {
	return MsgSend(ctx, coid, smsg, rmsg)
}

// MsgSendv is MsgSend with the message gathered from siov and the reply
// scattered over riov: only the bytes the server replied are written,
// and the parts' other bytes are left as they were, as on QNX.
func MsgSendv(ctx context.Context, coid int, siov, riov [][]byte) (int, error) {
	r := gather(riov) // what the parts hold, where the reply leaves gaps
	status, got, err := msgSend(ctx, coid, gather(siov), r)
	if err == nil {
		scatter(riov, r[:got])
	}
	return status, err
}

// decodeAnswer reads the server's answer into rmsg, and returns the
// status and how far into rmsg the reply reaches (the bytes before it
// that the reply left out, replyRuns' gaps, are as they were).
func (p *peer) decodeAnswer(a, rmsg []byte) (status, got int, err error) {
	how, v, ok := decodeReplyHeader(a)
	switch {
	case !ok:
		return -1, 0, ESRVRFAULT
	case how == replyGone:
		p.markDead()
		return -1, 0, ESRCH
	case how == replyError && v <= 0:
		return -1, 0, ESRVRFAULT // no errno: not an answer this package sends
	case how == replyError:
		return -1, 0, syscall.Errno(v)
	case how == replyRuns:
		got, ok := copyRuns(a[replyHeaderSize:], rmsg)
		if !ok {
			return -1, 0, ESRVRFAULT
		}
		return int(v), got, nil
	}
	return int(v), copy(rmsg, a[replyHeaderSize:]), nil
}

// copyRuns copies the runs of a replyRuns answer's data d (see wire.go)
// into rmsg, and returns how far the data reaches into rmsg; ok is false
// for a table that does not fit d.
func copyRuns(d, rmsg []byte) (got int, ok bool) {
	if len(d) < 4 {
		return 0, false
	}
	k := int(binary.LittleEndian.Uint32(d[len(d)-4:]))
	if k < 1 || k > maxRuns || len(d) < 4+8*k {
		return 0, false
	}
	data := d[:len(d)-4-8*k]
	t := d[len(data):]
	for i := range k {
		off := uint64(binary.LittleEndian.Uint32(t[8*i:]))
		n := uint64(binary.LittleEndian.Uint32(t[8*i+4:]))
		if off+n > uint64(len(data)) {
			return 0, false
		}
		if off < uint64(len(rmsg)) {
			copy(rmsg[off:], data[off:off+n])
		}
	}
	return min(len(data), len(rmsg)), true
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
// coid, or its channel gone: at once for a channel of this process),
// EINVAL (code out of range), EAGAIN (outboxLimit pulses waiting).
func MsgSendPulse(coid, priority, code, value int) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
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
// channel is gone), EAGAIN (outboxLimit pulses already wait to reach the
// client's channel: it is not receiving them; MsgSendPulse's limit).
func MsgDeliverEvent(rcvid int, ev *SigEvent) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
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
	// QNX's pulse pool, as for MsgSendPulse: a client that does not
	// receive its pulses makes later deliveries EAGAIN, not an outbox
	// without end.
	queued := p.push(outItem{kind: kindPulse, pulse: header{a: int32(ev.Code), b: int32(ev.Value), c: int32(ev.Priority)}}, false)
	state.mu.Lock()
	p.refs--
	if p.refs == 0 {
		p.closeQuietly()
	}
	state.mu.Unlock()
	if !queued {
		return EAGAIN
	}
	return nil
}

// exitSignal ends the disconnects in flight when the process shuts down
// (Shutdown): the servers learn of the exit from their pidfds instead.
// Pulses and the disconnects Shutdown waits for go under abandonCtx,
// which a Shutdown ends when it returns: none of them outlives the
// Shutdown that gave up on it.
type exitSignal struct {
	mu     sync.Mutex
	c      context.Context
	cancel context.CancelFunc
	ab     context.Context
	abEnd  context.CancelFunc
}

// abandonCtx is the context of an outgoing pulse or disconnect: the
// next Shutdown to return ends it.
func (e *exitSignal) abandonCtx() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ab == nil {
		e.ab, e.abEnd = context.WithCancel(context.Background())
	}
	return e.ab
}

// abandon ends the pulses and disconnects in flight; those sent after
// get a context of their own.
func (e *exitSignal) abandon() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.abEnd != nil {
		e.abEnd()
	}
	e.ab, e.abEnd = nil, nil
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
