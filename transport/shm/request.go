package shm

import (
	"fmt"

	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/shm/internal/sys"
)

// Request is one message received on a lane. Its data is a view of the
// sender's lane, read in place: valid until the request is answered, and
// never changed by the transport before then (a misbehaving process of the
// sender's own user could still write to it). Each lane reuses one Request
// value, so a request must not be answered again after it was answered.
// Safe for concurrent use: the first answer wins and later ones return
// ErrReplied.
type Request struct {
	l        *rlane
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
func (r *Request) Reply(data []byte) error {
	return r.answer(codeOK, data, len(data), true)
}

// ReplyInPlace answers with the first n bytes of ReplyBuffer.
func (r *Request) ReplyInPlace(n int) error {
	if n < 0 {
		return fmt.Errorf("simpl: reply of %d bytes: %w", n, transport.ErrBadMessage)
	}
	return r.answer(codeOK, nil, n, false)
}

// ReplyError fails the sender's Send with ErrRejected.
func (r *Request) ReplyError() error { return r.answer(codeRejected, nil, 0, false) }

// Relay is not possible between lanes: each lane joins one sender to one
// receiver. It returns ErrNotSupported and the caller forwards by hand.
func (r *Request) Relay(transport.Conn) error {
	return fmt.Errorf("simpl: relay from a shared-memory lane: %w", transport.ErrNotSupported)
}

// Abort fails the sender's Send with ErrPeerGone, as when the receiver
// detaches.
func (r *Request) Abort() { r.answer(codeClosed, nil, 0, false) }

func (r *Request) answer(code uint32, data []byte, n int, copyData bool) error {
	l := r.l
	l.mu.Lock()
	if !l.busy || l.dead {
		l.mu.Unlock()
		return transport.ErrReplied
	}
	var err error
	if code == codeOK && n > r.maxReply {
		code, n = codeReplyLarge, 0
		err = fmt.Errorf("simpl: reply of %d bytes, sender accepts %d: %w", n, r.maxReply, transport.ErrReplyTooLarge)
	}
	if copyData && code == codeOK {
		copy(l.w.data, data)
	}
	gone := l.gone
	if !l.answerLocked(code, n) || gone {
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
