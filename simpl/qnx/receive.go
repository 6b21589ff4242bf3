package qnx

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/bits"

	"github.com/gosimpl/gosimpl/simpl"
)

// MessageInfo is QNX's struct _msg_info: what MsgReceive and MsgInfo
// report about a received message.
type MessageInfo struct {
	Nd, Srcnd int // always 0: the local node
	Pid       int // the sending process (kernel-reported where the transport can)
	Tid       int // the sending thread (Linux thread id, as the client reported it)
	Chid      int // the receiving channel
	Scoid     int // the server connection: one per client process and channel
	Coid      int // the client's connection id
	Msglen    int // bytes copied into the receive buffer
	Srcmsglen int // bytes the client sent (always filled)
	Dstmsglen int // the client's reply buffer size (always filled)
	Priority  int // the sender's priority where it carried one, else 0
	Flags     int // NTO_MI_UNBLOCK_REQ once the client asked to unblock
}

// Pulse is QNX's struct _pulse. MsgReceive writes it into the receive
// buffer in the C layout of this platform (PulseSize bytes: type and
// subtype uint16, code int8, 3 zero bytes, the value as a union sigval,
// scoid int32, native byte order); DecodePulse reads it back.
type Pulse struct {
	Type, Subtype int // 0 for every pulse
	Code          int // -128..127; kernel codes are negative
	Value         int // the 32-bit value (sival_int)
	Scoid         int // the sending connection
}

// PulseSize is sizeof(struct _pulse): 24 on 64-bit platforms, 16 on
// 32-bit ones.
const PulseSize = 8 + 2*bits.UintSize/8

func putPulse(b []byte, p Pulse) error {
	if len(b) < PulseSize {
		return EFAULT
	}
	clear(b[:PulseSize])
	binary.NativeEndian.PutUint16(b[0:], uint16(p.Type))
	binary.NativeEndian.PutUint16(b[2:], uint16(p.Subtype))
	b[4] = byte(int8(p.Code))
	binary.NativeEndian.PutUint32(b[8:], uint32(int32(p.Value)))
	binary.NativeEndian.PutUint32(b[8+bits.UintSize/8:], uint32(int32(p.Scoid)))
	return nil
}

// DecodePulse reads a pulse that MsgReceive wrote into b (when it
// returned rcvid 0). ok is false when b is too short.
func DecodePulse(b []byte) (p Pulse, ok bool) {
	if len(b) < PulseSize {
		return Pulse{}, false
	}
	return Pulse{
		Type:    int(binary.NativeEndian.Uint16(b[0:])),
		Subtype: int(binary.NativeEndian.Uint16(b[2:])),
		Code:    int(int8(b[4])),
		Value:   int(int32(binary.NativeEndian.Uint32(b[8:]))),
		Scoid:   int(int32(binary.NativeEndian.Uint32(b[8+bits.UintSize/8:]))),
	}, true
}

// MsgReceive waits on channel chid for a message or a pulse. A message
// returns its rcvid (> 0), copies as much of it as fits into msg (MsgRead
// fetches the rest) and fills info if it is not nil; a pulse returns 0
// and is written into msg as a struct _pulse (msg shorter than PulseSize
// is EFAULT, and the pulse is lost, as on QNX). Errors: ESRCH (no such
// channel, or destroyed while waiting), EINTR (ctx cancelled),
// ETIMEDOUT (ctx's deadline, or a TimerTimeout for the RECEIVE state;
// one that has expired already, QNX's non-blocking receive, still takes
// a pulse or message that is queued, and is ETIMEDOUT only when none is).
// Any number of goroutines may receive on one channel at once. While a
// MsgReceivePulse waits on the channel, pulses go to it, not here (see
// MsgReceivePulse); messages it passed over are received here first.
func MsgReceive(ctx context.Context, chid int, msg []byte, info *MessageInfo) (int, error) {
	return msgReceive(ctx, chid, msg, len(msg), info)
}

