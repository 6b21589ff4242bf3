package qnx

import (
	"context"

	"github.com/gosimpl/gosimpl/simpl"
)

// MsgReceivePulse and how it shares a channel with MsgReceive.
//
// On QNX the kernel leaves a message queued, its sender SEND-blocked, when
// only MsgReceivePulse threads are receiving. Here a channel's traffic is
// one simpl queue, and simpl has no way to look at a request without
// taking it. So a MsgReceivePulse that takes a message holds it in the
// channel (held, oldest first), unanswered: its sender stays blocked, and
// the next MsgReceive returns held messages, in order, before anything
// else. A held message is SEND-blocked in QNX's terms: an unblock request
// with SEND armed withdraws it, ChannelDestroy answers it as it answers
// a queued one (the sender gets ESRCH), and the end of its client drops
// it as it drops the client's received messages.
//
// Nothing may wait for a held message in simpl's queue, where no one
// would tell it. So MsgReceive and MsgReceivePulse calls never read the
// queue at the same time: MsgReceivePulse calls read it only while no
// MsgReceive is on the channel (rx == 0); the first MsgReceive to arrive
// rings the bell once for each MsgReceivePulse inside simpl (prxIn), each
// of which then leaves after the request it takes (holding a message,
// returning a pulse, or looking at the local queue for a bell), and the
// MsgReceive reads the queue once prxIn is 0. A held message is added in
// the same locked step that leaves simpl, so a MsgReceive that starts
// reading simpl has seen every held message first. Meanwhile, and while
// MsgReceive calls read the queue, a MsgReceivePulse waits in Go for a
// pulse: a MsgReceive that takes a pulse while prx > 0 puts it on the
// local queue for a MsgReceivePulse instead of returning it, so pulses
// go to MsgReceivePulse whenever one is waiting. When the last MsgReceive
// leaves, waiting MsgReceivePulse calls go back to reading simpl.
//
// A pulse thus reaches MsgReceivePulse in the order it left simpl's
// queue: read by it directly, or through the local queue, which it
// empties before reading simpl again.

// heldMsg is a message a MsgReceivePulse took, waiting for MsgReceive.
type heldMsg struct {
	m   simpl.Message
	key sendKey
}

// Where rxNext found what MsgReceive gets next.
const (
	fromHeld  = iota // a held message
	fromLocal        // a local pulse
	fromSimpl        // nothing here: read simpl's queue
)

// wake tells the calls waiting on changed that the channel's state
// changed (ch.mu held). Nothing is allocated unless a call waits.
func (ch *channel) wake() {
	if ch.changed != nil {
		close(ch.changed)
		ch.changed = nil
	}
}

// waitChange returns the channel that wake closes (ch.mu held).
func (ch *channel) waitChange() <-chan struct{} {
	if ch.changed == nil {
		ch.changed = make(chan struct{})
	}
	return ch.changed
}

// wait waits, without ch.mu, for c or the end of ctx.
func wait(ctx context.Context, c <-chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctxErrno(ctx, ctx.Err(), EINTR)
	}
}

// enterRx counts a MsgReceive in, and asks MsgReceivePulse calls inside
// simpl to leave it when it is the first.
func (ch *channel) enterRx() {
	ch.mu.Lock()
	ch.rx++
	n := 0
	if ch.rx == 1 {
		n = ch.prxIn
	}
	ch.mu.Unlock()
	for range n {
		ch.bell.Trigger(1)
	}
}

func (ch *channel) leaveRx() {
	ch.mu.Lock()
	ch.rx--
	if ch.rx == 0 {
		ch.wake() // MsgReceivePulse calls may read simpl again
	}
	ch.mu.Unlock()
}

