package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// Find connects to name: at once with locate when wait is 0, else with
// waitFor, which waits for the name to be attached, for up to wait. The
// two are a Channel's Locate and WaitFor (cli imports no Channel).
func Find[T any](ctx context.Context, name string, wait time.Duration, locate, waitFor func(context.Context, string) (T, error)) (T, error) {
	if wait <= 0 {
		return locate(ctx, name)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := waitFor(wctx, name)
	switch {
	case err == nil:
		return v, nil
	case ctx.Err() != nil:
		return v, fmt.Errorf("interrupted while waiting for %q: %w", name, context.Cause(ctx))
	case wctx.Err() != nil:
		return v, fmt.Errorf("%w: %q was not attached within %v", transport.ErrNotFound, name, wait)
	}
	return v, err
}

// maxLine is the longest line EachLine takes: the largest message.
const maxLine = 64 << 20

// EachLine calls fn with each line of r (without its newline, at most 64
// MiB) until r ends, fn fails or ctx ends. Lines are read in a goroutine
// of their own, so that ctx (a signal) ends the loop even while it waits
// for input.
func EachLine(ctx context.Context, r io.Reader, fn func([]byte) error) error {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	done := make(chan struct{}) // EachLine returned: the reader stops at its next line
	defer close(done)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), maxLine+2) // a 64 MiB line and its "\r\n"
		for sc.Scan() {
			select {
			case lines <- bytes.Clone(sc.Bytes()): // Scan reuses its buffer
			case <-ctx.Done():
				return
			case <-done:
				return
			}
		}
		close(lines)
		readErr <- sc.Err()
	}()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case line, ok := <-lines:
			if !ok {
				if err := <-readErr; errors.Is(err, bufio.ErrTooLong) {
					return fmt.Errorf("reading standard input: a line longer than %d bytes (64 MiB, the largest message)", maxLine)
				} else if err != nil {
					return fmt.Errorf("reading standard input: %w", err)
				}
				return nil
			}
			if err := fn(line); err != nil {
				return err
			}
		}
	}
}

// BrokerError is how fcpub and fcsub report err from reaching broker: it
// names the broker once, and when there is none, says how to start one
// or wait for it.
// defaultBroker is the broker they reach when not told another.
func BrokerError(broker, defaultBroker string, wait time.Duration, err error) error {
	if errors.Is(err, transport.ErrNotFound) {
		hint := "start fcbroker"
		if broker != defaultBroker {
			hint = "start fcbroker -n " + broker
		}
		if wait == 0 {
			hint += ", or give -wait D to wait for it"
		}
		return &rephrased{fmt.Sprintf("broker %q not found in %s (%s)", broker, naming.Dir(), hint), err}
	}
	if !strings.Contains(err.Error(), strconv.Quote(broker)) {
		err = fmt.Errorf("broker %q: %w", broker, err)
	}
	return err
}

// rephrased is an error told in other words: its text is msg, and it
// wraps err for errors.Is.
type rephrased struct {
	msg string
	err error
}

func (e *rephrased) Error() string { return e.msg }
func (e *rephrased) Unwrap() error { return e.err }