// msgReceive is MsgReceive with room bytes of msg for a message (all of
// it holds a pulse): MsgReceivev's buffer holds a pulse whatever its
// parts add up to.
func msgReceive(ctx context.Context, chid int, msg []byte, room int, info *MessageInfo) (int, error) {
	ch := lookupChan(chid)
	if ch == nil {
		disarm()
		return -1, ESRCH
	}
	ctx, cancel := timed(ctx, NTO_TIMEOUT_RECEIVE)
	if cancel != nil {
		defer cancel()
	}
	ch.enterRx()
	defer ch.leaveRx()
	for {
		m, p, from, err := ch.rxNext(ctx)
		if err != nil {
			return -1, err
		}
		switch from {
		case fromLocal:
			if err := putPulse(msg, p); err != nil {
				return -1, err
			}
			return 0, nil
		case fromSimpl:
			m, err = ch.sc.Receive(ctx)
			if err != nil {
				return -1, ctxErrno(ctx, err, ESRCH)
			}
			if m.Proxy() > 0 {
				continue // the bell: look at the local queue again
			}
		}
		rcvid, p, done, err := ch.accept(m, msg[:min(room, len(msg))], info)
		if !done {
			continue
		}
		if err != nil {
			return -1, err
		}
		if rcvid == 0 {
			if ch.handOver(p) {
				continue // a MsgReceivePulse waits for it
			}
			if err := putPulse(msg, p); err != nil {
				return -1, err
			}
		}
		return rcvid, nil
	}
}

// MsgReceivev is MsgReceive into the parts of riov, filled in order as
// one byte stream. info.Msglen (and MsgInfo's) is the bytes the parts
// received, at most their total even when that is less than PulseSize.
func MsgReceivev(ctx context.Context, chid int, riov [][]byte, info *MessageInfo) (int, error) {
	if len(riov) == 1 {
		return MsgReceive(ctx, chid, riov[0], info)
	}
	n := 0
	for _, b := range riov {
		n += len(b)
	}
	buf := make([]byte, max(n, PulseSize))
	var mi MessageInfo
	if info == nil {
		info = &mi
	}
	// Msglen (and MsgInfo's) is what the parts received: n at most.
	rcvid, err := msgReceive(ctx, chid, buf, n, info)
	if err != nil {
		return rcvid, err
	}
	if rcvid == 0 {
		if n < PulseSize {
			return -1, EFAULT
		}
		scatter(riov, buf[:PulseSize])
		return 0, nil
	}
	// Only the bytes received: the parts' other bytes stay as they were.
	scatter(riov, buf[:min(info.Msglen, n)])
	return rcvid, nil
}

func scatter(iov [][]byte, b []byte) {
	for _, p := range iov {
		k := copy(p, b)
		b = b[k:]
	}
}

func gather(iov [][]byte) []byte {
	n := 0
	for _, p := range iov {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range iov {
		b = append(b, p...)
	}
	return b
}

// ctxErrno maps a blocking call's failure: ctx's deadline is ETIMEDOUT,
// its cancellation EINTR, anything else other.
func ctxErrno(ctx context.Context, err error, other error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ETIMEDOUT
	case errors.Is(err, context.Canceled):
		return EINTR
	case ctx.Err() != nil:
		return ctxErrno(ctx, ctx.Err(), other)
	}
	return other
}

// senderPID is the client process of m: as the kernel reported it where
// the transport can, else as the sender claimed.
func senderPID(m simpl.Message) int {
	if c, ok := m.Cred(); ok && c.PID > 0 {
		return c.PID
	}
	_, pid := m.Sender()
	return pid
}

