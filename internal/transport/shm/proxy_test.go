//go:build !race

package shm

// Proxies through the proxy lane's ring (layout.go): delivered once and in
// order per sender across processes, fairly between senders, up to the
// ring's size and then ErrTooLarge, after the sender's death, and never
// at the cost of a receiver facing a corrupt ring.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/transport"
)

// roleTrig ADDR PID WHOM MODE ARG: a sender helper that triggers.
//
//	burst BASE,N  Trigger BASE+1..BASE+N, print "burst"; on "go", Trigger
//	              BASE+N+1..BASE+2N with a Send of "T<BASE>-<i>" after
//	              every third, each reply checked; print "done"
//	die N         Trigger 1..N, print "triggered", wait to be killed
//	corrupt HOW   Trigger 1, print "one"; on "corrupt" spoil the ring as
//	              HOW says and ring the bell, print "corrupted"; on
//	              "again" Trigger 2 and 3 and Send, printing the outcome
//	              of each ("again ERR ERR ERR")
func roleTrig(args []string) error {
	pid, _ := strconv.Atoi(args[1])
	c, err := Dial(context.Background(), args[0], pid, args[2], Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	cmds := commands()
	say("ready")
	ctx := context.Background()
	switch args[3] {
	case "burst":
		base, n := 0, 0
		fmt.Sscanf(args[4], "%d,%d", &base, &n)
		for i := 1; i <= n; i++ {
			if err := c.Trigger(base + i); err != nil {
				return fmt.Errorf("trigger %d: %w", base+i, err)
			}
		}
		say("burst")
		<-cmds
		reply := make([]byte, 64)
		for i := n + 1; i <= 2*n; i++ {
			if err := c.Trigger(base + i); err != nil {
				return fmt.Errorf("trigger %d: %w", base+i, err)
			}
			if i%3 == 0 {
				req := fmt.Appendf(nil, "T%d-%d", base, i)
				k, err := c.Send(ctx, req, reply)
				if err != nil || string(reply[:k]) != string(complement(req)) {
					return fmt.Errorf("send %q: %q, %w", req, reply[:k], err)
				}
			}
		}
		say("done")
	case "die":
		n, _ := strconv.Atoi(args[4])
		for i := 1; i <= n; i++ {
			if err := c.Trigger(i); err != nil {
				return fmt.Errorf("trigger %d: %w", i, err)
			}
		}
		say("triggered")
		select {}
	case "corrupt":
		if err := c.Trigger(1); err != nil {
			return err
		}
		say("one")
		<-cmds
		c.pmu.Lock()
		l := c.plane
		// Every entry a good one, so that only the indices are wrong.
		for i := range uint32(proxyRing) {
			l.r.entry(i).Store(encodeEntry(7, 0))
		}
		switch args[4] {
		case "ahead": // ptail beyond the ring
			l.r.tail.Store(l.pnext + proxyRing + 1)
		case "behind": // ptail before what was taken
			l.r.tail.Store(l.pnext - 1)
		case "zero": // an entry no Trigger writes
			l.r.entry(l.pnext).Store(encodeEntry(0, 0))
			l.r.tail.Store(l.pnext + 1)
		case "negative":
			l.r.entry(l.pnext).Store(encodeEntry(-5, 0))
			l.r.tail.Store(l.pnext + 1)
		default:
			c.pmu.Unlock()
			return fmt.Errorf("unknown corruption %q", args[4])
		}
		c.bell.ring(l.index)
		c.pmu.Unlock()
		say("corrupted")
		<-cmds
		e2, e3 := c.Trigger(2), c.Trigger(3)
		reply := make([]byte, 16)
		_, e4 := c.Send(ctx, []byte("after"), reply)
		say("again %s %s %s", errName(e2), errName(e3), errName(e4))
	default:
		return fmt.Errorf("unknown mode %q", args[3])
	}
	return nil
}

// startTrig starts a "trig" helper sending to the endpoint at addr in this
// process.
func startTrig(t *testing.T, addr, whom, mode, arg string) *proc {
	t.Helper()
	return startHelper(t, "trig", addr, strconv.Itoa(os.Getpid()), whom, mode, arg)
}

// socketAbsorbs is how many proxy packets (8 bytes) a lane's socket took
// when proxies were written to it, before a non-blocking send failed
// with EAGAIN: measured on a socket pair of the lane's kind.
func socketAbsorbs(t *testing.T) int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	pkt := []byte("GSP1\x07\x00\x00\x00")
	for n := 0; n < 1<<20; n++ {
		if err := unix.Send(fds[0], pkt, unix.MSG_DONTWAIT); err != nil {
			if !errors.Is(err, unix.EAGAIN) {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("a socket pair took a million packets")
	return 0
}

// TestProxyRingAbsorbs: a receiver that is not reading takes proxyRing
// proxies from a sender, at least what a lane absorbed when proxies were
// socket packets (the Queue's QueueDepth, one in the reader goroutine's
// hands and the socket's buffer: 1303 here), and then Trigger fails at
// once with ErrTooLarge; once the receiver has taken them, in order,
// Trigger works again.
func TestProxyRingAbsorbs(t *testing.T) {
	old := transport.QueueDepth + 1 + socketAbsorbs(t)
	t.Logf("a lane absorbed %d proxies as socket packets; the ring holds %d", old, proxyRing)
	if proxyRing < old {
		t.Fatalf("the ring holds %d proxies, fewer than the %d a lane's socket and queue took", proxyRing, old)
	}

	p := startRecv(t, "absorb", 0, holdForever)
	p.command("pause")
	p.Expect("paused", 10*time.Second)
	c := dial(t, p, Options{})
	n := 0
	var err error
	within(t, 20*time.Second, "triggering until the ring is full", func() {
		for n <= 2*proxyRing {
			if err = c.Trigger(n + 1); err != nil {
				break
			}
			n++
		}
	})
	if !errors.Is(err, transport.ErrTooLarge) || !strings.Contains(err.Error(), "not reading") {
		t.Fatalf("Trigger %d to a receiver not reading: %v, want ErrTooLarge (not reading)", n+1, err)
	}
	if n != proxyRing {
		t.Fatalf("the receiver took %d proxies while not reading, want %d", n, proxyRing)
	}
	if err := c.Trigger(n + 1); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Trigger to a full ring again: %v, want ErrTooLarge", err)
	}
	p.command("resume")
	for i := 1; i <= n; i++ {
		if line, want := p.ReadLine(10*time.Second), fmt.Sprintf("proxy %d", i); line != want {
			t.Fatalf("receiver says %q, want %q", line, want)
		}
	}
	// Drained: the ring takes proxies again.
	for _, v := range []int{9001, 9002} {
		if err := c.Trigger(v); err != nil {
			t.Fatalf("Trigger(%d) after the receiver drained the ring: %v", v, err)
		}
		if line, want := p.ReadLine(10*time.Second), fmt.Sprintf("proxy %d", v); line != want {
			t.Fatalf("receiver says %q, want %q", line, want)
		}
	}
}

// TestProxyBurstTwoSenders: two sender processes each trigger a burst
// before the receiver reads anything, then more interleaved with Sends.
// Every proxy is received once, each sender's in the order triggered,
// every Send is answered, and the two backlogs are served interleaved
// (neither waits for the other's to drain).
func TestProxyBurstTwoSenders(t *testing.T) {
	const n = 600 // per sender and phase; both backlogs fit in their rings
	e, addr := listen(t, "burst", Options{})
	bases := []int{100000, 200000}
	var senders []*proc
	for i, base := range bases {
		senders = append(senders, startTrig(t, addr, fmt.Sprintf("S%d", i), "burst", fmt.Sprintf("%d,%d", base, n)))
	}
	for _, s := range senders {
		s.Expect("burst", 20*time.Second)
	}
	if w := e.Waiting(); w != 2*n {
		t.Fatalf("%d proxies waiting after both bursts, want %d", w, 2*n)
	}
	for _, s := range senders {
		s.command("go")
	}

	ctx := testCtx(t, 60*time.Second)
	var order []int // sender index of each proxy, as received
	next := []int{1, 1}
	sends := map[string]int{}
	for len(order) < 4*n || len(sends) < 2*(2*n/3-n/3) {
		req, proxy, err := e.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after %d proxies and %d Sends: %v", len(order), len(sends), err)
		}
		if req.Valid() {
			d := string(req.Data())
			sends[d]++
			if sends[d] > 1 {
				t.Fatalf("Send %q received twice", d)
			}
			if err := req.Reply(complement(req.Data())); err != nil {
				t.Fatal(err)
			}
			continue
		}
		s := proxy/100000 - 1
		if s < 0 || s > 1 {
			t.Fatalf("proxy %d from no sender", proxy)
		}
		if want := bases[s] + next[s]; proxy != want {
			t.Fatalf("sender %d: proxy %d received, want %d (each once, in order)", s, proxy, want)
		}
		next[s]++
		order = append(order, s)
	}
	for _, s := range senders {
		s.Expect("done", 20*time.Second)
	}
	// The backlogs: the first 2n proxies received were all waiting at
	// once, so the receiver's rotation takes them in turn.
	run, longest := 0, 0
	for i := range 2 * n {
		if i > 0 && order[i] == order[i-1] {
			run++
		} else {
			run = 1
		}
		longest = max(longest, run)
	}
	if longest > 4 {
		t.Fatalf("the two backlogs were served in runs of up to %d proxies from one sender, want them interleaved", longest)
	}
	if e.Waiting() != 0 {
		t.Fatalf("%d still waiting", e.Waiting())
	}
}

// TestProxySenderKilled: a sender killed right after triggering has its
// proxies delivered, in order, and then its lanes are released as for
// any sender gone.
func TestProxySenderKilled(t *testing.T) {
	const n = 100
	e, addr := listen(t, "killed", Options{})
	s := startTrig(t, addr, "victim", "die", strconv.Itoa(n))
	s.Expect("triggered", 20*time.Second)
	if laneCount(e) != 2 {
		t.Fatalf("%d lanes, want 2 (the Dial's and the proxy lane)", laneCount(e))
	}
	s.kill()
	// The message lane goes at once; the proxy lane waits for its proxies
	// to be taken.
	waitFor(t, 10*time.Second, "the dead sender's message lane to go", func() bool { return laneCount(e) == 1 })
	waitFor(t, 10*time.Second, "the receiver to see the proxy lane's sender gone", func() bool { return proxyLaneGone(e) })
	if w := e.Waiting(); w != n {
		t.Fatalf("%d proxies waiting from the dead sender, want %d", w, n)
	}
	ctx := testCtx(t, 20*time.Second)
	for i := 1; i <= n; i++ {
		req, proxy, err := e.Receive(ctx)
		if err != nil || req.Valid() || proxy != i {
			t.Fatalf("Receive %d after the sender died: proxy %d, request %v, %v; want proxy %d", i, proxy, req.Valid(), err, i)
		}
	}
	waitFor(t, 10*time.Second, "the dead sender's proxy lane to go", func() bool { return laneCount(e) == 0 })
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if req, proxy, err := e.Receive(rctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive after the dead sender's proxies: proxy %d, request %v, %v; want nothing more", proxy, req.Valid(), err)
	}
}

// proxyLaneGone reports whether e holds a proxy lane whose sender it
// knows to be gone.
func proxyLaneGone(e *Endpoint) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for l := range e.all {
		l.mu.Lock()
		gone := l.proxies && l.gone && !l.dead
		l.mu.Unlock()
		if gone {
			return true
		}
	}
	return false
}

