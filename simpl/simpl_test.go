package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"math"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

const testTimeout = 30 * time.Second

func TestSizesGoSenderToGoReceiver(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	cli := attach(t, dir, "CLI")
	if err := sizeMatrix(simpltest.Context(t, testTimeout), locate(t, cli, "SRV")); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	simpltest.CheckNoSegments(t, srv.PID())
	reap(t, dir)
}

func TestSizesReceiverInThisProcess(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "SRV")
	ctx := simpltest.Context(t, testTimeout)
	proxies := make(chan int, 1)
	go serve(ctx, ch, func(p int) { proxies <- p })
	cli := simpltest.Start(t, "client", env(dir), "CLI", "SRV")
	cli.Expect("ok", testTimeout)
	if err := cli.Wait(5 * time.Second); err != nil {
		t.Fatalf("client: %v", err)
	}
	select {
	case p := <-proxies:
		if p != 9 {
			t.Errorf("proxy %d, want 9", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no proxy")
	}
	ch.Close()
	simpltest.CheckNoSegments(t, cli.PID())
}

func TestProxies(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	for _, p := range []int{1, 42, simpl.ProxyShutdown} {
		if err := c.Trigger(p); err != nil {
			t.Fatalf("Trigger(%d): %v", p, err)
		}
		if got, want := srv.ReadLine(5*time.Second), fmt.Sprintf("proxy %d", p); got != want {
			t.Fatalf("server printed %q, want %q", got, want)
		}
	}
	bad := []int{0, -1}
	if math.MaxInt > math.MaxInt32 {
		big := int64(math.MaxInt32)
		bad = append(bad, int(big+1))
	}
	for _, p := range bad {
		if err := c.Trigger(p); !errors.Is(err, simpl.ErrBadProxy) {
			t.Errorf("Trigger(%d) = %v, want ErrBadProxy", p, err)
		}
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

func TestRelayAcrossThreeProcesses(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "FINAL")
	rel := simpltest.Start(t, "relay", env(dir), "MIDDLE", "FINAL")
	cli := attach(t, dir, "CLI")
	c := locate(t, cli, "MIDDLE")
	ctx := simpltest.Context(t, testTimeout)
	reply := make([]byte, 64)
	for i := range 20 {
		req := []byte{opEcho, byte(i), 'r', 'e', 'l'}
		n, err := c.Send(ctx, req, reply)
		if err != nil {
			t.Fatalf("send %d through relay: %v", i, err)
		}
		if string(reply[:n]) != string(incremented(req[1:])) {
			t.Fatalf("send %d: reply %x", i, reply[:n])
		}
		rel.Expect("relayed", 5*time.Second)
	}
	c.Close()
	srv.Signal(syscall.SIGKILL)
	rel.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	rel.Wait(5 * time.Second)
	cli.Close()
	simpltest.CheckNoSegments(t, srv.PID(), rel.PID())
	reap(t, dir)
}

func TestTooLarge(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV", "1024")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	ctx := simpltest.Context(t, testTimeout)
	reply := make([]byte, 16)

	if _, err := c.Send(ctx, sizedReq(1, 2048), reply); !errors.Is(err, simpl.ErrTooLarge) {
		t.Errorf("2048-byte message to a 1024-byte receiver: %v, want ErrTooLarge", err)
	}
	if _, err := c.Send(ctx, sizedReq(100, 5), reply[:10]); !errors.Is(err, simpl.ErrReplyTooLarge) {
		t.Errorf("100-byte reply into 10 bytes: %v, want ErrReplyTooLarge", err)
	}
	// The receiver goes on serving.
	n, err := c.Send(ctx, sizedReq(16, 1024), reply)
	if err != nil || string(reply[:n]) != string(pattern(16)) {
		t.Fatalf("after the failures: n=%d err=%v", n, err)
	}
	if _, err := c.Send(ctx, []byte{opError}, reply); !errors.Is(err, simpl.ErrRejected) {
		t.Errorf("ReplyError: %v, want ErrRejected", err)
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

func TestReplyTooLargeInReceiver(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	ctx := simpltest.Context(t, testTimeout)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("hi"), make([]byte, 4))
		errc <- err
	}()
	msg, err := srv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.MaxReply() != 4 {
		t.Errorf("MaxReply = %d, want 4", msg.MaxReply())
	}
	if name, pid := msg.Sender(); name != "CLI" || pid != os.Getpid() {
		t.Errorf("Sender = %q, %d", name, pid)
	}
	if err := msg.Reply([]byte("too long")); !errors.Is(err, simpl.ErrReplyTooLarge) {
		t.Errorf("Reply: %v, want ErrReplyTooLarge", err)
	}
	if err := <-errc; !errors.Is(err, simpl.ErrReplyTooLarge) {
		t.Errorf("Send: %v, want ErrReplyTooLarge", err)
	}
	if err := msg.Reply([]byte("ok")); !errors.Is(err, simpl.ErrReplied) {
		t.Errorf("second Reply: %v, want ErrReplied", err)
	}
}

func TestNameInUse(t *testing.T) {
	dir := simpltest.Dir(t)
	h := simpltest.Start(t, "hold", env(dir), "TAKEN")
	if _, err := simpl.Attach("TAKEN", simpl.WithDir(dir)); !errors.Is(err, simpl.ErrNameInUse) {
		t.Errorf("attach a name held by another process: %v, want ErrNameInUse", err)
	}
	attach(t, dir, "MINE")
	if _, err := simpl.Attach("MINE", simpl.WithDir(dir)); !errors.Is(err, simpl.ErrNameInUse) {
		t.Errorf("attach a name twice in one process: %v, want ErrNameInUse", err)
	}
	h.Signal(syscall.SIGKILL)
	h.Wait(5 * time.Second)
	reap(t, dir)
}

func TestReclaimAfterSIGKILL(t *testing.T) {
	dir := simpltest.Dir(t)
	h := simpltest.Start(t, "hold", env(dir), "PHOENIX")
	cli := attach(t, dir, "CLI")
	if _, err := cli.Locate(context.Background(), "PHOENIX"); err != nil {
		t.Fatalf("locate live owner: %v", err)
	}
	h.Signal(syscall.SIGKILL)
	h.Wait(5 * time.Second)
	if _, err := cli.Locate(context.Background(), "PHOENIX"); !errors.Is(err, simpl.ErrNotFound) {
		t.Errorf("locate after SIGKILL: %v, want ErrNotFound", err)
	}
	ch := attach(t, dir, "PHOENIX")
	ch.Close()
	cli.Close()
	simpltest.CheckNoSegments(t, h.PID())
}

// 16 goroutines × 1,000 messages through one Channel: every reply is the
// answer to its own request.
func TestConcurrentSenders(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	ctx := simpltest.Context(t, 60*time.Second)
	const senders, each = 16, 1000
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply := make([]byte, 512)
			for i := range each {
				req := []byte(fmt.Sprintf("%c%d/%d/%s", opEcho, g, i, strings.Repeat("x", (g*31+i)%300)))
				n, err := c.Send(ctx, req, reply)
				if err != nil {
					errs <- fmt.Errorf("sender %d message %d: %w", g, i, err)
					return
				}
				if string(reply[:n]) != string(incremented(req[1:])) {
					errs <- fmt.Errorf("sender %d message %d: got another reply: %q", g, i, reply[:n])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// A receiver holds many requests and answers them later, out of order,
// from other goroutines.
func TestDeferredRepliesOutOfOrder(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "SRV")
	b := simpltest.Start(t, "burst", env(dir), "CLI", "SRV", "8")
	ctx := simpltest.Context(t, testTimeout)
	var held []simpl.Message
	for range 8 {
		msg, err := ch.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, msg)
	}
	var wg sync.WaitGroup
	for i := len(held) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(m simpl.Message) {
			defer wg.Done()
			if err := m.Reply(incremented(m.Data()[1:])); err != nil {
				t.Errorf("deferred reply: %v", err)
			}
		}(held[i])
	}
	wg.Wait()
	for range 8 {
		if line := b.ReadLine(5 * time.Second); !strings.HasSuffix(line, " ok") {
			t.Errorf("sender: %s", line)
		}
	}
	if err := b.Wait(5 * time.Second); err != nil {
		t.Error(err)
	}
	ch.Close()
	simpltest.CheckNoSegments(t, b.PID())
}

// Close releases every blocked sender: those whose messages were received
// and those still waiting to be.
func TestCloseReleasesBlockedSenders(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "SRV")
	b := simpltest.Start(t, "burst", env(dir), "CLI", "SRV", "6")
	ctx := simpltest.Context(t, testTimeout)
	for range 3 {
		if _, err := ch.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The other three are on their way: wait until they wait.
	if wantTransport() == simpl.FIFO {
		// The reader has posted one request ahead (after a small one it
		// reads no further until it is received); the others wait in the
		// FIFO.
		waitFor(t, testTimeout, "doorbells waiting in SRV's FIFO", func() bool { return fifoQueued(t, dir, "SRV") >= 8 })
	} else {
		// Each of the six Sends has its own lane, and posts its request as
		// soon as its lane is set up (mapped here): that is the last thing
		// this process can see before the post.
		waitFor(t, testTimeout, "the six senders' lanes", func() bool { return laneMappings(t) >= 6 })
	}
	ch.Close()
	for range 6 {
		line := b.ReadLine(5 * time.Second)
		t.Logf("sender said %q", line)
		if !strings.HasSuffix(line, "err peer-gone") {
			t.Errorf("sender: %q, want peer-gone", line)
		}
	}
	if err := b.Wait(5 * time.Second); err != nil {
		t.Error(err)
	}
	if _, err := ch.Receive(ctx); !errors.Is(err, simpl.ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
	simpltest.CheckNoSegments(t, b.PID())
}

func TestCancelledSendGetsNoStaleReply(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	reply := make([]byte, 64)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Send(short, []byte{opHold, 'o', 'l', 'd'}, reply); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held send: %v, want DeadlineExceeded", err)
	}
	ctx := simpltest.Context(t, testTimeout)
	// 'F' answers "F" and then the held message, whose answer must go to
	// the abandoned Send, never to these.
	for i := range 5 {
		n, err := c.Send(ctx, []byte{opFlush}, reply)
		if err != nil || string(reply[:n]) != "F" {
			t.Fatalf("send %d after a cancelled one: %q, %v", i, reply[:n], err)
		}
		req := []byte{opEcho, 'n', 'e', 'w', byte(i)}
		n, err = c.Send(ctx, req, reply)
		if err != nil || string(reply[:n]) != string(incremented(req[1:])) {
			t.Fatalf("echo %d after a cancelled send: %q, %v", i, reply[:n], err)
		}
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

func TestBadNames(t *testing.T) {
	dir := simpltest.Dir(t)
	// "" is not among them: Attach("") picks a name (TestAttachAnonymous).
	for _, name := range []string{strings.Repeat("n", 32), "a/b", "a:b", "a#1", "sp ace", "..", "nul\x00"} {
		if _, err := simpl.Attach(name, simpl.WithDir(dir)); !errors.Is(err, simpl.ErrBadName) {
			t.Errorf("Attach(%q) = %v, want ErrBadName", name, err)
		}
	}
	ch := attach(t, dir, strings.Repeat("n", 31))
	for _, name := range []string{"a:b:c:d", "", "h:", strings.Repeat("n", 32)} {
		if _, err := ch.Locate(context.Background(), name); !errors.Is(err, simpl.ErrBadName) {
			t.Errorf("Locate(%q) = %v, want ErrBadName", name, err)
		}
	}
	for _, name := range []string{"host:name", "_simplTCP:host:name"} {
		if _, err := ch.Locate(context.Background(), name); !errors.Is(err, remoteErr()) {
			t.Errorf("Locate(%q) with no gateway = %v, want %v", name, err, remoteErr())
		}
	}
	if _, err := ch.Locate(context.Background(), "NOBODY"); !errors.Is(err, simpl.ErrNotFound) {
		t.Errorf("Locate(NOBODY) = %v, want ErrNotFound", err)
	}
}

func TestClosedChannel(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	cli := attach(t, dir, "CLI")
	c := locate(t, cli, "SRV")
	ctx := simpltest.Context(t, testTimeout)
	got := make(chan error, 1)
	before := proctest.Parked("transport.(*Queue).Receive")
	go func() { _, err := srv.Receive(ctx); got <- err }()
	waitFor(t, testTimeout, "the Receive to block", func() bool { return proctest.Parked("transport.(*Queue).Receive") > before })
	srv.Close()
	srv.Close() // idempotent
	if err := <-got; !errors.Is(err, simpl.ErrClosed) {
		t.Errorf("blocked Receive after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Send(ctx, []byte("x"), nil); !errors.Is(err, simpl.ErrPeerGone) {
		t.Errorf("Send to a closed receiver: %v, want ErrPeerGone", err)
	}
	cli.Close()
	if _, err := c.Send(ctx, []byte("x"), nil); !errors.Is(err, simpl.ErrClosed) {
		t.Errorf("Send from a closed channel: %v, want ErrClosed", err)
	}
	if _, err := cli.Locate(ctx, "SRV"); !errors.Is(err, simpl.ErrClosed) && !errors.Is(err, simpl.ErrNotFound) {
		t.Errorf("Locate from a closed channel: %v", err)
	}
}

// Every Close, not only the first, returns once the name is detached: a
// program that closes from two goroutines (a signal handler and its main
// loop, say) and then exits or re-attaches finds no FIFO of the Channel's
// left, whichever Close returned first.
func TestConcurrentCloses(t *testing.T) {
	dir := simpltest.Dir(t)
	for i := range 50 {
		ch := attach(t, dir, "TWICE")
		var wg sync.WaitGroup
		left := make(chan string, 2)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch.Close()
				if ents, _ := os.ReadDir(dir); len(ents) > 0 {
					left <- ents[0].Name()
				}
			}()
		}
		wg.Wait()
		close(left)
		for name := range left {
			t.Fatalf("round %d: a Close returned with %s still in the directory", i, name)
		}
	}
}

// reap removes the FIFOs of helpers that were killed, as the next Attach
// would, so the directory check sees only real leaks.
func reap(t *testing.T, dir string) {
	t.Helper()
	ch, err := simpl.Attach("REAPER", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if err := reapAll(dir); err != nil {
		t.Fatal(err)
	}
}

// remoteErr is what locating another host's name gives with no gateway
// running: ErrUnreachable, or ErrNotSupported when GOSIMPL_TRANSPORT
// leaves this process one local transport only (the suites over FIFOs
// and over shared memory).
func remoteErr() error {
	if v := os.Getenv("GOSIMPL_TRANSPORT"); v != "" && v != "auto" && v != simpl.NET {
		return simpl.ErrNotSupported
	}
	return simpl.ErrUnreachable
}
