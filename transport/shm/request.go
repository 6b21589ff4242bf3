package shm

import (
	"fmt"

	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/shm/internal/sys"
)

// Request is the message a lane carries now. Its data is a view of the
// sender's lane, read in place: valid until the request is answered, and
// never changed by the transport before then (a misbehaving process of the
// sender's own user could still write to it).
//
// Each lane reuses one Request value for all its messages, so that
// receiving allocates nothing: its methods act on the lane's current
// message. Code that may answer late or twice holds a Ticket instead (see
// Request.Ticket), which names one message and can never answer the next.
//
// Safe for concurrent use: the first answer wins and later ones return
// ErrReplied.
type Request struct {
	l        *rlane
	gen      uint64 // the message's number on its lane, set by take
	data     []byte
	maxReply int
}

var _ transport.Request = (*Request)(nil)

// Data is the request's bytes, read in place.
func (r *Request) Data() []byte { return r.data }

// Sender is the sender's name as it gave it and its pid as the kernel
// reported it.
func (r *Request) Sender() (string, int) { return r.l.whom, r.l.cred.PID }

// Cred is the sending process's pid, uid and gid as the kernel reported
// them when the lane was set up.
func (r *Request) Cred() sys.Cred { return r.l.cred }

// MaxReply is the largest reply the sender accepts.
func (r *Request) MaxReply() int { return r.maxReply }

// ReplyBuffer is the place the reply goes: MaxReply bytes of the lane,
// over the request. Fill it and call ReplyInPlace; the request's Data is
// overwritten as you write. Valid until the request is answered.
func (r *Request) ReplyBuffer() []byte { return r.l.w.data[:r.maxReply:r.maxReply] }

// Reply copies data into the lane and wakes the sender.
func (r *Request) Reply(data []byte) error { return r.Ticket().Reply(data) }

// ReplyInPlace answers with the first n bytes of ReplyBuffer.
func (r *Request) ReplyInPlace(n int) error { return r.Ticket().ReplyInPlace(n) }

// ReplyError fails the sender's Send with ErrRejected.
func (r *Request) ReplyError() error { return r.Ticket().ReplyError() }

// Relay is not possible between lanes: each lane joins one sender to one
// receiver. It returns ErrNotSupported and the caller forwards by hand.
func (r *Request) Relay(transport.Conn) error {
	return fmt.Errorf("simpl: relay from a shared-memory lane: %w", transport.ErrNotSupported)
}

// Abort fails the sender's Send with ErrPeerGone, as when the receiver
// detaches.
func (r *Request) Abort() { r.Ticket().Abort() }

// Ticket names the lane's current message. Call it where the request was
// received, before the request can be answered.
func (r *Request) Ticket() Ticket { return Ticket{r: r, gen: r.gen} }

// Ticket names one received message. Unlike the Request it came from, it
// goes stale once its message is answered: every method then fails with
// ErrReplied (or returns nothing) even after the lane has carried later
// messages, so a late or second answer never lands on another message. A
// Ticket is a small value, safe to copy and for concurrent use; the zero
// Ticket names nothing.
type Ticket struct {
	r   *Request
	gen uint64
}

// Valid reports whether t came from a Request (stale or not).
func (t Ticket) Valid() bool { return t.r != nil }

// Request is the Request t came from, for its identity (Sender, Cred,
// MaxReply), which stays the same for every message of a lane.
func (t Ticket) Request() *Request { return t.r }

// current locks the lane and reports whether t's message is still
// unanswered; the caller unlocks l.mu.
func (t Ticket) current() bool {
	l := t.r.l
	l.mu.Lock()
	return l.busy && !l.dead && l.gen == t.gen
}

// Data is the request's bytes in place while unanswered, else nil.
func (t Ticket) Data() []byte {
	defer t.r.l.mu.Unlock()
	if !t.current() {
		return nil
	}
	return t.r.data
}

// ReplyBuffer is Request.ReplyBuffer while unanswered, else nil.
func (t Ticket) ReplyBuffer() []byte {
	defer t.r.l.mu.Unlock()
	if !t.current() {
		return nil
	}
	return t.r.ReplyBuffer()
}

// Reply copies data into the lane and wakes the sender.
func (t Ticket) Reply(data []byte) error { return t.answer(codeOK, data, len(data), true) }

// ReplyInPlace answers with the first n bytes of ReplyBuffer.
func (t Ticket) ReplyInPlace(n int) error {
	if n < 0 {
		return fmt.Errorf("simpl: reply of %d bytes: %w", n, transport.ErrBadMessage)
	}
	return t.answer(codeOK, nil, n, false)
}

// ReplyError fails the sender's Send with ErrRejected.
func (t Ticket) ReplyError() error { return t.answer(codeRejected, nil, 0, false) }

// Abort fails the sender's Send with ErrPeerGone; a no-op once answered.
func (t Ticket) Abort() { t.answer(codeClosed, nil, 0, false) }

func (t Ticket) answer(code uint32, data []byte, n int, copyData bool) error {
	r := t.r
	l := r.l
	if !t.current() {
		l.mu.Unlock()
		return transport.ErrReplied
	}
	var err error
	if code == codeOK && n > r.maxReply {
		err = fmt.Errorf("simpl: reply of %d bytes, sender accepts %d: %w", n, r.maxReply, transport.ErrReplyTooLarge)
		code, n = codeReplyLarge, 0
	}
	if copyData && code == codeOK {
		copy(l.w.data, data)
	}
	gone := l.gone
	switch {
	case l.ep.closing.Load() && (gone || !l.answerLocked(code, n)):
		err = fmt.Errorf("simpl: reply: the receiving endpoint was closed: %w", transport.ErrClosed)
	case !l.answerLocked(code, n) || gone:
		err = fmt.Errorf("simpl: reply to %s (pid %d): sender gave up or died: %w", l.whom, l.cred.PID, transport.ErrPeerGone)
	}
	l.busy = false
	r.data = nil
	l.mu.Unlock()
	if gone {
		l.release()
	}
	return err
}
