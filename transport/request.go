package transport

import (
	"context"
	"errors"
	"github.com/gosimpl/gosimpl/internal/errs"
)

// Request is one received message that is owed exactly one answer: Reply,
// ReplyInPlace, ReplyError, Relay or Abort. It is a small value naming
// the message; copies name the same message. Once the message is answered
// every copy is spent: a second answer returns ErrReplied and Data,
// ReplyBuffer return nil, even when the transport has since carried the
// sender's next message over the same resources. Safe for concurrent use.
// The zero Request names nothing.
type Request struct {
	h  Handle
	id uint64
}

// Handle is what a transport implements for the requests it delivers.
// Each method takes the id the transport gave NewRequest, so one Handle
// (a shared-memory lane, say) can serve many messages in turn without
// allocating, and a call naming a message that was answered already does
// nothing (answers return ErrReplied, or ErrClosed when the endpoint
// closed first). Methods are called concurrently.
type Handle interface {
	// Data is the request's bytes while it is unanswered, else nil.
	Data(id uint64) []byte
	// Sender is the sending identity and process as the sender gave them.
	Sender(id uint64) (name string, pid int)
	// Cred is the sending process as the kernel recorded it; ok is false
	// when the transport cannot tell.
	Cred(id uint64) (c Cred, ok bool)
	// MaxReply is the largest reply the sender accepts.
	MaxReply(id uint64) int
	// ReplyBuffer is where a reply can be written in place, MaxReply
	// bytes, while unanswered; nil when the transport has none.
	ReplyBuffer(id uint64) []byte
	// Reply answers with data; ReplyInPlace with the first n bytes of
	// ReplyBuffer. A reply larger than MaxReply is not sent: the sender
	// gets ErrReplyTooLarge, the request counts as answered, and so does
	// the caller.
	Reply(id uint64, data []byte) error
	ReplyInPlace(id uint64, n int) error
	// ReplyError fails the sender's Send with ErrRejected.
	ReplyError(id uint64) error
	// Relay hands the request whole to the receiver behind to, which then
	// answers the sender itself. ErrNotSupported means the transport
	// cannot (to is of another transport, say): the request is then
	// forwarded (see Request.Relay).
	Relay(id uint64, to Conn) error
	// Abort fails the sender's Send with ErrPeerGone, as when the
	// receiver detaches; a no-op once answered.
	Abort(id uint64)
	// Claim takes the unanswered request id for whoever calls it: it
	// returns the id the request goes by from now on, and id is answered
	// as far as its other holders are concerned (their answers are
	// ErrReplied, their Data nil). ok is false when id is answered
	// already. A forwarded relay claims its request, so that the
	// relaying process cannot answer it a second time.
	Claim(id uint64) (uint64, bool)
}

// Cred identifies a sending process as the kernel recorded it, and, for
// a request from another host, its origin.
type Cred struct {
	PID, UID, GID int

	// For a request from another host (Host not ""): the sending host as
	// the network vouches for it, the sending program's SIMPL name and
	// its pid there, as that host's gateway reports them. PID, UID and
	// GID are then those of no local process: 0, -1 and -1.
	Host    string
	Program string
	HostPID int
}

// Remote reports whether c is of a sender on another host.
func (c Cred) Remote() bool { return c.Host != "" }

// NewRequest names message id of h.
func NewRequest(h Handle, id uint64) Request { return Request{h: h, id: id} }

// Valid reports whether r names a message (answered or not).
func (r Request) Valid() bool { return r.h != nil }

// Handle is the Handle and id r was made of, for the transport that made
// it.
func (r Request) Handle() (Handle, uint64) { return r.h, r.id }

// Data is the request's bytes, valid until it is answered; nil after.
func (r Request) Data() []byte {
	if r.h == nil {
		return nil
	}
	return r.h.Data(r.id)
}

// Sender is the sending identity and process.
func (r Request) Sender() (name string, pid int) {
	if r.h == nil {
		return "", 0
	}
	return r.h.Sender(r.id)
}

