package locator_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// The Client's errors start with "simpl: " once, however many layers
// wrapped them (the project's rule, internal/errs), and match their
// sentinels. Before, a locator's error wrapped typed's and the core's
// with their prefixes ("simpl: locator "FCLOCATOR": simpl: typed: call
// ...: simpl: ..."), and the locator's error replies came back as
// "simpl: bad name (simpl: ...)" (review).
func TestErrorTextOnePrefix(t *testing.T) {
	dir, loc, cli, c := startLocator(t)
	ctx := simpltest.Context(t, time.Minute)
	check := func(what string, err error, is error) {
		t.Helper()
		if !errors.Is(err, is) {
			t.Errorf("%s: %v, want %v", what, err, is)
			return
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "simpl: ") || strings.Count(msg, "simpl: ") != 1 {
			t.Errorf("%s: %q; want one \"simpl: \" at the front, and no other", what, msg)
		}
	}
	_, err := c.Locate(ctx, "bad/name")
	check("Locate(bad/name)", err, simpl.ErrBadName)
	_, err = c.List(ctx, "[")
	check("List([)", err, simpl.ErrBadName)
	_, err = c.Watch("[").Next(ctx)
	check("Watch([)", err, simpl.ErrBadName)
	_, err = c.Locate(ctx, "NOSUCH")
	check("Locate(NOSUCH)", err, simpl.ErrNotFound)
	// A call that fails on the way (typed's error, wrapping the core's).
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Locate(done, "CLIENT")
	check("Locate with its context ended", err, context.Canceled)

	loc.Signal(syscall.SIGTERM)
	if err := loc.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	_, err = c.Locate(ctx, "CLIENT")
	check("Locate on a closed Channel", err, simpl.ErrClosed)
	w := c.Watch("*")
	_, err = w.Next(ctx)
	check("Watch on a closed Channel", err, simpl.ErrClosed)
	w.Close()
	_, err = w.Next(ctx)
	check("Watch closed", err, simpl.ErrClosed)
	reapDir(t, dir)
}
