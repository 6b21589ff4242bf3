package fifo

// A receiver that dies without a word (SIGKILL) while senders wait on it:
// every Send must return ErrPeerGone within 100 ms of its death, whether
// its message was still in the receiver's FIFO or held unanswered, and
// leave nothing behind. The 100 ms run from the moment the receiver has
// died (its pidfd becomes readable), not from the kill: a SIGKILLed
// process ends only when each of its threads gets a CPU to die on, which
// on a loaded machine takes a while of its own (a full run once saw 162
// ms between the kill and the death). The receivers are helper processes (TestMain runs
// the test binary in a role, see simpltest).

import (
	"maps"

	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport/transporttest"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	isys "github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// roles are the helper processes of this package's tests.
var roles = map[string]proctest.Role{
	"holder":    runHolder,
	"replykill": runReplyKill,
	"echo":      runEcho,
}

func TestMain(m *testing.M) {
	maps.Copy(roles, transporttest.Roles(Transport{}))
	proctest.Main(m, roles)
}

// deathBound is how soon after the receiver's death every blocked Send
// must know.
const deathBound = 100 * time.Millisecond

const helperTimeout = 10 * time.Second

// helperEndpoint attaches name in dir for a helper.
func helperEndpoint(dir, name string) (*Endpoint, error) {
	reg, err := naming.Open(dir)
	if err != nil {
		return nil, err
	}
	return Attach(name, Options{Registry: reg, ThreadReceive: threadRx()})
}

// attachCLI attaches CLI in dir for a test, closed when the test ends.
func attachCLI(t *testing.T, dir string) (*naming.Registry, *Endpoint) {
	t.Helper()
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Attach("CLI", Options{Registry: reg, ThreadWait: threadWait})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return reg, ep
}

// holding attaches CLI in dir for a test (attachCLI), starts a holder of
// n requests as SRV and locates it.
func holding(t *testing.T, dir string, n int) (*naming.Registry, *Endpoint, *proctest.Proc, *Conn) {
	t.Helper()
	reg, ep := attachCLI(t, dir)
	h := proctest.Start(t, "holder", nil, dir, "SRV", strconv.Itoa(n))
	c, err := ep.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	return reg, ep, h, c
}

// runHolder (DIR NAME N) receives N requests, printing "held K" after the
// K-th, and answers none of them; it then waits to be killed. Proxies it
// receives meanwhile do not count.
func runHolder(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[2])
	proctest.Ready()
	var held []transport.Request
	for k := 1; k <= n; k++ {
		req, proxy, err := ep.Receive(context.Background())
		if err != nil {
			return err
		}
		if proxy > 0 {
			k--
			continue
		}
		held = append(held, req)
		fmt.Printf("held %d\n", k)
	}
	select {}
}

// runReplyKill (DIR NAME N) receives N requests, answers each with "ok",
// then SIGKILLs itself at once: its replies are on their way as it dies.
func runReplyKill(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[2])
	proctest.Ready()
	var reqs []transport.Request
	for range n {
		req, _, err := ep.Receive(context.Background())
		if err != nil {
			return err
		}
		reqs = append(reqs, req)
	}
	for _, req := range reqs {
		if err := req.Reply([]byte("ok")); err != nil {
			return err
		}
	}
	return syscall.Kill(os.Getpid(), syscall.SIGKILL)
}

// runEcho (DIR NAME) answers every request with its own bytes until
// killed.
func runEcho(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	proctest.Ready()
	for {
		req, _, err := ep.Receive(context.Background())
		if err != nil {
			return err
		}
		if req.Valid() {
			req.Reply(req.Data())
		}
	}
}

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// warmUp makes the runtime open the descriptors it keeps for good (the
// netpoller's), so that counting before and after compares like with like.
func warmUp(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
}

// checkFDs fails the test unless this process has want descriptors open,
// allowing a moment for exited helpers' pipes to be closed.
func checkFDs(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := countFDs(t)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			links := []string{}
			des, _ := os.ReadDir("/proc/self/fd")
			for _, de := range des {
				l, _ := os.Readlink("/proc/self/fd/" + de.Name())
				links = append(links, de.Name()+"->"+l)
			}
			t.Errorf("%d descriptors open, %d before: %v", got, want, links)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond for up to helperTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(helperTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, helperTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// replyFIFOs lists the reply FIFOs of whom (and its auxiliary identities)
// in dir.
func replyFIFOs(t *testing.T, dir, whom string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "Y"+whom+".") || strings.HasPrefix(de.Name(), "Y"+whom+"#") {
			out = append(out, de.Name())
		}
	}
	return out
}

// killed SIGKILLs p and returns the moment the kill system call returned.
func killed(t *testing.T, p *proctest.Proc) time.Time {
	t.Helper()
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return time.Now()
}

// bury reaps a killed helper and removes the FIFOs it left.
func bury(t *testing.T, p *proctest.Proc, reg *naming.Registry) {
	t.Helper()
	p.Wait(helperTimeout) // "signal: killed"
	if _, err := reg.Reap(""); err != nil {
		t.Error(err)
	}
}

