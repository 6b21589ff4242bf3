package netwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/gosimpl/gosimpl/transport"
)

// Status is how a remote Send ended, as the gateways tell it to each other
// (HeaderStatus) and to the sending program (ReplyHeader).
type Status uint8

// The statuses. Detail, where one is given, is a size or a limit.
const (
	StatusOK            Status = 0  // replied; the reply follows
	StatusRejected      Status = 1  // the receiver answered ReplyError
	StatusNotFound      Status = 2  // no live process holds the name on that host
	StatusPeerGone      Status = 3  // the receiver exited or detached holding the request
	StatusTooLarge      Status = 4  // the request is larger than the receiver takes (detail: its limit, or 0)
	StatusReplyTooLarge Status = 5  // the reply is larger than the sender takes (detail: its size, or 0)
	StatusDeadline      Status = 6  // the Send's deadline passed on the way or at the receiver
	StatusUnknown       Status = 7  // the request may or may not have reached the receiver
	StatusUnreachable   Status = 8  // no gateway serves that host, or a request in chunks stopped short (detail: the bytes that went out); nothing was delivered
	StatusDenied        Status = 9  // the receiving host's policy refuses this sender
	StatusBadMessage    Status = 10 // a gateway could not read what it was given (detail to a program: 0 its envelope, BadMessageCarried anything later)
	StatusClosed        Status = 11 // a gateway is shutting down and took nothing
	StatusBusy          Status = 12 // a gateway has its limit of requests in flight and took nothing (detail: the limit), or (detail 0) the receiver took no more (ErrTooManyLanes)
	StatusFull          Status = 13 // a gateway holds its limit of bytes of messages and took nothing (detail: the limit in KiB)
)

// UnreachableLocal is the detail of a StatusUnreachable that says the
// sending host's own gateway could not publish the request (it has lost
// its NATS server and is reconnecting): nothing was sent.
const UnreachableLocal = 1

// BadMessageCarried is the detail of a StatusBadMessage that a gateway
// gives a program for anything but the program's own envelope: an answer
// from the other host (a receiver's reply its gateway could not pass on,
// a request it had seen before), which may come after the request was
// delivered. Detail 0 is kept for "this gateway could not read your
// envelope", as gateways before the sent time (GSN2) answered one with
// it: only then may a program send the request again, without the sent
// time, knowing it was never carried.
const BadMessageCarried = 1

var statusNames = [...]string{"ok", "rejected", "not_found", "peer_gone", "too_large", "reply_too_large", "deadline", "unknown", "unreachable", "denied", "bad_message", "closed", "busy", "full"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// ParseStatus reads a status as String writes it.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("%w: status %q", ErrBadEnvelope, s)
}

// Err is the error a sender gets for s (nil for StatusOK), wrapping the
// sentinel of package transport that says what happened; detail is a
// limit or a size where s carries one.
func (s Status) Err(detail int) error {
	switch s {
	case StatusOK:
		return nil
	case StatusRejected:
		return transport.ErrRejected
	case StatusNotFound:
		return fmt.Errorf("on its host: %w", transport.ErrNotFound)
	case StatusPeerGone:
		return fmt.Errorf("remote receiver: %w", transport.ErrPeerGone)
	case StatusTooLarge:
		return transport.TooLarge(-1, detail)
	case StatusReplyTooLarge:
		return transport.ReplyTooLarge(detail, -1)
	case StatusDeadline:
		return fmt.Errorf("on the remote host: %w", context.DeadlineExceeded)
	case StatusUnknown:
		return transport.ErrOutcomeUnknown
	case StatusUnreachable:
		if detail == UnreachableLocal {
			return fmt.Errorf("this host's gateway is not connected to NATS, sent nothing: %w", transport.ErrUnreachable)
		}
		if detail > 0 {
			// A request in chunks whose later chunks did not all go
			// out: the receiving gateway delivers only whole requests.
			return fmt.Errorf("%d bytes of the request went out in chunks, then no more could; nothing was delivered: %w", detail, transport.ErrUnreachable)
		}
		return fmt.Errorf("no gateway serves the host: %w", transport.ErrUnreachable)
	case StatusDenied:
		return fmt.Errorf("the remote host's policy: %w", transport.ErrPermission)
	case StatusClosed:
		return fmt.Errorf("a gateway is shutting down: %w", transport.ErrPeerGone)
	case StatusBusy:
		if detail == 0 {
			// The receiving host's receiver took no more from its
			// gateway (transport.ErrTooManyLanes): nothing delivered.
			return fmt.Errorf("the remote receiver takes no more requests now, and got nothing: %w", transport.ErrTooManyLanes)
		}
		// Nothing was sent: the sender may try again.
		return fmt.Errorf("a gateway has %d requests in flight, its limit, and sent nothing: %w", detail, transport.ErrUnreachable)
	case StatusFull:
		// As busy, for the bytes the gateway holds rather than the
		// requests: nothing was sent or delivered.
		return fmt.Errorf("a gateway holds %d KiB of messages, its limit, and sent nothing: %w", detail, transport.ErrUnreachable)
	}
	return fmt.Errorf("%w: %v", transport.ErrBadMessage, s)
}

