package qnx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
)

// setupTimeout bounds the calls that set up a simpl connection
// (ConnectAttach, and the peers MsgDeliverEvent reaches): QNX makes them
// without blocking, so they take no context.
const setupTimeout = 10 * time.Second

// outboxLimit is how many pulses may wait to go out on one connection:
// QNX's pulse pool, whose exhaustion is EAGAIN.
const outboxLimit = 256

// Coid layout. A side-channel coid is NTO_SIDE_CHANNEL | self<<29 |
// chid<<16 | n: self is set when the connection goes to a channel of this
// very process, and then chid is that channel's (when it fits in 13 bits),
// so that a server's MsgDeliverEvent can find the client's channel from
// the coid the client put in its sigevent. Other coids are below
// firstScoid; server connection ids (scoids) start there.
const (
	selfBit    = 0x20000000
	chidShift  = 16
	chidMask   = 0x1FFF
	firstScoid = 0x10000000
)

// state is the process's QNX objects: every table is guarded by mu.
var state struct {
	mu        sync.Mutex
	chans     map[int]*channel
	conns     map[int]*conn    // coid -> connection
	peers     map[string]*peer // simpl name -> shared connection
	open      map[*peer]bool   // every peer not yet closed, for Shutdown
	scoids    map[int]*client  // server connection ids, on every channel
	nextSide  int
	nextScoid int

	ident     *simpl.Channel // this process's simpl identity for sending
	identRefs int

	sendID atomic.Uint32
}

func init() {
	state.chans = make(map[int]*channel)
	state.conns = make(map[int]*conn)
	state.peers = make(map[string]*peer)
	state.open = make(map[*peer]bool)
	state.scoids = make(map[int]*client)
}

// chanName is the simpl name of channel chid of process pid:
// "qnx.PID.CHID", with ".u" added when the channel has NTO_CHF_UNBLOCK,
// so that its clients know, from the name they found, whether a timed
// out MsgSend must wait for the server (see MsgSend).
func chanName(pid, chid int, unblock bool) string {
	if unblock {
		return fmt.Sprintf("qnx.%d.%d.u", pid, chid)
	}
	return fmt.Sprintf("qnx.%d.%d", pid, chid)
}

// identity returns the process's sending Channel, attaching it the first
// time; release gives the reference back. Called with state.mu held.
func identity() (*simpl.Channel, error) {
	if state.ident == nil {
		c, err := simpl.Attach("")
		if err != nil {
			return nil, err
		}
		state.ident = c
	}
	state.identRefs++
	return state.ident, nil
}

func releaseIdentity() {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.identRefs--
	if state.identRefs == 0 && state.ident != nil {
		state.ident.Close()
		state.ident = nil
	}
}

// channel is a QNX channel: a simpl Channel, plus the pulses this process
// raises for itself (disconnects it sees, unblock requests), which a
// proxy to itself (the bell) makes MsgReceive look for.
type channel struct {
	chid, flags int
	sc          *simpl.Channel
	bell        *simpl.Conn

	mu        sync.Mutex
	local     []Pulse
	clients   map[int]*client // live client processes, by pid
	bySend    map[sendKey]int // received messages: (pid, send id) -> rcvid
	withdrawn map[sendKey]bool
	waitingU  map[sendKey]heldUnblock // unblock requests held for a message still to come
	dead      bool

	// How MsgReceive and MsgReceivePulse share the channel (pulse.go).
	held    []heldMsg     // messages a MsgReceivePulse took, oldest first
	rx      int           // MsgReceive calls on the channel
	prx     int           // MsgReceivePulse calls on the channel
	prxIn   int           // MsgReceivePulse calls inside sc.Receive
	changed chan struct{} // closed (and dropped) when the above change
}

// heldUnblock is an unblock request waiting for its message, and the
// errno its client leaves with.
type heldUnblock struct {
	m   simpl.Message
	why int32
}

// sendKey names one message of one client process.
type sendKey struct{ pid, id int32 }

