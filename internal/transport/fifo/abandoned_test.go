package fifo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
)

// A sender that keeps giving up on a receiver that is alive and does not
// answer holds at most maxAbandoned of its requests there (each keeps a
// reply FIFO, a segment, descriptors and a goroutine): a Send past that
// waits for one to be answered, within its context, taking no slot; once
// the receiver answers, Sends go through again. Before, every timed-out
// Send kept its own, without bound (helper-58: 300 segments after 300
// tries).
func TestAbandonedBounded(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := attachT(t, reg, "SRV", 0o600)
	_, cli := attachCLI(t, dir)
	c, err := cli.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	slots := func() int {
		cli.slotMu.Lock()
		defer cli.slotMu.Unlock()
		return len(cli.free) + len(cli.busy)
	}
	for range 3 * maxAbandoned {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := c.Send(ctx, []byte("x"), nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send to a receiver that does not answer: %v, want DeadlineExceeded", err)
		}
	}
	if n, _ := cli.abandonedTo(srv.pid); n != maxAbandoned {
		t.Errorf("%d requests given up on held by the receiver, want %d", n, maxAbandoned)
	}
	if n := slots(); n > maxAbandoned {
		t.Errorf("%d slots after %d Sends given up on, want at most %d", n, 3*maxAbandoned, maxAbandoned)
	}
	// The receiver answers them: Sends go through again.
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("again"), nil)
		done <- err
	}()
	for {
		r, _, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		again := string(r.Data()) == "again"
		r.Reply(nil)
		if again {
			break
		}
	}
	if err := <-done; err != nil {
		t.Errorf("a Send once the receiver answered: %v", err)
	}
}
