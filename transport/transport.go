// Package transport is the contract between the public simpl API and the
// ways bytes move between processes. Each transport (the SIMPL 3.x FIFO
// transport in transport/fifo today, a futex-backed one next) implements
// Endpoint, Conn and Request; simpl owns everything users see and can serve
// several transports on one name.
//
// The package also holds the sentinel errors shared by every layer.
package transport

import "context"

// Endpoint is one attached name as a transport sees it: where requests
// arrive and the identity Sends go out under. Implementations are safe for
// concurrent use; Close is idempotent and unblocks every waiter.
type Endpoint interface {
	// Receive waits for the next request or proxy. Exactly one of req and
	// proxy is set: proxy >= 1 for a Trigger.
	Receive(ctx context.Context) (req Request, proxy int, err error)
	// Close detaches: the name disappears, waiting Receives return
	// ErrClosed, and every sender still waiting on this endpoint gets an
	// error.
	Close() error
}

// Conn is a located receiver. Safe for concurrent use.
type Conn interface {
	// Send delivers req and waits for the reply, which is copied into
	// reply; it returns the reply's size. A reply larger than reply is
	// ErrReplyTooLarge, never truncated.
	Send(ctx context.Context, req, reply []byte) (int, error)
	// Trigger delivers proxy (>= 1) without waiting for anything.
	Trigger(proxy int) error
	// Close releases the connection; the receiver is not affected.
	Close() error
}

// Request is one received message that is owed exactly one answer: Reply,
// ReplyError or Relay. Safe for concurrent use; answering twice returns
// ErrReplied.
type Request interface {
	// Data is the request. It stays valid until the request is answered.
	Data() []byte
	// Sender is the sending identity and process.
	Sender() (name string, pid int)
	// MaxReply is the largest reply the sender accepts.
	MaxReply() int
	Reply(data []byte) error
	ReplyError() error
	// Relay hands the request to another receiver, which answers the
	// original sender directly. It fails with ErrNotSupported when to
	// belongs to another transport; the caller then forwards by hand.
	Relay(to Conn) error
	// Abort fails the request for its sender with ErrPeerGone, as when the
	// receiver detaches; a no-op once answered.
	Abort()
}

// Cred identifies a sending process as the kernel recorded it.
type Cred struct {
	PID, UID, GID int
}

// CredRequest is a Request whose transport can tell, from the kernel, which
// process sent it. A transport's Request implements it when it can; ok is
// false when this request's sender is not known.
type CredRequest interface {
	Request
	Cred() (c Cred, ok bool)
}