// client is one client process's server-side connection to a channel.
type client struct {
	ch    *channel
	pid   int
	scoid int
	pfd   *sys.Pidfd
	gone  bool // disconnected or dead, or the channel destroyed: its rcvids are void

	// The send ids of its messages answered last (under ch.mu), so that
	// an unblock request that comes after its message's answer (the
	// client's timeout and the answer crossed) is told so at once
	// instead of being kept for a message that will not come.
	answered  [answeredKept]int32
	answeredN int
}

// answeredKept is how many answered messages a client remembers.
const answeredKept = 64

// noteAnswered remembers that message id was answered (ch.mu held).
func (cl *client) noteAnswered(id int32) {
	cl.answered[cl.answeredN%answeredKept] = id
	cl.answeredN++
}

// wasAnswered is whether message id is among those answered last
// (ch.mu held).
func (cl *client) wasAnswered(id int32) bool {
	for i := range min(cl.answeredN, answeredKept) {
		if cl.answered[i] == id {
			return true
		}
	}
	return false
}

// ChannelCreate creates a channel and returns its chid. The channel is
// findable by other processes as (this pid, chid), through ConnectAttach.
// Flags outside FIXED_PRIORITY, UNBLOCK, DISCONNECT, SENDER_LEN and
// REPLY_LEN are ENOTSUP (see docs/porting-qnx.md); FIXED_PRIORITY is accepted
// and changes nothing, since MsgReceive inherits no priority.
func ChannelCreate(flags int) (int, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if flags&^supportedCHF != 0 {
		return -1, ENOTSUP
	}
	return channelCreate(flags, "")
}

func channelCreate(flags int, name string) (int, error) {
	state.mu.Lock()
	chid := 1
	for {
		// A nil entry is a chid reserved by a create in progress: in
		// use too (it was taken for free, and two creates got one chid).
		if _, used := state.chans[chid]; !used {
			break
		}
		chid++
	}
	state.chans[chid] = nil // reserved
	state.mu.Unlock()
	if name == "" {
		name = chanName(os.Getpid(), chid, flags&NTO_CHF_UNBLOCK != 0)
	}
	ch, err := openChannel(chid, flags, name)
	state.mu.Lock()
	defer state.mu.Unlock()
	if err != nil {
		delete(state.chans, chid)
		return -1, err
	}
	state.chans[chid] = ch
	return chid, nil
}

func openChannel(chid, flags int, name string) (*channel, error) {
	sc, err := simpl.Attach(name)
	if err != nil {
		if errors.Is(err, simpl.ErrNameInUse) {
			return nil, EBUSY
		}
		if errors.Is(err, simpl.ErrBadName) {
			return nil, EINVAL
		}
		return nil, EAGAIN
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	bell, err := sc.Locate(ctx, name)
	if err != nil {
		sc.Close()
		return nil, EAGAIN
	}
	return &channel{
		chid: chid, flags: flags, sc: sc, bell: bell,
		clients:   make(map[int]*client),
		bySend:    make(map[sendKey]int),
		withdrawn: make(map[sendKey]bool),
		waitingU:  make(map[sendKey]heldUnblock),
	}, nil
}

// ChannelDestroy removes channel chid: receivers blocked on it and
// clients blocked sending to it get ESRCH, later sends through
// connections to it EBADF (MsgSend, MsgSendPulse: at once for this
// process's connections; another process's find out at their next
// send, which is ESRCH). A channel created later gets the lowest free
// chid, maybe this one again: connections to the destroyed channel never
// reach it. EINVAL when chid is not a channel of this process.
func ChannelDestroy(chid int) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	state.mu.Lock()
	ch := state.chans[chid]
	if ch == nil {
		state.mu.Unlock()
		return EINVAL
	}
	delete(state.chans, chid)
	for id, cl := range state.scoids {
		if cl.ch == ch {
			delete(state.scoids, id)
		}
	}
	// This process's connections to it are dead: EBADF from now on,
	// and a channel made later with its chid (or name) is not theirs.
	dead := func(p *peer) {
		if p.target == ch && !p.dead {
			p.dead = true
			p.abandon()
		}
	}
	// (Dead peers stay in state.peers, for Shutdown to wait for what
	// they still send: getPeer replaces them.)
	for _, p := range state.peers {
		dead(p)
	}
	for _, c := range state.conns {
		dead(c.p)
	}
	state.mu.Unlock()
	ch.destroy()
	return nil
}

