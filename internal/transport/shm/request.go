package shm

import (
	"github.com/gosimpl/gosimpl/internal/errs"

	"github.com/gosimpl/gosimpl/transport"
)

// A receiver's lane is the transport.Handle of the messages it carries:
// each message it takes is numbered (rlane.gen), and the transport.Request
// Receive returns names that number, so that receiving allocates nothing
// and an answer to a message that was answered already can never land on
// the lane's next one. A request's data is a view of the sender's lane,
// read in place: valid until the request is answered, and never changed
// by the transport before then (a misbehaving process of the sender's own
// user could still write to it).

var _ transport.Handle = (*rlane)(nil)

// current locks the lane and reports whether message gen is still
// unanswered; the caller unlocks l.mu.
func (l *rlane) current(gen uint64) bool {
	l.mu.Lock()
	return l.busy && !l.dead && l.gen == gen
}

// Data is the request's bytes in place while unanswered, else nil.
func (l *rlane) Data(gen uint64) []byte {
	defer l.mu.Unlock()
	if !l.current(gen) {
		return nil
	}
	return l.data
}

// Sender is the sender's name as it gave it and its pid as the kernel
// reported it; the same for every message of the lane.
func (l *rlane) Sender(uint64) (string, int) { return l.whom, l.cred.PID }

// Cred is the sending process's pid, uid and gid as the kernel reported
// them when the lane was set up, and the origin the sender wrote with the
// request (transport.WithOrigin), unchecked: the layer above decides
// whether to believe it. An origin that cannot be read is no origin.
func (l *rlane) Cred(gen uint64) (transport.Cred, bool) {
	c := transport.Cred{PID: l.cred.PID, UID: l.cred.UID, GID: l.cred.GID}
	defer l.mu.Unlock()
	if l.current(gen) && len(l.origin) > 0 {
		if o, err := transport.DecodeOrigin(l.origin); err == nil {
			c.Host, c.Program, c.HostPID = o.Host, o.Name, o.PID
		}
	}
	return c, true
}

var _ transport.Prioritized = (*rlane)(nil)

// Prio is the scheduling priority the sender carried with the request,
// if it carried one and the endpoint believes it (see layout.go).
func (l *rlane) Prio(gen uint64) (transport.Prio, bool) {
	defer l.mu.Unlock()
	if !l.current(gen) || !l.hasPrio {
		return transport.Prio{}, false
	}
	return l.prio, true
}

// MaxReply is the largest reply the sender accepts.
func (l *rlane) MaxReply(gen uint64) int {
	defer l.mu.Unlock()
	if !l.current(gen) {
		return 0
	}
	return l.maxReply
}

// ReplyBuffer is the place the reply goes: MaxReply bytes of the lane,
// over the request, so the request's Data is overwritten as it is
// written. Valid until the request is answered; nil after.
func (l *rlane) ReplyBuffer(gen uint64) []byte {
	defer l.mu.Unlock()
	if !l.current(gen) {
		return nil
	}
	return l.w.data[:l.maxReply:l.maxReply]
}

// Reply copies data into the lane and wakes the sender.
func (l *rlane) Reply(gen uint64, data []byte) error {
	return l.answer(gen, codeOK, data, len(data), true)
}

// ReplyInPlace answers with the first n bytes of ReplyBuffer.
func (l *rlane) ReplyInPlace(gen uint64, n int) error {
	return l.answer(gen, codeOK, nil, n, false)
}

// ReplyError fails the sender's Send with ErrRejected.
func (l *rlane) ReplyError(gen uint64) error { return l.answer(gen, codeRejected, nil, 0, false) }

// Relay is not possible between lanes: each lane joins one sender to one
// receiver. It returns ErrNotSupported, and the request is forwarded.
func (l *rlane) Relay(uint64, transport.Conn) error {
	return errs.Errorf("relay from a shared-memory lane: %w", transport.ErrNotSupported)
}

// Abort fails the sender's Send with ErrPeerGone; a no-op once answered.
func (l *rlane) Abort(gen uint64) { l.answer(gen, codeClosed, nil, 0, false) }

// Claim renumbers the unanswered message gen: answers under gen are then
// ErrReplied. The lane's next message is numbered past it.
func (l *rlane) Claim(gen uint64) (uint64, bool) {
	defer l.mu.Unlock()
	if !l.current(gen) {
		return 0, false
	}
	l.gen++
	return l.gen, true
}

func (l *rlane) answer(gen uint64, code uint32, data []byte, n int, copyData bool) error {
	if !l.current(gen) {
		l.mu.Unlock()
		return transport.ErrReplied
	}
	var err error
	if code == codeOK && n > l.maxReply {
		err = errs.Errorf("reply to %s (pid %d): %w", l.whom, l.cred.PID, transport.ReplyTooLarge(n, l.maxReply))
		code = codeReplyLarge // n, the reply tried, tells the sender its size
	}
	if copyData && code == codeOK {
		copied.Add(uint64(copy(l.w.data, data)))
	}
	gone := l.gone
	// Answered once: a second answerLocked would write the header again,
	// over the sender's next message if it has read this answer and
	// posted one.
	if answered := l.answerLocked(code, n) && !gone; !answered {
		if l.ep.closing.Load() {
			err = errs.Errorf("reply: the receiving endpoint was closed: %w", transport.ErrClosed)
		} else {
			err = errs.Errorf("reply to %s (pid %d): sender gave up or died: %w", l.whom, l.cred.PID, transport.ErrPeerGone)
		}
	}
	l.busy = false
	l.data = nil
	l.mu.Unlock()
	if gone {
		l.release()
	}
	return err
}