// noPidfd makes the Conns located during the test watch their receiver
// by polling, as on kernels without pidfds.
func noPidfd(t *testing.T) {
	openProcess = func(pid int) (*isys.Pidfd, error) {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, isys.ErrNoPidfd)
	}
	t.Cleanup(func() { openProcess = isys.OpenPidfd })
}

// TestReceiverKilled: 16 Sends blocked on one receiver, 8 of them held
// unanswered and the rest still in its FIFO (at most readAhead read ahead, the others
// unread), all return ErrPeerGone within 100 ms of the receiver's death
// by SIGKILL (measured from the death, see watchDeath); five times
// over, from one endpoint. The Sends' reply FIFOs and segments are gone by
// the time they return, and at the end no descriptor is left open.
func TestReceiverKilled(t *testing.T) {
	t.Run("pidfd", testReceiverKilled)
	t.Run("polling", func(t *testing.T) {
		noPidfd(t)
		testReceiverKilled(t)
	})
}

func testReceiverKilled(t *testing.T) {
	const (
		senders = 16
		held    = 8
		rounds  = 5
	)
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	ctx := proctest.Context(t, time.Minute)

	var worst time.Duration
	for round := 1; round <= rounds; round++ {
		h := proctest.Start(t, "holder", nil, dir, "SRV", strconv.Itoa(held))
		c, err := ep.Locate("SRV")
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			err error
			at  time.Time
		}
		results := make(chan result, senders)
		send := func() {
			go func() {
				_, err := c.Send(ctx, []byte("hold me"), make([]byte, 64))
				results <- result{err, time.Now()}
			}()
		}
		for range held {
			send()
		}
		for range held {
			h.Expect("held", helperTimeout)
		}
		for range senders - held {
			send()
		}
		waitFor(t, "all Sends waiting", func() bool { return c.w.waitingCount() == senders })

		died := transporttest.WatchDeath(t, h.PID())
		kill := killed(t, h)
		death := died()
		late, slowest := 0, time.Duration(0)
		for range senders {
			var r result
			select {
			case r = <-results:
			case <-time.After(helperTimeout):
				t.Fatalf("round %d: a Send still blocked %v after its receiver died", round, helperTimeout)
			}
			if !errors.Is(r.err, transport.ErrPeerGone) {
				t.Errorf("round %d: Send = %v, want ErrPeerGone", round, r.err)
			}
			d := r.at.Sub(death)
			slowest = max(slowest, d)
			if d > deathBound {
				late++
			}
		}
		worst = max(worst, slowest)
		if late > 0 {
			t.Errorf("round %d: %d of %d Sends returned more than %v after the receiver died (the slowest %v; the death came %v after the kill)",
				round, late, senders, deathBound, slowest, death.Sub(kill))
		}
		if left := replyFIFOs(t, dir, "CLI"); len(left) > 0 {
			t.Errorf("round %d: reply FIFOs left after the Sends returned: %v", round, left)
		}
		if n := proctest.AttachedHere(t); n != 0 {
			t.Errorf("round %d: %d segments still mapped after the Sends returned", round, n)
		}

		// Known gone: the next Send fails at once, touching nothing.
		if _, err := c.Send(ctx, []byte("x"), nil); !errors.Is(err, transport.ErrPeerGone) {
			t.Errorf("round %d: Send after the death: %v, want ErrPeerGone", round, err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		bury(t, h, reg)
		proctest.CheckNoSegments(t, h.PID())
	}
	t.Logf("slowest Send noticed the death after %v", worst)
	ep.Close()
	if left := replyFIFOs(t, dir, "CLI"); len(left) > 0 {
		t.Errorf("reply FIFOs left after Close: %v", left)
	}
}

// TestReplyThenKilled: a receiver that answers and dies at once: its
// replies count, even if the sender learns of the death first.
func TestReplyThenKilled(t *testing.T) {
	const senders = 16
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	ctx := proctest.Context(t, time.Minute)
	for round := range 5 {
		h := proctest.Start(t, "replykill", nil, dir, "SRV", strconv.Itoa(senders))
		c, err := ep.Locate("SRV")
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, senders)
		for range senders {
			go func() {
				reply := make([]byte, 8)
				n, err := c.Send(ctx, []byte("x"), reply)
				if err == nil && string(reply[:n]) != "ok" {
					err = fmt.Errorf("reply %q", reply[:n])
				}
				errs <- err
			}()
		}
		for range senders {
			if err := <-errs; err != nil {
				t.Errorf("round %d: Send to a receiver that replied, then died: %v", round, err)
			}
		}
		c.Close()
		bury(t, h, reg)
	}
}

