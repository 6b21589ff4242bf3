package pubsub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// The package's errors start with "simpl: pubsub: " once, however many
// layers wrapped them, and still match their sentinels. Before, a
// subscription ended by a broker gone read "pubsub: subscription 7:
// pubsub: subscription ended: broker "FCBROKER" gone: simpl: peer gone"
// (review).
func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		is   []error
		want string
	}{
		{"broker gone", fmt.Errorf("simpl: typed: call %q: %w", "pubsub.Next", simpl.ErrPeerGone), []error{ErrEnded, simpl.ErrPeerGone},
			`simpl: pubsub: subscription 7: subscription ended: broker "FCBROKER" gone: peer gone`},
		{"broker stopping", &typed.Error{Code: codeStopping, Message: "the broker is stopping"}, []error{ErrEnded, simpl.ErrPeerGone},
			"simpl: pubsub: subscription 7: subscription ended: peer gone (the broker is stopping)"},
		{"lease", &typed.Error{Code: codeNoSubscription, Message: "no subscription 7 (ended, or its lease ran out)"}, []error{ErrEnded},
			"simpl: pubsub: subscription 7: subscription ended (no subscription 7 (ended, or its lease ran out))"},
		{"channel closed", fmt.Errorf("simpl: typed: call: %w", simpl.ErrClosed), []error{simpl.ErrClosed},
			""},
	} {
		s := &Subscription{id: 7, broker: "FCBROKER"}
		err := s.fail(context.Background(), tc.err)
		for _, target := range tc.is {
			if !errors.Is(err, target) {
				t.Errorf("%s: %v does not match %v", tc.name, err, target)
			}
		}
		msg := err.Error()
		if tc.want != "" && msg != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, msg, tc.want)
		}
		if !strings.HasPrefix(msg, "simpl: pubsub: ") || strings.Count(msg, "simpl: ") != 1 || strings.Count(msg, "pubsub: ") != 1 {
			t.Errorf("%s: %q: want one \"simpl: pubsub: \" at the front and no other", tc.name, msg)
		}
	}
	for _, err := range []error{ErrBadTopic, ErrEnded, ErrLimit, CheckTopic("a b"), CheckPattern("a/#/b"),
		fromRemote(&typed.Error{Code: codeLimit, Message: "simpl: 4096 subscriptions already"})} {
		if msg := err.Error(); !strings.HasPrefix(msg, "simpl: pubsub: ") || strings.Count(msg, "simpl: ") != 1 {
			t.Errorf("%q: want one \"simpl: pubsub: \" at the front and no other", msg)
		}
	}
}
