package cli

import (
	"bytes"
	"context"
	"io"
	"time"
)

// Writer is w for a tool whose output may not be read: each Write ends
// with ctx's error soon after ctx ends (a signal) if the write under way
// is blocked on a full pipe nobody reads, which is left to end by itself
// (the process exits); a write that ends meanwhile counts. So SIGTERM or Ctrl-C still detaches the
// tool's name and removes its FIFOs. Not for concurrent use.
func Writer(ctx context.Context, w io.Writer) io.Writer {
	return &ctxWriter{ctx: ctx, w: w}
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

type written struct {
	n   int
	err error
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	b := bytes.Clone(p) // p is the caller's again once Write returns
	done := make(chan written, 1)
	go func() {
		n, err := c.w.Write(b)
		done <- written{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-c.ctx.Done():
	}
	// A write that is done, or about to be (the signal came as it ended),
	// is not given up: only one stuck is.
	t := time.NewTimer(stuck)
	defer t.Stop()
	select {
	case r := <-done:
		return r.n, r.err
	case <-t.C:
		return 0, c.ctx.Err()
	}
}

// stuck is how long a write may still take once the context has ended
// before it is given up.
const stuck = 100 * time.Millisecond