// TestProxyUnrungAfterClose: a proxy whose sender went between writing
// it and ringing the bell is still delivered: the receiver rings for it
// when the lane's socket closes.
func TestProxyUnrungAfterClose(t *testing.T) {
	e, addr := listen(t, "unrung", Options{})
	c, err := Dial(context.Background(), addr, os.Getpid(), "unrung", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Trigger(1); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 20*time.Second)
	if _, proxy, err := e.Receive(ctx); err != nil || proxy != 1 {
		t.Fatalf("Receive: proxy %d, %v", proxy, err)
	}
	// Trigger's writes without its ring, then the Conn goes.
	c.pmu.Lock()
	l := c.plane
	l.r.entry(l.pnext).Store(encodeEntry(2, c.bell.Ticket()))
	l.pnext++
	l.r.tail.Store(l.pnext)
	c.pmu.Unlock()
	c.Close()
	if _, proxy, err := e.Receive(ctx); err != nil || proxy != 2 {
		t.Fatalf("Receive of the unrung proxy: proxy %d, %v", proxy, err)
	}
	waitFor(t, 10*time.Second, "the closed Conn's lanes to go", func() bool { return laneCount(e) == 0 })
}

// TestHostileProxyRing: a sender process that spoils its ring's indices
// or entries gets its proxy lane dropped, and ErrBadMessage from its next
// Trigger; the receiver delivers nothing from the spoiled ring, does not
// hang or crash, and serves the sender's next proxies (a new lane) and
// Sends.
func TestHostileProxyRing(t *testing.T) {
	for _, how := range []string{"ahead", "behind", "zero", "negative"} {
		t.Run(how, func(t *testing.T) {
			e, addr := listen(t, "spoil"+how, Options{})
			s := startTrig(t, addr, "spoiler", "corrupt", how)
			ctx := testCtx(t, 30*time.Second)
			if _, proxy, err := e.Receive(ctx); err != nil || proxy != 1 {
				t.Fatalf("Receive of the good proxy: %d, %v", proxy, err)
			}
			s.Expect("one", 10*time.Second)
			s.command("corrupt")
			s.Expect("corrupted", 10*time.Second)
			// The receiver looks at the spoiled ring and drops the lane
			// instead of delivering anything from it.
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			req, proxy, err := e.Receive(rctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Receive from a spoiled ring: proxy %d, request %v, %v; want nothing", proxy, req.Valid(), err)
			}
			waitFor(t, 10*time.Second, "the spoiled proxy lane to be dropped", func() bool { return laneCount(e) == 1 })
			s.command("again")
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 2 {
					req, proxy, err := e.Receive(ctx)
					switch {
					case err != nil:
						t.Errorf("Receive after the spoiled ring: %v", err)
						return
					case req.Valid():
						req.Reply([]byte("ok"))
					case proxy != 3:
						t.Errorf("proxy %d after the spoiled ring, want 3", proxy)
					}
				}
			}()
			if line, want := s.ReadLine(20*time.Second), "again bad-message nil nil"; line != want {
				t.Fatalf("sender says %q, want %q (its spoiled lane reported, then a new one)", line, want)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the receiver did not deliver the proxy and the Send after the spoiled ring")
			}
		})
	}
}

