package pubsub

import (
	"fmt"
	"strings"

	"github.com/gosimpl/gosimpl/internal/errs"
)

// prefix starts every error of this package: gosimpl's one "simpl: "
// (internal/errs), and the package's name.
const prefix = errs.Prefix + "pubsub: "

// errorf is fmt.Errorf (with %w) whose message starts with prefix once,
// as errs.Errorf makes gosimpl's errors: the "simpl: " and "pubsub: " of
// the errors it wraps are dropped from the middle, so that a
// subscription's end reads "simpl: pubsub: subscription 7: subscription
// ended: broker "FCBROKER" gone: peer gone", not with each layer's
// prefix again. Every sentinel wrapped is still found by errors.Is.
func errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	msg := errs.Trim(err.Error())
	msg = strings.TrimPrefix(msg, "pubsub: ")
	msg = strings.ReplaceAll(msg, ": pubsub: ", ": ")
	msg = strings.ReplaceAll(msg, "(pubsub: ", "(")
	return &wrapped{msg: prefix + msg, err: err}
}

// wrapped is fmt.Errorf's error with the message told once.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }

// Unwrap returns fmt.Errorf's error, which unwraps to what %w named.
func (e *wrapped) Unwrap() error { return e.err }