// StatusOf is the status that tells a sender err (StatusOK for nil), and
// its detail.
func StatusOf(err error) (Status, int) {
	var se *transport.SizeError
	switch {
	case err == nil:
		return StatusOK, 0
	case errors.As(err, &se) && errors.Is(err, transport.ErrTooLarge):
		return StatusTooLarge, max(se.Limit, 0)
	case errors.As(err, &se) && errors.Is(err, transport.ErrReplyTooLarge):
		return StatusReplyTooLarge, max(se.Size, 0)
	case errors.Is(err, transport.ErrTooLarge):
		return StatusTooLarge, 0
	case errors.Is(err, transport.ErrReplyTooLarge):
		return StatusReplyTooLarge, 0
	case errors.Is(err, transport.ErrRejected):
		return StatusRejected, 0
	case errors.Is(err, transport.ErrNotFound):
		return StatusNotFound, 0
	case errors.Is(err, transport.ErrOutcomeUnknown):
		return StatusUnknown, 0
	case errors.Is(err, context.DeadlineExceeded):
		return StatusDeadline, 0
	case errors.Is(err, transport.ErrPermission):
		return StatusDenied, 0
	case errors.Is(err, transport.ErrUnreachable):
		return StatusUnreachable, 0
	case errors.Is(err, transport.ErrTooManyLanes):
		// Refused before anything was delivered (a lane limit).
		return StatusBusy, 0
	case errors.Is(err, transport.ErrPeerGone), errors.Is(err, transport.ErrClosed):
		return StatusPeerGone, 0
	case errors.Is(err, transport.ErrBadMessage), errors.Is(err, ErrBadEnvelope):
		return StatusBadMessage, 0
	}
	// Whatever else stopped the Send on the receiving host, the request
	// may have reached the receiver: say no more than that.
	return StatusUnknown, 0
}

// ReplyHeaderSize is the size of the header before a reply the gateway
// gives a program: the status, three zero bytes and a little-endian
// uint32 detail.
const ReplyHeaderSize = 8

// AppendReplyHeader appends the reply header of status s with detail.
func AppendReplyHeader(b []byte, s Status, detail int) []byte {
	b = append(b, byte(s), 0, 0, 0)
	return binary.LittleEndian.AppendUint32(b, uint32(max(detail, 0)))
}

// DecodeReply splits what a gateway answered into its status, detail and
// the reply proper (aliasing b).
func DecodeReply(b []byte) (Status, int, []byte, error) {
	if len(b) < ReplyHeaderSize {
		return 0, 0, nil, fmt.Errorf("%w: reply of %d bytes, the header alone is %d", ErrBadEnvelope, len(b), ReplyHeaderSize)
	}
	s := Status(b[0])
	if int(s) >= len(statusNames) || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return 0, 0, nil, fmt.Errorf("%w: reply header % x", ErrBadEnvelope, b[:4])
	}
	detail := int(binary.LittleEndian.Uint32(b[4:]))
	if s != StatusOK && len(b) > ReplyHeaderSize {
		return 0, 0, nil, fmt.Errorf("%w: %v with %d bytes of reply", ErrBadEnvelope, s, len(b)-ReplyHeaderSize)
	}
	return s, detail, b[ReplyHeaderSize:], nil
}

// The NATS headers of a request between gateways, and of its answer.
const (
	HeaderKind     = "Gosimpl-Kind"      // "send", "trigger" or "locate" (Kind.String)
	HeaderTimeout  = "Gosimpl-Timeout"   // nanoseconds left of the sender's deadline, decimal; absent: none
	HeaderMaxReply = "Gosimpl-Max-Reply" // the largest reply the sender takes, decimal
	HeaderProxy    = "Gosimpl-Proxy"     // a trigger's proxy value, decimal
	HeaderFromHost = "Gosimpl-From-Host" // the sending host, as its gateway names it
	HeaderFromName = "Gosimpl-From-Name" // the sending program's SIMPL name
	HeaderFromPID  = "Gosimpl-From-Pid"  // its pid on its host, decimal (never a local pid on the receiving host)
	HeaderID       = "Gosimpl-Id"        // the request's unique id, for at most once
	HeaderStatus   = "Gosimpl-Status"    // the answer's Status, as String writes it
	HeaderDetail   = "Gosimpl-Detail"    // its detail, decimal

	// Chunks: a request or reply larger than one NATS message.
	HeaderSize     = "Gosimpl-Size"      // on a request's or an ok answer's first chunk: the whole message's size, decimal
	HeaderAcksTo   = "Gosimpl-Acks-To"   // on an ok answer's first chunk: the subject the requester acknowledges chunks on
	HeaderChunksTo = "Gosimpl-Chunks-To" // on an acknowledgement: the subject the rest of the chunks go to
	HeaderAcked    = "Gosimpl-Acked"     // on an acknowledgement: how many bytes of the message have arrived, decimal
	HeaderOffset   = "Gosimpl-Offset"    // on a later chunk: where in the message its data goes, decimal
)

// MaxPayload is the largest request or reply that crosses between hosts,
// as the local transports' largest message: a gateway carries one larger
// than a NATS message in chunks.
const MaxPayload = 64 << 20

// MaxEnvelope is the largest envelope a program hands its gateway: one
// with the longest target and a payload of MaxPayload. The gateway
// attaches its name taking messages this large.
const MaxEnvelope = envHeaderSize + MaxTarget + MaxPayload