// A sender that writes on its lane's socket after the handshake breaks
// the protocol: the receiver drops the lane (the sender's Send reports
// the receiver gone), and serves on.
func TestProxyLaneSocketWrite(t *testing.T) {
	e, addr := listen(t, "chatty", Options{})
	stop := serveLocal(t, e, 0)
	defer stop()
	c, err := Dial(context.Background(), addr, os.Getpid(), "chatty", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := c.takeFree()
	if _, err := l.conn.Write([]byte("GSP1\x07\x00\x00\x00")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver kept a lane whose sender wrote on its socket")
	}
	c.discard(l)
	echoLocal(t, c)
}

// echoLocal sends one request to a serveLocal endpoint and checks the
// answer.
func echoLocal(t *testing.T, c *Conn) {
	t.Helper()
	got, err := send(t, c, []byte("hello"), 16)
	if err != nil || string(got) != string(complement([]byte("hello"))) {
		t.Fatalf("Send: %q, %v", got, err)
	}
}

// postWaiting posts req on one of c's lanes with the prio word given, as
// Send does, and returns the lane without waiting for the answer.
func postWaiting(t *testing.T, c *Conn, req []byte, word uint32) *lane {
	t.Helper()
	l, err := c.get(testCtx(t, 10*time.Second), len(req))
	if err != nil {
		t.Fatal(err)
	}
	copy(l.w.data, req)
	l.w.nbytes.Store(uint32(len(req)))
	l.w.maxReply.Store(uint32(len(req)))
	l.w.origin.Store(0)
	l.w.code.Store(0)
	l.w.prio.Store(word)
	l.w.ticket.Store(c.bell.Ticket())
	l.w.state.Store(lanePosted)
	c.bell.ring(l.index)
	return l
}

// TestProxyPriorityOrder: in priority order a proxy from a proxy lane
// (another process's) counts as a request carrying no priority
// (SCHED_OTHER nice 0): after a request at nice -5, before one at nice
// 5, and in arrival order with a request carrying none.
func TestProxyPriorityOrder(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := transport.NewQueue("PRIO", true)
	q.SetPriorityOrder()
	e, addr := listen(t, "PRIO", Options{Queue: q})
	t.Cleanup(func() { q.Close() })
	c, err := Dial(context.Background(), addr, os.Getpid(), "poster", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nice := func(n int) uint32 { return encodePrio(transport.Prio{Policy: transport.SchedOther, Level: n}) }

	var lanes []*lane
	lanes = append(lanes, postWaiting(t, c, []byte("low"), nice(5)))
	s := startTrig(t, addr, "sensor", "burst", "0,2")
	s.Expect("burst", 20*time.Second)
	waitFor(t, 10*time.Second, "the low request and two proxies waiting", func() bool { return e.Waiting() == 3 })
	lanes = append(lanes, postWaiting(t, c, []byte("none"), 0))
	lanes = append(lanes, postWaiting(t, c, []byte("high"), nice(-5)))

	var got []string
	for range 5 {
		r, proxy, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if proxy > 0 {
			got = append(got, fmt.Sprintf("proxy%d", proxy))
			continue
		}
		got = append(got, string(r.Data()))
		if err := r.Reply(r.Data()); err != nil {
			t.Fatal(err)
		}
	}
	if g, want := strings.Join(got, " "), "high proxy1 proxy2 none low"; g != want {
		t.Errorf("received %q, want %q", g, want)
	}
	for _, l := range lanes {
		if st, _ := l.wait(ctx, true, false); st != laneAnswered {
			t.Fatalf("a posted request's lane in state %d, want answered", st)
		}
		l.w.prio.Store(0)
		l.w.state.Store(laneIdle)
		c.put(l)
	}
}

// A stopped receiver (SIGSTOP): a Conn whose proxy lane is set up goes on
// triggering without waiting, and the proxies arrive once the receiver
// continues; a Conn's first Trigger, which needs a handshake, fails with
// ErrUnreachable after the handshake's bound instead of waiting for it.
func TestProxyStoppedReceiver(t *testing.T) {
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = 500 * time.Millisecond
	p := startRecv(t, "stoppedproxy", 0, holdForever)
	c1 := dial(t, p, Options{})
	c2 := dial(t, p, Options{})
	if err := c1.Trigger(1); err != nil {
		t.Fatal(err)
	}
	if line := p.ReadLine(10 * time.Second); line != "proxy 1" {
		t.Fatalf("receiver says %q, want \"proxy 1\"", line)
	}
	p.Signal(syscall.SIGSTOP)
	waitFor(t, 10*time.Second, "the receiver to stop", func() bool { return procState(t, p.PID()) == "T" })
	within(t, time.Second, "Triggers to a stopped receiver on a set-up proxy lane", func() {
		for i := 2; i <= 3; i++ {
			if err := c1.Trigger(i); err != nil {
				t.Errorf("Trigger(%d) to a stopped receiver: %v", i, err)
			}
		}
	})
	d0 := time.Now()
	err := c2.Trigger(7)
	if errors.Is(err, transport.ErrPeerGone) || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("first Trigger of a Conn to a stopped receiver: %v, want ErrUnreachable", err)
	}
	if d := time.Since(d0); d < handshakeTimeout || d > handshakeTimeout+5*time.Second {
		t.Errorf("first Trigger to a stopped receiver gave up after %v, want about %v", d, handshakeTimeout)
	}
	p.Signal(syscall.SIGCONT)
	for i := 2; i <= 3; i++ {
		if line, want := p.ReadLine(10*time.Second), fmt.Sprintf("proxy %d", i); line != want {
			t.Fatalf("receiver says %q after SIGCONT, want %q", line, want)
		}
	}
	if err := c2.Trigger(8); err != nil {
		t.Fatalf("Trigger once the receiver continued: %v", err)
	}
	if line := p.ReadLine(10 * time.Second); line != "proxy 8" {
		t.Fatalf("receiver says %q, want \"proxy 8\"", line)
	}
}
