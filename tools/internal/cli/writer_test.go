package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// A Write blocked on a full pipe nobody reads ends with the context's
// error once the context ends; later ones fail at once; writes before
// go through whole.
func TestWriterEndsWithContext(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := Writer(ctx, pw)
	if n, err := w.Write([]byte("first\n")); n != 6 || err != nil {
		t.Fatalf("first Write: %d, %v", n, err)
	}
	b := make([]byte, 6)
	if _, err := pr.Read(b); err != nil || string(b) != "first\n" {
		t.Fatalf("read %q, %v", b, err)
	}
	big := make([]byte, 1<<20) // more than a pipe holds
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(big)
		errc <- err
	}()
	// Data arriving: the write is under way, and blocks with the pipe
	// full (a megabyte is more than it holds).
	if _, err := pr.Read(b[:1]); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the blocked Write: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Write blocked on a full pipe still blocked 10 s after its context ended")
	}
	// One after the context ended is tried too (a reply received as the
	// signal came is still printed if the output takes it), and given up
	// as stuck: the pipe is still full.
	if _, err := w.Write([]byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("a Write after the context ended, to a full pipe: %v", err)
	}
	pr.Close() // the write left behind ends (EPIPE) and its goroutine with it
}

// A line of 64 MiB, the largest message, is read whole; one longer gets
// an error that says so, not bufio's.
func TestEachLineLongest(t *testing.T) {
	for _, c := range []struct {
		size int
		ok   bool
	}{{maxLine, true}, {maxLine + 3, false}} {
		in := append(bytes.Repeat([]byte("x"), c.size), '\n')
		var got int
		err := EachLine(context.Background(), bytes.NewReader(in), func(b []byte) error { got = len(b); return nil })
		switch {
		case c.ok && (err != nil || got != c.size):
			t.Errorf("a line of %d bytes: %v, read %d", c.size, err, got)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "a line longer than 67108864 bytes (64 MiB, the largest message)")):
			t.Errorf("a line of %d bytes: %v", c.size, err)
		}
	}
}
