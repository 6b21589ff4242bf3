package fifo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
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

// ThreadRxEnv makes the receivers of the tests that read it (helper
// processes and in-process ones, here and in package fifo_test) read
// their FIFO on Receive's thread (Options.ThreadReceive): TestThreadReceive
// sets it.
const ThreadRxEnv = "GOSIMPL_FIFO_THREADRX"

func threadRx() bool { return os.Getenv(ThreadRxEnv) == "1" }

// TestThreadReceive runs the receiving side's tests again with the FIFO
// read on Receive's thread (feed.go) instead of by the reader goroutine:
// hostile and stray writes, resynchronisation, forged senders and claims,
// dead senders and receivers, relays, the C peer, and descriptor
// shortage must come out the same.
func TestThreadReceive(t *testing.T) {
	t.Setenv(ThreadRxEnv, "1")
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"CorruptHeader", TestCorruptHeader},
		{"SenderKilled", TestSenderKilled},
		{"TwoStraysAroundDoorbell", TestTwoStraysAroundDoorbell},
		{"ForgedSender", TestForgedSender},
		{"Claim", TestClaim},
		{"Trailer", TestTrailer},
		{"StrayWrite", TestStrayWrite},
		{"StrayWhileSending", TestStrayWhileSending},
		{"DescriptorShortage", TestDescriptorShortage},
		{"ReceiverKilled", TestReceiverKilled},
		{"ReplyThenKilled", TestReplyThenKilled},
		{"RelayHandOver", TestRelayHandOver},
	} {
		t.Run(c.name, c.f)
	}
}

// TestFeedWaitEnds: a Receive waiting on its thread for the FIFO (in
// ppoll, outside Go's poller) ends when its context is cancelled and
// when the endpoint closes, and is woken by a request from another
// process.
func TestFeedWaitEnds(t *testing.T) {
	dir, ep := attachFeeder(t)
	receive := func(ctx context.Context) chan error {
		got := make(chan error, 1)
		go func() {
			req, _, err := ep.Receive(ctx)
			if err == nil && req.Valid() {
				err = req.Reply([]byte("ok"))
			}
			got <- err
		}()
		waitFor(t, "Receive waiting in ppoll", ep.sleeping.Load)
		return got
	}
	ended := func(got chan error, what string) error {
		t.Helper()
		select {
		case err := <-got:
			return err
		case <-time.After(helperTimeout):
			t.Fatalf("Receive still waiting %v after %s", helperTimeout, what)
			return nil
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	got := receive(ctx)
	cancel()
	if err := ended(got, "its context's cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive after cancel: %v, want context.Canceled", err)
	}

	got = receive(context.Background())
	h := proctest.Start(t, "sendseq", nil, dir, "CLI", "SRV", "hello")
	if err := ended(got, "a request came"); err != nil {
		t.Errorf("Receive of a request: %v", err)
	}
	h.Expect("reply ok", helperTimeout)
	h.Expect("done", helperTimeout)
	if err := h.Wait(helperTimeout); err != nil { // its FIFOs gone with it
		t.Errorf("sender: %v", err)
	}

	got = receive(context.Background())
	ep.Close()
	if err := ended(got, "Close"); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Receive during Close: %v, want ErrClosed", err)
	}
}

// waitRead waits for cond, a state the FIFO's reader brings about. Read
// on Receive's thread (threadWait), the FIFO is read only when a Receive
// asks: each poll then reads one doorbell as a Receive would (Feed), and
// anything it delivers fails the test.
func waitRead(t *testing.T, ep *Endpoint, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		if ep.threadRx && !cond() {
			if r, p, ok := ep.Feed(); ok {
				t.Fatalf("%s: delivered a request (%v) or proxy %d instead", what, r.Valid(), p)
			}
		}
		return cond()
	})
}

// TestFeedWaitDrainsWaker: a Wake whose write lands after the Wait it was
// meant for has left the waker readable with nothing pending; the next
// Wait, which it ends at once, must drain it, or every Wait after would
// end at once too and the receiving thread would spin.
func TestFeedWaitDrainsWaker(t *testing.T) {
	_, ep := attachFeeder(t)
	var err error
	sys.Wake(ep.rxWaker) // the late write: kicked is clear
	ep.Wait(func() bool { return false })
	var b [8]byte
	var n int
	ep.rxWaker.Control(func(fd int) { n, err = sys.ReadNonblock(fd, b[:]) })
	if n != 0 || err != nil {
		t.Fatalf("waker after the Wait it ended: read %d bytes (%v), want it drained", n, err)
	}
}

// attachFeeder attaches SRV in a directory of the test's own, its FIFO
// read on Receive's thread (ThreadReceive); the test's end closes it.
func attachFeeder(t *testing.T) (string, *Endpoint) {
	t.Helper()
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Attach("SRV", Options{Registry: reg, ThreadReceive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return dir, ep
}
