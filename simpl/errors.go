package simpl

import "github.com/gosimpl/gosimpl/transport"

// Sentinel errors. They are the transport package's, so errors from any
// layer match with errors.Is.
var (
	ErrBadName        = transport.ErrBadName        // bad name syntax or length
	ErrNameInUse      = transport.ErrNameInUse      // a live process holds the name
	ErrNotFound       = transport.ErrNotFound       // no live process holds the name
	ErrTooLarge       = transport.ErrTooLarge       // message too large for the receiver
	ErrReplyTooLarge  = transport.ErrReplyTooLarge  // reply too large for the sender
	ErrPeerGone       = transport.ErrPeerGone       // the other side exited or detached
	ErrRejected       = transport.ErrRejected       // the receiver answered ReplyError
	ErrBadMessage     = transport.ErrBadMessage     // corrupt or out-of-bounds data
	ErrReplied        = transport.ErrReplied        // the message was already answered
	ErrBadProxy       = transport.ErrBadProxy       // proxy value out of range
	ErrNotSupported   = transport.ErrNotSupported   // not built yet (remote names)
	ErrClosed         = transport.ErrClosed         // os.ErrClosed: closed by this process
	ErrPermission     = transport.ErrPermission     // os.ErrPermission: the channel's mode refuses this user
	ErrTooManyLanes   = transport.ErrTooManyLanes   // the receiver's lane limit for this sender is reached
	ErrUnreachable    = transport.ErrUnreachable    // no transport allowed reaches the receiver (a stopped one, say)
	ErrOutcomeUnknown = transport.ErrOutcomeUnknown // a remote request may or may not have been delivered
)

// LaneLimitError is ErrTooManyLanes with the limit reached (see
// transport.LaneLimitError).
type LaneLimitError = transport.LaneLimitError

// SizeError is a message or reply too large for the other side, with the
// sizes where the transport knows them (see transport.SizeError):
//
//	var se *simpl.SizeError
//	if errors.As(err, &se) { log.Printf("reply of %d bytes, buffer %d", se.Size, se.Limit) }
type SizeError = transport.SizeError
