package cli

import (
	"bytes"
	"context"
	"io"
)

// Writer is w for a tool whose output may not be read: each Write ends
// with ctx's error as soon as ctx ends (a signal), even while the write
// under way is blocked on a full pipe nobody reads, which is left to end
// by itself (the process exits). So SIGTERM or Ctrl-C still detaches the
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
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
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
		return 0, c.ctx.Err()
	}
}
