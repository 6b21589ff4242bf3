package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// eachLineReader is EachLine's reading goroutine as stack traces print
// the function it runs.
const eachLineReader = "github.com/gosimpl/gosimpl/tools/internal/cli.EachLine.func1("

// TestEachLineStopsReader: when fn's error ends EachLine, its reading
// goroutine goes too, at once, while ctx lives on; before, it waited
// with the next line it had read until ctx ended (for a command, until
// it exited). The input is a pipe a writer keeps writing lines to.
func TestEachLineStopsReader(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	writer := make(chan error, 1)
	go func() {
		defer pw.Close()
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(pw, "line %d\n", i); err != nil {
				writer <- err // the read end closed
				return
			}
		}
	}()

	// ctx outlives every wait below: only EachLine's own return may end
	// the reader.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := errors.New("stop")
	var reader map[string]bool
	calls := 0
	ended := make(chan error, 1)
	go func() {
		ended <- EachLine(ctx, pr, func(line []byte) error {
			calls++
			if calls == 1 {
				reader = proctest.GoroutinesWith(eachLineReader)
			}
			return stop
		})
	}()
	select {
	case err := <-ended:
		if err != stop {
			t.Fatalf("EachLine: %v, want fn's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EachLine did not return within 10s of fn's error")
	}
	if calls != 1 {
		t.Fatalf("fn called %d times, want once", calls)
	}
	if len(reader) != 1 {
		t.Fatalf("%d goroutines running EachLine's reader while fn ran, want 1 (is %s still its name?)", len(reader), eachLineReader)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		left := false
		for id := range proctest.GoroutinesWith(eachLineReader) {
			left = left || reader[id]
		}
		if !left {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("EachLine returned on fn's error, but its reader was still there 10s later (ctx still live)")
		}
		time.Sleep(time.Millisecond)
	}

	// The writer ends when nobody reads the pipe any more.
	pr.Close()
	select {
	case err := <-writer:
		if err == nil {
			t.Error("writer ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pipe's writer did not end within 10s of the read end's close")
	}
}
