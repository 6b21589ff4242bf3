package errs

import (
	"errors"
	"fmt"
	"testing"
)

var (
	errA = errors.New("simpl: name not found")
	errB = errors.New("simpl: peer gone")
)

func TestErrorf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		is   []error
	}{
		{Errorf("locate %q: %w", "SRV", errA), `simpl: locate "SRV": name not found`, []error{errA}},
		{Errorf("%w: pid %d", errB, 7), "simpl: peer gone: pid 7", []error{errB}},
		{Errorf("relay: %w", Errorf("send: %w", errB)), "simpl: relay: send: peer gone", []error{errB}},
		{Errorf("two: %w and %w", errA, errB), "simpl: two: name not found and peer gone", []error{errA, errB}},
		{Errorf("plain %d", 3), "simpl: plain 3", nil},
		{fmt.Errorf("outer: %w", Errorf("inner: %w", errA)), "outer: simpl: inner: name not found", []error{errA}},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("message %q, want %q", got, tc.want)
		}
		for _, target := range tc.is {
			if !errors.Is(tc.err, target) {
				t.Errorf("%q: errors.Is %v false", tc.err, target)
			}
		}
	}
}
