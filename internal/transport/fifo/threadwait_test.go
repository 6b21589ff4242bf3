package fifo

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/transporttest"
)

// threadWait is the Options.ThreadWait of the endpoint attachCLI makes:
// the sending side of the tests that wait for replies. TestThreadWait
// sets it; the tests run one at a time (none is parallel).
var threadWait bool

// TestThreadWait runs the tests of a Send's wait again with its wait on
// the calling thread (Options.ThreadWait, as the C library asks): every
// way a wait ends early (the Send's deadline, the receiver's death, a
// relay's hand-over and the holder's death, Conn.Close) must end the
// ppoll as it ends the poller's read, and the contract's suite must hold.
func TestThreadWait(t *testing.T) {
	threadWait = true
	t.Cleanup(func() { threadWait = false })
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ReceiverKilled", TestReceiverKilled},
		{"ReplyThenKilled", TestReplyThenKilled},
		{"ConnCloseEndsSends", TestConnCloseEndsSends},
		{"GaveUpThenKilled", TestGaveUpThenKilled},
		{"PollReadsWaitingReply", TestPollReadsWaitingReply},
		{"OverlappingSendsWithDeadlines", TestOverlappingSendsWithDeadlines},
		{"RelayHandOver", TestRelayHandOver},
	} {
		t.Run(c.name, c.f)
	}
	t.Run("Conformance", func(t *testing.T) {
		transporttest.RunWith(t, Transport{}, transporttest.Options{ThreadWait: true})
	})
}

// TestEndpointCloseEndsSends: the sending endpoint's Close ends the Sends
// waiting for replies with ErrClosed, whether they wait in the poller (a
// closed reply FIFO ends the read) or on their threads (the waker ends
// the ppoll; the reply FIFO stays open until the wait is over), and
// leaves no reply FIFO behind.
func TestEndpointCloseEndsSends(t *testing.T) {
	for _, tw := range []bool{false, true} {
		t.Run(fmt.Sprintf("threadwait=%v", tw), func(t *testing.T) {
			dir := proctest.Dir(t)
			reg, err := naming.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			ep, err := Attach("CLI", Options{Registry: reg, ThreadWait: tw})
			if err != nil {
				t.Fatal(err)
			}
			defer ep.Close()
			h := proctest.Start(t, "holder", nil, dir, "SRV", "2")
			c, err := ep.Locate("SRV")
			if err != nil {
				t.Fatal(err)
			}
			ctx := proctest.Context(t, time.Minute)
			errc := make(chan error, 2)
			for range 2 {
				go func() {
					_, err := c.Send(ctx, []byte("x"), nil)
					errc <- err
				}()
			}
			h.Expect("held 2", helperTimeout)
			waitFor(t, "both Sends waiting", func() bool { return c.w.waitingCount() == 2 })
			start := time.Now()
			ep.Close()
			for range 2 {
				if err := <-errc; !errors.Is(err, transport.ErrClosed) {
					t.Errorf("Send during the endpoint's Close: %v, want ErrClosed", err)
				}
			}
			if d := time.Since(start); d > deathBound {
				t.Errorf("Sends took %v to end after Close", d)
			}
			if left := replyFIFOs(t, dir, "CLI"); len(left) > 0 {
				t.Errorf("reply FIFOs left after Close: %v", left)
			}
			killed(t, h)
			bury(t, h, reg)
		})
	}
}