// accept handles one simpl request. done is false when it was traffic
// for this package alone (a disconnect without the flag, an unblock
// request, a refused request) and MsgReceive should wait on.
func (ch *channel) accept(m simpl.Message, msg []byte, info *MessageInfo) (rcvid int, p Pulse, done bool, err error) {
	d := m.Data()
	h, herr := decodeHeader(d)
	if herr != nil {
		m.ReplyError()
		return 0, Pulse{}, false, nil
	}
	pid := senderPID(m)
	switch h.kind {
	case kindPulse:
		m.Reply(nil)
		cl := ch.clientFor(pid)
		return 0, Pulse{Code: int(h.a), Value: int(h.b), Scoid: cl.scoid}, true, nil
	case kindDisconnect:
		m.Reply(nil)
		ch.mu.Lock()
		cl := ch.clients[pid]
		ch.mu.Unlock()
		if cl != nil {
			ch.lost(cl) // queues the DISCONNECT pulse if asked for
		} else {
			ch.lostSilent(pid)
		}
		return 0, Pulse{}, false, nil
	case kindUnblock:
		ch.unblock(m, pid, h)
		return 0, Pulse{}, false, nil
	}
	key := sendKey{int32(pid), h.b}
	ch.mu.Lock()
	if ch.withdrawn[key] {
		delete(ch.withdrawn, key)
		ch.mu.Unlock()
		m.ReplyError() // its client has left already
		return 0, Pulse{}, false, nil
	}
	ch.mu.Unlock()
	cl := ch.clientFor(pid)
	var mi MessageInfo
	if info == nil {
		info = &mi
	}
	body := d[headerSize:]
	n := copy(msg, body)
	prio := 0
	if pr, ok := m.Priority(); ok {
		prio = pr.Level
	}
	*info = MessageInfo{
		Pid: pid, Tid: int(h.c), Chid: ch.chid, Scoid: cl.scoid, Coid: int(h.a),
		Msglen: n, Srcmsglen: len(body), Dstmsglen: max(m.MaxReply()-replyHeaderSize-runSlack, 0),
		Priority: prio,
	}
	rcvid, err = rcvids.add(m, ch, cl, key, info)
	if err != nil {
		m.ReplyError()
		return -1, Pulse{}, true, err
	}
	ch.mu.Lock()
	ch.bySend[key] = rcvid
	u, waiting := ch.waitingU[key]
	delete(ch.waitingU, key)
	ch.mu.Unlock()
	if waiting {
		// Its client's REPLY-state timeout expired before it got here.
		ch.replyExpired(rcvid, key, u.m, u.why)
	}
	return rcvid, Pulse{}, true, nil
}

// unblock answers a client whose MsgSend timed out or was interrupted
// (see the wire comment): by the state its message is in.
func (ch *channel) unblock(u simpl.Message, pid int, h header) {
	key := sendKey{int32(pid), h.a}
	states := int(h.b)
	ch.mu.Lock()
	rcvid, received := ch.bySend[key]
	if !received && states&NTO_TIMEOUT_SEND != 0 {
		if hm, ok := ch.unhold(key); ok {
			// Held for MsgReceive, so still SEND-blocked in QNX's terms:
			// withdrawn. Its answer carries the client's own reason, so
			// that whichever answer it reads first, it leaves the same way.
			ch.mu.Unlock()
			why := h.c
			if why == 0 {
				why = int32(ETIMEDOUT)
			}
			var b [replyHeaderSize]byte
			putReplyHeader(b[:], replyError, why)
			hm.m.Reply(b[:])
			u.Reply([]byte{unblockLeave})
			return
		}
	}
	if !received {
		if cl := ch.clients[pid]; cl != nil && cl.wasAnswered(key.id) {
			// Answered already: the answer is on its way to the client,
			// which stays for it.
			ch.mu.Unlock()
			u.Reply([]byte{unblockStay})
			return
		}
	}
	switch {
	case received && states&NTO_TIMEOUT_REPLY == 0:
		ch.mu.Unlock()
		u.Reply([]byte{unblockStay}) // REPLY state is not timed
	case received:
		ch.mu.Unlock()
		ch.replyExpired(rcvid, key, u, h.c)
	case states&NTO_TIMEOUT_SEND != 0:
		ch.withdrawn[key] = true
		ch.mu.Unlock()
		u.Reply([]byte{unblockLeave})
	default:
		// SEND-blocked with only REPLY timed: it expires the moment the
		// message is received.
		if old, ok := ch.waitingU[key]; ok {
			old.m.Reply([]byte{unblockGone})
		}
		ch.waitingU[key] = heldUnblock{u, h.c}
		ch.mu.Unlock()
	}
}

// replyExpired handles a REPLY-blocked client's unblock: on an UNBLOCK
// channel the client stays and the server gets an UNBLOCK pulse; on
// another the client leaves with why and its rcvid is void.
//
// The rcvid is checked to hold the client's message still (key): a
// client thread's next message gets the same rcvid, and this may run
// after the message was answered and the next one received.
func (ch *channel) replyExpired(rcvid int, key sendKey, u simpl.Message, why int32) {
	if ch.flags&NTO_CHF_UNBLOCK != 0 {
		s := rcvids.get(rcvid)
		if s != nil && s.key != key {
			s = nil // answered meanwhile: nothing to unblock
		}
		var scoid int
		if s != nil {
			s.info.Flags |= NTO_MI_UNBLOCK_REQ
			scoid = s.cl.scoid
			s.why = why
			if s.why <= 0 {
				s.why = int32(ETIMEDOUT)
			}
		}
		rcvids.mu.Unlock()
		u.Reply([]byte{unblockStay})
		if s != nil {
			ch.pushLocal(Pulse{Code: PULSE_CODE_UNBLOCK, Value: rcvid, Scoid: scoid})
		}
		return
	}
	// The message is answered with the client's own reason, so that
	// whichever answer it reads first, it leaves the same way.
	if why == 0 {
		why = int32(ETIMEDOUT)
	}
	rcvids.finishKey(rcvid, key, func(s *slot) error {
		var b [replyHeaderSize]byte
		putReplyHeader(b[:], replyError, why)
		return s.m.Reply(b[:])
	})
	u.Reply([]byte{unblockLeave})
}

