package fifo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// A sender that keeps giving up on a receiver that is alive and does not
// answer holds at most maxAbandoned of its requests there (each keeps a
// reply FIFO, a segment, descriptors and a goroutine): the next Send
// fails at once with ErrTooManyLanes and the limit, until the receiver
// answers some. Before, every timed-out Send kept its own, without bound
// (helper-58: 300 segments after 300 tries).
func TestAbandonedBounded(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Attach("SRV", Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, cli := attachCLI(t, dir)
	c, err := cli.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tries := 0
	for ; ; tries++ {
		if tries > 2*maxAbandoned {
			t.Fatalf("%d Sends given up on and none refused", tries)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, err := c.Send(ctx, []byte("x"), nil)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		var le *transport.LaneLimitError
		if !errors.Is(err, transport.ErrTooManyLanes) || !errors.As(err, &le) || le.Limit != maxAbandoned {
			t.Fatalf("Send %d: %v, want ErrTooManyLanes, limit %d", tries+1, err, maxAbandoned)
		}
		break
	}
	if tries != maxAbandoned {
		t.Errorf("refused after %d given up, want %d", tries, maxAbandoned)
	}
	// The receiver answers them: Sends go through again.
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	for range tries {
		r, _, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r.Reply(nil)
	}
	waitFor(t, "the late answers taken", func() bool { return cli.abandonedTo(srv.pid) == 0 })
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("again"), nil)
		done <- err
	}()
	r, _, err := srv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Data()) != "again" {
		t.Errorf("received %q, want again", r.Data())
	}
	r.Reply(nil)
	if err := <-done; err != nil {
		t.Errorf("a Send once the receiver answered: %v", err)
	}
}
