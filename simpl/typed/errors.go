package typed

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gosimpl/gosimpl/simpl"
)

// Sentinel errors. Local failures also wrap simpl's sentinels:
// simpl.ErrBadMessage for bytes that do not decode (or exceed
// Limits.MaxDepth), simpl.ErrTooLarge and simpl.ErrReplyTooLarge for
// sizes, and whatever Send returned for a failed Send.
var (
	// ErrRemote: the server answered with an error reply. Every *Error
	// matches it (and matches simpl.ErrRejected too).
	ErrRemote = errors.New("simpl: typed: the server answered with an error")
	// ErrUnknownType: the server has no handler for the request's type
	// tag (CodeUnknownType).
	ErrUnknownType = errors.New("simpl: typed: unknown message type")
	// ErrVersion: the peer speaks another wire version (CodeVersion, or
	// a reply in a version this side does not speak).
	ErrVersion = errors.New("simpl: typed: unsupported wire version")
	// ErrInternal: the handler panicked or its reply could not be
	// encoded (CodeInternal).
	ErrInternal = errors.New("simpl: typed: the handler failed")
	// ErrBadTag: a type's TypeTag is empty, longer than MaxTagLen, not
	// UTF-8, or panics on the type's zero value.
	ErrBadTag = errors.New("simpl: typed: bad type tag")
	// ErrDeferred is not a failure: a handler returns it to keep the
	// message and answer later, from any goroutine, with Reply or
	// ReplyError.
	ErrDeferred = errors.New("simpl: typed: reply deferred")
)

// Code says why a server answered with an error reply. Codes 1 to 99 are
// this package's; applications use 100 and up.
type Code int

// This package's codes, as they appear on the wire.
const (
	CodeFailed      Code = 1 // the handler returned an error that is not an *Error
	CodeBadMessage  Code = 2 // the request did not decode (simpl.ErrBadMessage)
	CodeVersion     Code = 3 // the request's wire version is not spoken (ErrVersion)
	CodeUnknownType Code = 4 // no handler for the request's type tag (ErrUnknownType)
	CodeTooLarge    Code = 5 // the request exceeds the server's Limits.MaxSize (simpl.ErrTooLarge)
	CodeInternal    Code = 6 // the handler panicked, or its reply did not encode (ErrInternal)
)

// sentinel is the sentinel an error reply with code c matches besides
// ErrRemote and simpl.ErrRejected, or nil.
func (c Code) sentinel() error {
	switch c {
	case CodeBadMessage:
		return simpl.ErrBadMessage
	case CodeVersion:
		return ErrVersion
	case CodeUnknownType:
		return ErrUnknownType
	case CodeTooLarge:
		return simpl.ErrTooLarge
	case CodeInternal:
		return ErrInternal
	}
	return nil
}

func (c Code) String() string {
	switch c {
	case CodeFailed:
		return "failed"
	case CodeBadMessage:
		return "bad message"
	case CodeVersion:
		return "unsupported version"
	case CodeUnknownType:
		return "unknown type"
	case CodeTooLarge:
		return "too large"
	case CodeInternal:
		return "internal"
	}
	return strconv.Itoa(int(c))
}

// Error is an error reply: what Call returns when the server answered with
// one, and what a handler returns to choose the code the client sees (any
// other error is sent as CodeFailed with its text). errors.Is matches it
// against ErrRemote, simpl.ErrRejected and its code's sentinel
// (CodeUnknownType matches ErrUnknownType, and so on). Safe for concurrent
// use once built; do not change it after returning it.
type Error struct {
	Code    Code   `msgpack:"code"`
	Message string `msgpack:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("simpl: typed: remote error (%v): %s", e.Code, e.Message)
}

// Is reports whether target is ErrRemote, simpl.ErrRejected or the
// sentinel of e's code.
func (e *Error) Is(target error) bool {
	if target == ErrRemote || target == simpl.ErrRejected {
		return true
	}
	s := e.Code.sentinel()
	return s != nil && s == target
}

// maxErrorText bounds the Message of an error reply this package sends.
const maxErrorText = 1024