// MsgRead copies the client's message from offset (0 is the first byte
// after what this package adds) into b and returns how many bytes it
// copied: fewer at the end of the message, 0 past it. ESRCH for an rcvid
// that is not a message waiting for its reply, EINVAL for a negative
// offset.
func MsgRead(rcvid int, b []byte, offset int) (int, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if offset < 0 {
		return -1, EINVAL
	}
	s := rcvids.get(rcvid)
	defer rcvids.mu.Unlock()
	if s == nil {
		return -1, ESRCH
	}
	body := s.m.Data()
	if len(body) < headerSize {
		return -1, ESRCH
	}
	body = body[headerSize:]
	if offset >= len(body) {
		return 0, nil
	}
	return copy(b, body[offset:]), nil
}

// MsgReadv is MsgRead into the parts of iov, in order.
func MsgReadv(rcvid int, iov [][]byte, offset int) (int, error) {
	n := 0
	for _, p := range iov {
		k, err := MsgRead(rcvid, p, offset+n)
		if err != nil {
			return -1, err
		}
		n += k
		if k < len(p) {
			break
		}
	}
	return n, nil
}

// MsgWrite writes b into the client's reply buffer at offset without
// answering, and returns how many bytes it wrote (clipped to the buffer).
// MsgReply or MsgError finishes the message. ESRCH, EINVAL as MsgRead.
func MsgWrite(rcvid int, b []byte, offset int) (int, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if offset < 0 {
		return -1, EINVAL
	}
	s := rcvids.get(rcvid)
	defer rcvids.mu.Unlock()
	if s == nil {
		return -1, ESRCH
	}
	limit := s.info.Dstmsglen
	if offset >= limit {
		return 0, nil
	}
	n := min(len(b), limit-offset)
	if end := offset + n; end > len(s.stage) {
		s.stage = append(s.stage, make([]byte, end-len(s.stage))...)
	}
	if offset > s.staged {
		clear(s.stage[s.staged:offset])
	}
	copy(s.stage[offset:], b[:n])
	s.staged = max(s.staged, offset+n)
	if n > 0 {
		s.addRun(offset, offset+n)
	}
	return n, nil
}

// MsgWritev is MsgWrite from the parts of iov, in order.
func MsgWritev(rcvid int, iov [][]byte, offset int) (int, error) {
	return MsgWrite(rcvid, gather(iov), offset)
}

// MsgReply answers rcvid: the client's MsgSend returns status, with msg
// (as much as its reply buffer holds, after anything MsgWrite put there)
// in its buffer. The bytes of the client's buffer that neither MsgWrite
// nor msg wrote (a MsgWrite at an offset past the rest) stay as they
// were, as on QNX, for up to maxRuns (8) separate runs written; past
// that, the smallest gaps between them are filled with zeros. ESRCH when
// rcvid is not a message waiting for its reply (answered, its client
// gone or unblocked).
func MsgReply(rcvid int, status int, msg []byte) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	return rcvids.finish(rcvid, func(s *slot) error {
		n := min(len(msg), s.info.Dstmsglen)
		if len(s.runs) > 0 {
			if n > 0 {
				s.addRun(0, n)
			}
			if len(s.runs) > 1 || s.runs[0].off > 0 {
				err := replyGapped(s, status, msg[:n])
				s.staged, s.runs = 0, s.runs[:0]
				return answerErr(err)
			}
			s.runs = s.runs[:0]
		}
		total := max(n, s.staged)
		rb, inPlace := s.m.ReplyBuffer(), true
		if len(rb) < replyHeaderSize+total {
			rb, inPlace = make([]byte, replyHeaderSize+total), false
		}
		// On shared memory rb lies over the request: stage and msg are
		// this process's own memory, so writing it loses nothing needed.
		copy(rb[replyHeaderSize:], s.stage[:s.staged])
		copy(rb[replyHeaderSize:], msg[:n])
		putReplyHeader(rb, replyOK, int32(status))
		var err error
		if inPlace {
			err = s.m.ReplyInPlace(replyHeaderSize + total)
		} else {
			err = s.m.Reply(rb[:replyHeaderSize+total])
		}
		s.staged = 0
		return answerErr(err)
	})
}