// TestConnCloseEndsSends: Close ends the Sends waiting on the Conn with
// ErrClosed, later Sends fail the same way, and a second Close is a no-op.
func TestConnCloseEndsSends(t *testing.T) {
	dir := proctest.Dir(t)
	reg, ep, h, c := holding(t, dir, 2)
	ctx := proctest.Context(t, time.Minute)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.Send(ctx, []byte("x"), nil)
			errs <- err
		}()
	}
	h.Expect("held 2", helperTimeout)
	waitFor(t, "both Sends waiting", func() bool { return c.w.waitingCount() == 2 })
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Send during Close: %v, want ErrClosed", err)
		}
	}
	if d := time.Since(start); d > deathBound {
		t.Errorf("Sends took %v to end after Close", d)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Send(ctx, []byte("x"), nil); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := c.Trigger(1); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Trigger after Close: %v, want ErrClosed", err)
	}
	// The held requests may still be answered: their slots wait for that
	// until the endpoint closes.
	ep.Close()
	if left := replyFIFOs(t, dir, "CLI"); len(left) > 0 {
		t.Errorf("reply FIFOs left after Close: %v", left)
	}
	killed(t, h)
	bury(t, h, reg)
}

// TestGaveUpThenKilled: a Send that gave up (its context ended) leaves its
// slot waiting for the late answer; when the receiver dies instead, the
// slot goes at once rather than when the endpoint closes, whether or not
// the Conn was closed in between (a deferred Close, say).
func TestGaveUpThenKilled(t *testing.T) {
	for _, closeConn := range []bool{false, true} {
		t.Run(fmt.Sprintf("close=%v", closeConn), func(t *testing.T) {
			dir := proctest.Dir(t)
			reg, _, h, c := holding(t, dir, 1)
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := c.Send(ctx, []byte("x"), nil)
				errc <- err
			}()
			h.Expect("held 1", helperTimeout)
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Send: %v", err)
			}
			want := []string{"YCLI." + strconv.Itoa(os.Getpid())}
			if got := replyFIFOs(t, dir, "CLI"); !slices.Equal(got, want) {
				t.Fatalf("reply FIFOs %v, want %v (set aside for the late answer)", got, want)
			}
			waitFor(t, "the slot draining", func() bool { return c.drains.Load() == 1 })
			if closeConn {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			died := transporttest.WatchDeath(t, h.PID())
			killed(t, h)
			death := died()
			waitFor(t, "the drained slot gone", func() bool {
				return len(replyFIFOs(t, dir, "CLI")) == 0 && proctest.AttachedHere(t) == 0 && c.drains.Load() == 0
			})
			if d := time.Since(death); d > deathBound {
				t.Errorf("the drained slot went %v after the receiver died, want within %v", d, deathBound)
			}
			bury(t, h, reg)
		})
	}
}

// TestLocateDeadReceiver: a killed receiver, reaped or not yet (a
// zombie), is not found.
func TestLocateDeadReceiver(t *testing.T) {
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	h := proctest.Start(t, "holder", nil, dir, "SRV", "1")
	killed(t, h)
	locate := func(state string) {
		t.Helper()
		if c, err := ep.Locate("SRV"); !errors.Is(err, transport.ErrNotFound) {
			if err == nil {
				c.Close()
			}
			t.Errorf("Locate of a killed receiver (%s): %v, want ErrNotFound", state, err)
		}
	}
	waitFor(t, "the helper's death", func() bool { return !naming.Alive(h.PID(), time.Time{}) })
	locate("zombie")
	bury(t, h, reg)
	locate("reaped")
}

// TestPollReadsWaitingReply: the check a Send makes when its receiver died,
// for a reply rung just before, reads a doorbell waiting in the reply FIFO
// and nothing else.
func TestPollReadsWaitingReply(t *testing.T) {
	dir := proctest.Dir(t)
	_, ep := attachCLI(t, dir)
	s, err := ep.getSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer ep.putSlot(s)
	if v, ok := s.poll(); ok {
		t.Fatalf("poll of an empty reply FIFO: %d, true", v)
	}
	fd, err := sys.OpenWriter(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	if err := sys.WriteInt32(fd, -1); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.poll(); !ok || v != -1 {
		t.Errorf("poll after a -1 doorbell: %d, %v", v, ok)
	}
	if v, ok := s.poll(); ok {
		t.Errorf("second poll: %d, true", v)
	}
}

// TestAbandonedConn: a Conn dropped without Close, after a Send started
// its watcher, is collected and its descriptors closed; its watcher does
// not keep it alive.
func TestAbandonedConn(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	h := proctest.Start(t, "echo", nil, dir, "SRV")
	ep, err := Attach("CLI", Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	warmUp(t)
	fds := countFDs(t)
	func() {
		c, err := ep.Locate("SRV")
		if err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 8)
		if n, err := c.Send(proctest.Context(t, helperTimeout), []byte("ping"), reply); err != nil || string(reply[:n]) != "ping" {
			t.Fatalf("Send: %q, %v", reply[:n], err)
		}
	}()
	deadline := time.Now().Add(helperTimeout)
	for countFDs(t) != fds && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	checkFDs(t, fds)
	killed(t, h)
	bury(t, h, reg)
}