func (ch *channel) destroy() {
	ch.mu.Lock()
	ch.dead = true
	for _, cl := range ch.clients {
		cl.gone = true // its rcvids, answered ones too, are void (MsgDeliverEvent: ESRCH)
		closePfd(cl.pfd)
	}
	ch.clients = nil
	for _, u := range ch.waitingU {
		u.m.Reply([]byte{unblockLeave})
	}
	ch.waitingU = nil
	ch.dropHeld(replyGone, func(heldMsg) bool { return true })
	ch.wake()
	ch.mu.Unlock()
	rcvids.dropChannel(ch)
	ch.bell.Close()
	ch.sc.Close()
}

// pushLocal queues a pulse this process raises on its own channel and
// rings the bell so that a MsgReceive blocked in simpl sees it.
func (ch *channel) pushLocal(p Pulse) {
	ch.mu.Lock()
	if ch.dead {
		ch.mu.Unlock()
		return
	}
	ch.local = append(ch.local, p)
	ch.wake() // a MsgReceivePulse waiting outside simpl
	ch.mu.Unlock()
	ch.bell.Trigger(1)
}

// popLocal takes the oldest local pulse (ch.mu held).
func (ch *channel) popLocal() (Pulse, bool) {
	if len(ch.local) == 0 {
		return Pulse{}, false
	}
	p := ch.local[0]
	copy(ch.local, ch.local[1:])
	ch.local = ch.local[:len(ch.local)-1]
	return p, true
}

// clientFor returns the live client record of pid, making one (with a
// new scoid and a watch on the process) at its first message.
func (ch *channel) clientFor(pid int) *client {
	ch.mu.Lock()
	cl := ch.clients[pid]
	ch.mu.Unlock()
	if cl != nil {
		return cl
	}
	pfd, err := sys.OpenPidfd(pid)
	state.mu.Lock()
	state.nextScoid++
	cl = &client{ch: ch, pid: pid, scoid: firstScoid + state.nextScoid}
	state.scoids[cl.scoid] = cl
	state.mu.Unlock()
	ch.mu.Lock()
	if ch.dead || ch.clients[pid] != nil {
		// Destroyed, or another receiver made the record first.
		if old := ch.clients[pid]; old != nil {
			ch.mu.Unlock()
			state.mu.Lock()
			delete(state.scoids, cl.scoid)
			state.mu.Unlock()
			if pfd != nil {
				pfd.Close()
			}
			return old
		}
		ch.mu.Unlock()
		state.mu.Lock()
		delete(state.scoids, cl.scoid) // the channel is gone: nobody releases it
		state.mu.Unlock()
		if pfd != nil {
			pfd.Close()
		}
		return cl
	}
	ch.clients[pid] = cl
	cl.pfd = pfd
	ch.mu.Unlock()
	if err == nil {
		go func() {
			if pfd.Wait() == nil {
				ch.lost(cl)
			}
		}()
	} else if errors.Is(err, sys.ErrNoProcess) {
		ch.lost(cl)
	}
	return cl
}

// lost ends client cl (its last connection went, or its process died):
// its messages are void, and the server hears of it through a
// DISCONNECT pulse if the channel asked for one.
func (ch *channel) lost(cl *client) { ch.end(cl, true) }