// Cred is the sending process as the kernel recorded it.
func (r Request) Cred() (Cred, bool) {
	if r.h == nil {
		return Cred{}, false
	}
	return r.h.Cred(r.id)
}

// MaxReply is the largest reply the sender accepts.
func (r Request) MaxReply() int {
	if r.h == nil {
		return 0
	}
	return r.h.MaxReply(r.id)
}

// ReplyBuffer is where a reply can be written in place (see Handle).
func (r Request) ReplyBuffer() []byte {
	if r.h == nil {
		return nil
	}
	return r.h.ReplyBuffer(r.id)
}

var errNoRequest = errs.Errorf("answer to no request: %w", ErrBadProxy)

// Reply answers with data.
func (r Request) Reply(data []byte) error {
	if r.h == nil {
		return errNoRequest
	}
	return r.h.Reply(r.id, data)
}

// ReplyInPlace answers with the first n bytes of ReplyBuffer.
func (r Request) ReplyInPlace(n int) error {
	if r.h == nil {
		return errNoRequest
	}
	if n < 0 {
		return errs.Errorf("reply of %d bytes: %w", n, ErrBadMessage)
	}
	return r.h.ReplyInPlace(r.id, n)
}

// ReplyError fails the sender's Send with ErrRejected.
func (r Request) ReplyError() error {
	if r.h == nil {
		return errNoRequest
	}
	return r.h.ReplyError(r.id)
}

// Abort fails the sender's Send with ErrPeerGone; a no-op once answered.
func (r Request) Abort() {
	if r.h != nil {
		r.h.Abort(r.id)
	}
}

// Claim takes the unanswered request for the caller: the Request
// returned names it from now on, and r (and every copy of it) is answered
// as far as its holders are concerned. ok is false once answered.
func (r Request) Claim() (claimed Request, ok bool) {
	if r.h == nil {
		return Request{}, false
	}
	id, ok := r.h.Claim(r.id)
	if !ok {
		return Request{}, false
	}
	return Request{h: r.h, id: id}, true
}

// Relay hands the request to the receiver behind to. When the transport
// can hand it over whole (a FIFO request relayed to a FIFO receiver, as
// C SIMPL does), the third process answers the sender directly. Otherwise
// it is forwarded: a goroutine sends it on through to and passes the
// answer back, until ctx ends, which fails it for the sender with
// ErrPeerGone. Either way this process owes the request nothing more.
func (r Request) Relay(ctx context.Context, to Conn) error {
	return r.RelayNotify(ctx, to, func() {})
}

// RelayNotify is Relay that calls done exactly once, when this process's
// part in the relay is over: before it returns when the request is handed
// over whole or the relay fails, once the answer has been passed back when
// it is forwarded. A process that must not end while it still forwards
// (simpl.Channel.WaitRelays) counts with it.
func (r Request) RelayNotify(ctx context.Context, to Conn, done func()) error {
	if r.h == nil {
		done()
		return errNoRequest
	}
	err := r.h.Relay(r.id, to)
	if !errors.Is(err, ErrNotSupported) {
		done()
		return err
	}
	// Forwarded: the request is the forwarder's from here on.
	fwd, ok := r.Claim()
	if !ok {
		done()
		return ErrReplied
	}
	data := fwd.Data()
	max := fwd.MaxReply()
	go func() {
		defer done()
		buf := make([]byte, max)
		n, err := to.Send(ctx, data, buf)
		var size *SizeError
		switch {
		case err == nil:
			fwd.Reply(buf[:n])
		case errors.Is(err, ErrRejected):
			fwd.ReplyError()
		case errors.Is(err, ErrReplyTooLarge) && errors.As(err, &size) && size.Size > max:
			// Larger than the sender takes: it is told so, with the size.
			fwd.ReplyInPlace(size.Size)
		default:
			fwd.Abort()
		}
	}()
	return nil
}
