package transport

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/naming"
)

// The errors every layer of gosimpl returns, wrapped with %w and detail.
// Test them with errors.Is. The simpl package re-exports them.
var (
	// ErrBadName: a name is empty, longer than 31 bytes, holds a byte that
	// cannot appear in a FIFO file name, or has more than two colons.
	ErrBadName = naming.ErrBadName
	// ErrNameInUse: a live process has already attached the name.
	ErrNameInUse = errors.New("simpl: name is in use")
	// ErrNotFound: no live process has attached the name.
	ErrNotFound = naming.ErrNotFound
	// ErrTooLarge: the message is larger than the receiver accepts.
	ErrTooLarge = errors.New("simpl: message too large for the receiver")
	// ErrReplyTooLarge: the reply is larger than the sender's reply buffer.
	ErrReplyTooLarge = errors.New("simpl: reply too large for the sender")
	// ErrPeerGone: the other side exited or detached before the exchange
	// completed.
	ErrPeerGone = errors.New("simpl: peer gone")
	// ErrRejected: the receiver answered with ReplyError, or a C SIMPL
	// receiver reported a failure it does not explain on the wire.
	ErrRejected = errors.New("simpl: receiver replied with an error")
	// ErrBadMessage: a header, doorbell or size read from shared memory or a
	// FIFO is out of bounds or corrupt.
	ErrBadMessage = errors.New("simpl: corrupt or out-of-bounds message")
	// ErrReplied: the message was already answered (Reply, ReplyError or
	// Relay); each message gets exactly one.
	ErrReplied = errors.New("simpl: message already replied")
	// ErrBadProxy: a proxy value is out of range (it must be 1 or more).
	ErrBadProxy = errors.New("simpl: bad proxy value")
	// ErrNotSupported: the request needs something not built yet, such as a
	// remote name before the network transport exists.
	ErrNotSupported = errors.New("simpl: not supported yet")
	// ErrClosed is os.ErrClosed: the channel or connection was closed by
	// this process.
	ErrClosed = os.ErrClosed
	// ErrPermission is os.ErrPermission: the channel's mode (see WithPerm)
	// does not admit this user.
	ErrPermission = os.ErrPermission
	// ErrTooManyLanes: the receiver already holds as many lanes (one per
	// concurrent Send) as it allows this sender's process, or for all
	// senders, or is setting up as many as it allows this sender's user
	// at once. LaneLimitError says which limit, and its value.
	ErrTooManyLanes = errors.New("simpl: too many lanes to the receiver")
	// ErrOutcomeUnknown: a remote Send failed at a point where its request
	// may or may not have reached the receiver (a gateway or host lost
	// after the request left). It was delivered at most once, never twice;
	// whether it was is not known.
	ErrOutcomeUnknown = errors.New("simpl: the request may or may not have been delivered")
)

// LaneLimitError is ErrTooManyLanes with the limit that was reached: Per
// is "process" (lanes held by the sender's process), "user" (handshakes in
// progress for the sender's user) or "receiver" (lanes in all). errors.Is
// finds ErrTooManyLanes; errors.As finds the limit.
type LaneLimitError struct {
	Per   string
	Limit int
}

func (e *LaneLimitError) Error() string {
	return fmt.Sprintf("%s: limit %d per %s", ErrTooManyLanes.Error(), e.Limit, e.Per)
}

// Unwrap returns ErrTooManyLanes.
func (e *LaneLimitError) Unwrap() error { return ErrTooManyLanes }

// SizeError is a message or reply larger than the other side accepts. Err
// is ErrTooLarge (the message; Limit is what the receiver accepts) or
// ErrReplyTooLarge (the reply; Limit is the sender's reply buffer), so
// errors.Is finds the sentinel; errors.As finds the sizes. Size or Limit
// is -1 where the transport cannot tell: C SIMPL's FIFO wire carries
// neither.
type SizeError struct {
	Err   error
	Size  int
	Limit int
}

func (e *SizeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	switch {
	case e.Size >= 0 && e.Limit >= 0:
		fmt.Fprintf(&b, ": %d bytes, limit %d", e.Size, e.Limit)
	case e.Size >= 0:
		fmt.Fprintf(&b, ": %d bytes", e.Size)
	case e.Limit >= 0:
		fmt.Fprintf(&b, ": limit %d bytes", e.Limit)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *SizeError) Unwrap() error { return e.Err }

// TooLarge is a SizeError for a message of size bytes where limit are
// accepted.
func TooLarge(size, limit int) error { return &SizeError{ErrTooLarge, size, limit} }

// ReplyTooLarge is a SizeError for a reply of size bytes where limit are
// accepted.
func ReplyTooLarge(size, limit int) error { return &SizeError{ErrReplyTooLarge, size, limit} }

// CheckBuffer is the bound a Buffer's Send keeps: a request of n bytes
// and a reply of up to maxReply bytes, each within the Buffer's size
// bytes. Either one out of it is a SizeError of ErrTooLarge whose Size is
// the one asked for (n, or maxReply) and whose Limit is size.
func CheckBuffer(n, maxReply, size int) error {
	switch {
	case n < 0 || n > size:
		return errs.Errorf("request from a Buffer: %w", TooLarge(n, size))
	case maxReply < 0 || maxReply > size:
		return errs.Errorf("reply into a Buffer: %w", TooLarge(maxReply, size))
	}
	return nil
}
