// Package errs makes gosimpl's errors: one "simpl: " at the front of the
// message, however many layers wrapped it, and every sentinel still found
// by errors.Is. It imports nothing of gosimpl, so every layer uses it.
package errs

import (
	"fmt"
	"strings"
)

// Prefix starts every gosimpl error message.
const Prefix = "simpl: "

// Errorf is fmt.Errorf (with %w) whose message starts with Prefix once:
// the prefixes of the errors it wraps are dropped from the middle.
//
//	Errorf("locate %q: %w", "SRV", ErrNotFound) // simpl: locate "SRV": name not found
func Errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &wrapped{msg: Prefix + Trim(err.Error()), err: err}
}

// Trim drops every Prefix from msg. (No name can hold one: names have
// no ':'.)
func Trim(msg string) string { return strings.ReplaceAll(msg, Prefix, "") }

// wrapped is fmt.Errorf's error with the message told once.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }

// Unwrap returns fmt.Errorf's error, which unwraps to what %w named.
func (e *wrapped) Unwrap() error { return e.err }