// rxNext is what a MsgReceive gets next: a held message, a local pulse
// (when no MsgReceivePulse waits for it), or leave to read simpl once no
// MsgReceivePulse is reading it.
func (ch *channel) rxNext(ctx context.Context) (simpl.Message, Pulse, int, error) {
	for {
		ch.mu.Lock()
		switch {
		case ch.dead:
			ch.mu.Unlock()
			return simpl.Message{}, Pulse{}, 0, ESRCH
		case len(ch.held) > 0:
			h := ch.held[0]
			ch.held[0] = heldMsg{}
			ch.held = ch.held[1:]
			if len(ch.held) == 0 {
				ch.held = nil // let the array go
			}
			ch.mu.Unlock()
			return h.m, Pulse{}, fromHeld, nil
		case len(ch.local) > 0 && ch.prx == 0:
			p, _ := ch.popLocal()
			ch.mu.Unlock()
			return simpl.Message{}, p, fromLocal, nil
		case ch.prxIn == 0:
			ch.mu.Unlock()
			return simpl.Message{}, Pulse{}, fromSimpl, nil
		}
		c := ch.waitChange()
		ch.mu.Unlock()
		if err := wait(ctx, c); err != nil {
			return simpl.Message{}, Pulse{}, 0, err
		}
	}
}

// handOver puts a pulse a MsgReceive took on the local queue when a
// MsgReceivePulse is waiting for one, and says whether it did.
func (ch *channel) handOver(p Pulse) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.prx == 0 || ch.dead {
		return false
	}
	ch.local = append(ch.local, p)
	ch.wake()
	return true
}

// unhold removes and returns the held message of key (ch.mu held).
func (ch *channel) unhold(key sendKey) (heldMsg, bool) {
	for i, h := range ch.held {
		if h.key == key {
			ch.held = append(ch.held[:i], ch.held[i+1:]...)
			return h, true
		}
	}
	return heldMsg{}, false
}

// dropHeld answers how (replyGone, or replyError with ESRCH) to the held
// messages for which match holds and forgets them (ch.mu held).
func (ch *channel) dropHeld(how byte, match func(heldMsg) bool) {
	var b [replyHeaderSize]byte
	putReplyHeader(b[:], how, int32(ESRCH))
	kept := ch.held[:0]
	for _, h := range ch.held {
		if match(h) {
			h.m.Reply(b[:])
		} else {
			kept = append(kept, h)
		}
	}
	clear(ch.held[len(kept):])
	ch.held = kept
}

// MsgReceivePulse waits on channel chid for a pulse, as MsgReceive does,
// and returns 0 with the pulse written into msg as a struct _pulse: the
// pulses MsgSendPulse and MsgDeliverEvent send, and those the channel's
// flags ask for (DISCONNECT, UNBLOCK). Messages are not received: they
// stay queued, their senders blocked, for a MsgReceive on the channel (by
// another goroutine, or later by this one), in the order they came.
// Errors as MsgReceive: ESRCH (no such channel, or destroyed while
// waiting), EFAULT (msg shorter than PulseSize when a pulse arrives: the
// pulse is lost), EINTR (ctx cancelled), ETIMEDOUT (ctx's deadline, or a
// TimerTimeout for the RECEIVE state: one expired already takes a queued
// pulse, as MsgReceive does). Any number of goroutines may
// receive on one channel at once, with either call; while a
// MsgReceivePulse waits, every pulse goes to a MsgReceivePulse (QNX gives
// a pulse to whichever receiving thread is first in its queue).
func MsgReceivePulse(ctx context.Context, chid int, msg []byte) (int, error) {
	ch := lookupChan(chid)
	if ch == nil {
		disarm()
		return -1, ESRCH
	}
	ctx, cancel := timed(ctx, NTO_TIMEOUT_RECEIVE)
	if cancel != nil {
		defer cancel()
	}
	ch.mu.Lock()
	ch.prx++
	ch.mu.Unlock()
	defer ch.leavePrx()
	for {
		p, ok, err := ch.prxNext(ctx)
		if err != nil {
			return -1, err
		}
		if !ok {
			m, err := ch.sc.Receive(ctx)
			held := ch.leftSimpl(m, err == nil)
			if err != nil {
				return -1, ctxErrno(ctx, err, ESRCH)
			}
			if held || m.Proxy() > 0 {
				continue // a held message, or the bell
			}
			// Anything but a message: a pulse, or this package's
			// traffic (a disconnect, an unblock request), which accept
			// handles and which may queue a local pulse.
			rcvid, q, done, err := ch.accept(m, nil, nil)
			if !done {
				continue
			}
			if err != nil {
				return -1, err
			}
			if rcvid != 0 {
				continue // not reached: messages are held
			}
			p = q
		}
		if err := putPulse(msg, p); err != nil {
			return -1, err
		}
		return 0, nil
	}
}