// end ends client cl, with a DISCONNECT pulse if pulse is set and the
// channel asked for one.
func (ch *channel) end(cl *client, pulse bool) {
	ch.mu.Lock()
	if cl.gone || ch.dead {
		ch.mu.Unlock()
		return
	}
	cl.gone = true
	if ch.clients[cl.pid] == cl {
		delete(ch.clients, cl.pid)
	}
	for k, u := range ch.waitingU {
		if int(k.pid) == cl.pid {
			u.m.Reply([]byte{unblockLeave})
			delete(ch.waitingU, k)
		}
	}
	for k := range ch.withdrawn {
		if int(k.pid) == cl.pid {
			delete(ch.withdrawn, k)
		}
	}
	// Its messages held for MsgReceive go as its received ones do.
	ch.dropHeld(replyError, func(h heldMsg) bool { return int(h.key.pid) == cl.pid })
	ch.mu.Unlock()
	closePfd(cl.pfd)
	rcvids.dropClient(cl)
	if pulse && ch.flags&NTO_CHF_DISCONNECT != 0 {
		ch.pushLocal(Pulse{Code: PULSE_CODE_DISCONNECT, Scoid: cl.scoid})
	} else {
		state.mu.Lock()
		delete(state.scoids, cl.scoid)
		state.mu.Unlock()
	}
}

// lostSilent is lost for a client process that connected and left
// without sending anything, so that no record of it was made: on QNX its
// ConnectAttach made a server connection all the same, and the server
// gets a DISCONNECT pulse for it (a scoid of its own, which the server
// releases with ConnectDetach) if the channel asked for one.
func (ch *channel) lostSilent(pid int) {
	if ch.flags&NTO_CHF_DISCONNECT == 0 {
		return
	}
	state.mu.Lock()
	if state.chans[ch.chid] != ch {
		state.mu.Unlock()
		return // destroyed: ChannelDestroy would not release the scoid
	}
	state.nextScoid++
	cl := &client{ch: ch, pid: pid, scoid: firstScoid + state.nextScoid, gone: true}
	state.scoids[cl.scoid] = cl
	state.mu.Unlock()
	ch.pushLocal(Pulse{Code: PULSE_CODE_DISCONNECT, Scoid: cl.scoid})
}

func lookupChan(chid int) *channel {
	state.mu.Lock()
	defer state.mu.Unlock()
	return state.chans[chid]
}

func closePfd(p *sys.Pidfd) {
	if p != nil {
		p.Close()
	}
}

// Shutdown ends this process's QNX objects before it exits: it waits,
// within ctx, for pulses and disconnects still going out, then destroys
// every channel and closes the process's sending identity. QNX's kernel
// does this at exit; a Go program (or the C library's atexit) calls it,
// or leaves its names' FIFOs for the next Attach to reclaim. Connections
// still open are dropped, and disconnects not yet taken by their servers
// are not waited for, the servers seeing the process exit through its
// pidfd, except where a server has taken nothing from this process yet
// (it has no pidfd to watch): those are waited for as pulses are. What
// has not gone out when ctx ends is dropped as Shutdown returns: nothing
// goes on sending after it. A connection to this process's own channel
// that never sent sends no disconnect (its server is this process).
func Shutdown(ctx context.Context) error {
	state.mu.Lock()
	var ps []*peer
	// Every peer still open: those in state.peers, and dead ones taken
	// out of it for a new connection (getPeer), held by old coids or
	// still closing.
	for p := range state.open {
		ps = append(ps, p)
	}
	for coid, c := range state.conns {
		delete(state.conns, coid)
		c.detach()
		c.p.refs--
	}
	state.mu.Unlock()
	for _, p := range ps {
		state.mu.Lock()
		if p.refs == 0 && !p.closing {
			p.closing = true
			p.finish()
		}
		state.mu.Unlock()
	}
	exiting.fire()
	defer exiting.reset()
	// What is still going out when Shutdown returns (its ctx ended, a
	// server alive and not receiving) is ended then: nothing keeps
	// sending after.
	defer exiting.abandon()
	var err error
	for _, p := range ps {
		if !p.drainCtx(ctx) {
			err = ctx.Err()
		}
	}
	state.mu.Lock()
	var chids []int
	for chid, ch := range state.chans {
		if ch != nil {
			chids = append(chids, chid)
		}
	}
	state.mu.Unlock()
	for _, chid := range chids {
		ChannelDestroy(chid)
	}
	return err
}

// isGone reads gone under its channel's lock.
func (cl *client) isGone() bool {
	cl.ch.mu.Lock()
	defer cl.ch.mu.Unlock()
	return cl.gone
}
