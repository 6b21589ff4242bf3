package locator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
)

// A Table numbers what its owner reports, once each, and matches names
// across hosts by their NAME or, given a colon, whole; Close ends a
// waiting Next.
func TestTable(t *testing.T) {
	tb := locator.NewTable()
	a1 := locator.Info{Name: "a:SRV1", Host: "a", PID: 10, Transport: "shm"}
	b1 := locator.Info{Name: "b:SRV1", Host: "b", PID: 10, Transport: "fifo"}
	b2 := locator.Info{Name: "b:LOG", Host: "b", PID: 11, Transport: "fifo"}
	for _, i := range []locator.Info{a1, b1, b1, b2} {
		tb.Appear(i)
	}
	tb.Disappear(b2)
	tb.Disappear(b2)
	evs, next, err := tb.Next(context.Background(), "", 0, 0)
	if err != nil || next != 4 || len(evs) != 4 || evs[3].Kind != locator.Disappeared || evs[3].Info != b2 {
		t.Fatalf("Next = %+v, %d, %v; want 3 appeared and b:LOG disappeared", evs, next, err)
	}
	for pattern, want := range map[string]int{"": 2, "SRV*": 2, "b:*": 1, "*:SRV1": 2, "a:SRV?": 1, "LOG": 0, "SRV": 0} {
		if got, seq := tb.Snapshot(pattern); len(got) != want || seq != 4 {
			t.Errorf("Snapshot(%q) = %+v at %d, want %d names at 4", pattern, got, seq, want)
		}
	}
	res := make(chan error, 1)
	go func() {
		_, _, err := tb.Next(context.Background(), "", 4, 0)
		res <- err
	}()
	tb.Close()
	tb.Close()
	select {
	case err := <-res:
		if !errors.Is(err, simpl.ErrClosed) {
			t.Fatalf("Next ended by Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Next")
	}
	tb.Appear(b2)
	if got, _ := tb.Snapshot(""); len(got) != 2 {
		t.Errorf("a closed Table took a name: %+v", got)
	}
}