// prxNext is what a MsgReceivePulse gets next: a local pulse (ok), or
// leave to read simpl (counted in prxIn) once no MsgReceive is on the
// channel.
func (ch *channel) prxNext(ctx context.Context) (Pulse, bool, error) {
	for {
		ch.mu.Lock()
		switch {
		case ch.dead:
			ch.mu.Unlock()
			return Pulse{}, false, ESRCH
		case len(ch.local) > 0:
			p, _ := ch.popLocal()
			ch.mu.Unlock()
			return p, true, nil
		case ch.rx == 0:
			ch.prxIn++
			ch.mu.Unlock()
			return Pulse{}, false, nil
		}
		c := ch.waitChange()
		ch.mu.Unlock()
		if err := wait(ctx, c); err != nil {
			return Pulse{}, false, err
		}
	}
}

// leftSimpl counts a MsgReceivePulse out of simpl after it took m (got:
// its Receive succeeded) and, in the same step, holds m if it is a
// message (see the comment at the top), saying whether it did.
func (ch *channel) leftSimpl(m simpl.Message, got bool) bool {
	var key sendKey
	var cl *client
	if got && m.Proxy() == 0 {
		if h, err := decodeHeader(m.Data()); err == nil && (h.kind == kindMsg || h.kind == kindConnect) {
			pid := senderPID(m)
			// Watch its client from now: its end drops the message.
			cl = ch.clientFor(pid)
			key = sendKey{int32(pid), h.b}
		}
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.prxIn--
	if ch.prxIn == 0 {
		ch.wake() // MsgReceive calls may read simpl
	}
	if cl == nil {
		return false
	}
	if ch.dead || cl.gone {
		// The channel went (answered as ChannelDestroy answers held
		// messages), or the client process died before its message
		// could be held (answered as end answers them).
		how := byte(replyGone)
		if !ch.dead {
			how = replyError
		}
		var b [replyHeaderSize]byte
		putReplyHeader(b[:], how, int32(ESRCH))
		m.Reply(b[:])
		return true
	}
	ch.held = append(ch.held, heldMsg{m, key})
	ch.wake()
	return true
}

// leavePrx counts a MsgReceivePulse out. Local pulses handed to it that
// no MsgReceivePulse is left to take go to MsgReceive calls, which the
// bell tells.
func (ch *channel) leavePrx() {
	ch.mu.Lock()
	ch.prx--
	ring := ch.prx == 0 && len(ch.local) > 0 && ch.rx > 0
	ch.mu.Unlock()
	if ring {
		ch.bell.Trigger(1)
	}
}

// MsgReceivePulsev is MsgReceivePulse into the parts of riov, filled in
// order as one byte stream; parts adding up to less than PulseSize are
// EFAULT when the pulse arrives, and the pulse is lost.
func MsgReceivePulsev(ctx context.Context, chid int, riov [][]byte) (int, error) {
	if len(riov) == 1 {
		return MsgReceivePulse(ctx, chid, riov[0])
	}
	n := 0
	for _, b := range riov {
		n += len(b)
	}
	var buf [PulseSize]byte
	rcvid, err := MsgReceivePulse(ctx, chid, buf[:])
	if err != nil {
		return rcvid, err
	}
	if n < PulseSize {
		return -1, EFAULT
	}
	scatter(riov, buf[:])
	return 0, nil
}