// replyGapped answers s with the runs its MsgWrites and msg wrote, apart
// (replyRuns: see wire.go), so that the client keeps its bytes between.
func replyGapped(s *slot, status int, msg []byte) error {
	rs := s.runs
	for len(rs) > maxRuns {
		// Fill the smallest gap.
		best := 1
		for i := 2; i < len(rs); i++ {
			if rs[i].off-rs[i-1].end < rs[best].off-rs[best-1].end {
				best = i
			}
		}
		rs[best-1].end = rs[best].end
		rs = append(rs[:best], rs[best+1:]...)
	}
	total := rs[len(rs)-1].end
	b := make([]byte, replyHeaderSize+total+8*len(rs)+4)
	copy(b[replyHeaderSize:], s.stage[:s.staged]) // zeros in the gaps
	copy(b[replyHeaderSize:], msg)
	putReplyHeader(b, replyRuns, int32(status))
	t := b[replyHeaderSize+total:]
	for i, r := range rs {
		binary.LittleEndian.PutUint32(t[8*i:], uint32(r.off))
		binary.LittleEndian.PutUint32(t[8*i+4:], uint32(r.end-r.off))
	}
	binary.LittleEndian.PutUint32(t[8*len(rs):], uint32(len(rs)))
	return s.m.Reply(b)
}

// MsgReplyv is MsgReply with the reply gathered from the parts of iov.
func MsgReplyv(rcvid int, status int, iov [][]byte) error {
	return MsgReply(rcvid, status, gather(iov))
}

// MsgError answers rcvid with an error: the client's MsgSend fails with
// errno, or succeeds with status 0 when errno is EOK. errno -1 passes
// the reason the client asked to unblock with (QNX 7.0.1's use): the
// errno of its timeout (ETIMEDOUT) or interruption (EINTR) once an
// UNBLOCK pulse told the server of it. Errors: ESRCH as MsgReply;
// EINVAL, the message left unanswered, for -1 when the client has not
// asked to unblock, for any other negative errno, and for one past an
// int32.
func MsgError(rcvid int, errno int) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if errno < -1 || int64(errno) > math.MaxInt32 {
		return EINVAL
	}
	s := rcvids.get(rcvid)
	defer rcvids.mu.Unlock()
	if s == nil {
		return ESRCH
	}
	if errno == -1 {
		if s.why == 0 {
			return EINVAL
		}
		errno = int(s.why)
	}
	var hdr [replyHeaderSize]byte
	rb, inPlace := s.m.ReplyBuffer(), true
	if len(rb) < replyHeaderSize {
		rb, inPlace = hdr[:], false
	}
	if errno == 0 {
		putReplyHeader(rb, replyOK, 0)
	} else {
		putReplyHeader(rb, replyError, int32(errno))
	}
	s.staged, s.runs = 0, s.runs[:0]
	var err error
	if inPlace {
		err = s.m.ReplyInPlace(replyHeaderSize)
	} else {
		err = s.m.Reply(rb)
	}
	rcvids.release(s, rcvid&0xFFFF-1)
	return answerErr(err)
}

// answerErr maps a failed simpl answer: the client is no longer there.
func answerErr(err error) error {
	if err != nil {
		return ESRCH
	}
	return nil
}

// MsgInfo fills info for rcvid, a message still waiting for its reply
// (Flags shows NTO_MI_UNBLOCK_REQ once its client asked to unblock).
// ESRCH for another rcvid, EFAULT for a nil info.
func MsgInfo(rcvid int, info *MessageInfo) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if info == nil {
		return EFAULT
	}
	s := rcvids.get(rcvid)
	defer rcvids.mu.Unlock()
	if s == nil {
		return ESRCH
	}
	*info = s.info
	return nil
}
