//go:build !race

package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/transport/transporttest"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// checkReply fails the test unless got (n bytes of a buffer filled with
// 0xA5 beforehand) holds exactly want and the rest of the buffer was left
// alone.
func checkReply(t *testing.T, what string, buf []byte, n int, want []byte) {
	t.Helper()
	if n != len(want) {
		t.Fatalf("%s: reply of %d bytes, want %d", what, n, len(want))
	}
	if i := firstDiff(buf[:n], want); i >= 0 {
		t.Fatalf("%s: reply byte %d is %#x, want %#x", what, i, buf[i], want[i])
	}
	for i := n; i < len(buf); i++ {
		if buf[i] != 0xA5 {
			t.Fatalf("%s: reply buffer byte %d past the reply was overwritten (%#x)", what, i, buf[i])
		}
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func filled(n int) []byte { return bytes.Repeat([]byte{0xA5}, n) }

// sizedReq asks for an n-byte reply (op 'S' or 'J'), padded to pad bytes.
func sizedReq(op byte, n, pad int) []byte {
	req := patternSeed(max(5, pad), n)
	req[0] = op
	binary.LittleEndian.PutUint32(req[1:5], uint32(n))
	return req
}

// 1. Round trips across two processes, every byte checked both ways: the
// receiver answers with the complement of what it read, so a byte wrong
// in either direction shows.
func TestRoundTrip(t *testing.T) {
	p := startRecv(t, "roundtrip", 0, holdForever)
	c := dial(t, p, Options{})
	ctx := testCtx(t, 60*time.Second)
	sizes := []int{0, 1, 64, 4096, 65536, 1 << 20, 64 << 20}
	for _, op := range []byte{opEcho, opInPlace} {
		for _, n := range sizes {
			what := fmt.Sprintf("%c %d bytes", op, n)
			req := patternSeed(n, n+int(op))
			if n > 0 {
				req[0] = op
			}
			buf := filled(n + 16)
			k, err := c.Send(ctx, req, buf)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			checkReply(t, what, buf, k, complement(req))
		}
	}
	// Request and reply sizes apart: each lane must hold the larger.
	for _, op := range []byte{opSized, opSizedInPl} {
		for _, reqSize := range []int{5, 4096, 1 << 20} {
			for _, replySize := range []int{0, 1, 4096, 1 << 20, 3 << 20} {
				what := fmt.Sprintf("%c request %d, reply %d", op, reqSize, replySize)
				buf := filled(replySize + 7)
				k, err := c.Send(ctx, sizedReq(op, replySize, reqSize), buf)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				checkReply(t, what, buf, k, pattern(replySize))
			}
		}
	}
	// The 64 MiB exchange grew a big lane; the Conn lets it go once idle.
	waitFor(t, idleBig+5*time.Second, "the idle 64 MiB lane to be released", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, l := range c.free {
			if len(l.w.data) > bigLane {
				return false
			}
		}
		return true
	})
	echo(t, c, "still fine")
}

func TestReplyLimits(t *testing.T) {
	p := startRecv(t, "limits", 0, holdForever)
	c := dial(t, p, Options{})
	last := func() string {
		t.Helper()
		got, err := send(t, c, []byte{opLast}, 64)
		if err != nil {
			t.Fatalf("last-error query: %v", err)
		}
		return string(got)
	}

	// A reply one byte too large, by Reply and by ReplyInPlace: the
	// sender gets ErrReplyTooLarge, the receiver's answer returns it too,
	// and nothing is written into the sender's buffer.
	for _, op := range []byte{opSized, opSizedInPl} {
		for _, n := range []int{1, 100, 5000, 1 << 20} {
			buf := filled(n - 1)
			k, err := c.Send(testCtx(t, 20*time.Second), sizedReq(op, n, 5), buf)
			if !errors.Is(err, transport.ErrReplyTooLarge) || k != 0 {
				t.Fatalf("%c reply of %d bytes into %d: n=%d err=%v, want ErrReplyTooLarge", op, n, n-1, k, err)
			}
			if !bytes.Equal(buf, filled(n-1)) {
				t.Fatalf("%c reply of %d bytes into %d: the buffer was written", op, n, n-1)
			}
			if got := last(); got != "reply-too-large" {
				t.Fatalf("%c reply of %d bytes into %d: the receiver's answer returned %s, want reply-too-large", op, n, n-1, got)
			}
			echo(t, c, "after a reply too large")
		}
	}
	// Exactly the buffer's size is fine.
	buf := filled(100)
	k, err := c.Send(testCtx(t, 20*time.Second), sizedReq(opSized, 100, 5), buf)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, "reply of exactly the buffer", buf, k, pattern(100))

	// ReplyError.
	if _, err := send(t, c, []byte{opError, 1, 2, 3}, 16); !errors.Is(err, transport.ErrRejected) {
		t.Fatalf("ReplyError: sender got %v, want ErrRejected", err)
	}
	if got := last(); got != "nil" {
		t.Fatalf("ReplyError returned %s on the receiver, want nil", got)
	}
	echo(t, c, "after a rejection")

	// The receiver's MaxMessage.
	q := startRecv(t, "limits-small", 4096, holdForever)
	cq := dial(t, q, Options{})
	for _, n := range []int{4097, 5000, 1 << 20} {
		req := patternSeed(n, n)
		req[0] = opEcho
		if _, err := send(t, cq, req, n); !errors.Is(err, transport.ErrTooLarge) {
			t.Fatalf("request of %d bytes to a receiver taking 4096: %v, want ErrTooLarge", n, err)
		}
	}
	req := patternSeed(4096, 1)
	req[0] = opEcho
	got, err := send(t, cq, req, 4096)
	if err != nil || !bytes.Equal(got, complement(req)) {
		t.Fatalf("request of exactly MaxMessage: %d bytes, %v", len(got), err)
	}
	if m := counts(t, cq); m["recv"] != 2 {
		t.Fatalf("the receiver got %d requests, want 2 (too large ones must not be delivered)", m["recv"])
	}

	// The sender's own limit fails without a round trip.
	cl := dial(t, q, Options{MaxMessage: 10})
	if _, err := send(t, cl, []byte("E0123456789"), 16); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Send over the Conn's MaxMessage: %v, want ErrTooLarge", err)
	}

	// A proxy goes over a lane's socket and reaches the receive loop.
	for _, bad := range []int{0, -1} {
		if err := c.Trigger(bad); !errors.Is(err, transport.ErrBadProxy) {
			t.Fatalf("Trigger(%d): %v, want ErrBadProxy", bad, err)
		}
	}
	if err := c.Trigger(7); err != nil {
		t.Fatalf("Trigger(7): %v", err)
	}
	if line := p.ReadLine(5 * time.Second); line != "proxy 7" {
		t.Fatalf("receiver says %q after Trigger(7), want \"proxy 7\"", line)
	}
	if c.PID() != p.PID() {
		t.Fatalf("PID() = %d, want %d", c.PID(), p.PID())
	}
}

// 2. A receiver that dies holding messages (some taken, some still
// posted): every Send fails with ErrPeerGone within 100 ms of its death,
// measured from the death itself (see watchDeath), not from the kill.
func TestDeadReceiver(t *testing.T) {
	const senders, held = 16, 8
	const bound = 100 * time.Millisecond
	for rep := range 5 {
		p := startRecv(t, fmt.Sprintf("deadrecv%d", rep), 0, held)
		c := dial(t, p, Options{})
		ctx := testCtx(t, 30*time.Second)
		type result struct {
			i   int
			err error
			at  time.Time
		}
		results := make(chan result, senders)
		for i := range senders {
			go func() {
				_, err := c.Send(ctx, []byte{opHold, byte(i)}, make([]byte, 16))
				results <- result{i, err, time.Now()}
			}()
		}
		p.Expect(fmt.Sprintf("held %d", held), 10*time.Second)
		p.Expect("paused", 10*time.Second)
		waitFor(t, 10*time.Second, "8 lanes taken and 8 posted", func() bool {
			s := laneStates(c)
			return s[laneTaken] == held && s[lanePosted] == senders-held
		})
		died := transporttest.WatchDeath(t, p.PID())
		kill := time.Now()
		p.Signal(syscall.SIGKILL)
		death := died()
		var worst time.Duration
		for range senders {
			select {
			case r := <-results:
				d := r.at.Sub(death)
				worst = max(worst, d)
				if !errors.Is(r.err, transport.ErrPeerGone) {
					t.Errorf("rep %d: Send %d returned %v, want ErrPeerGone", rep, r.i, r.err)
				}
				if d > bound {
					t.Errorf("rep %d: Send %d returned %v after its receiver died (%v after the kill), want within %v",
						rep, r.i, d, death.Sub(kill), bound)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("rep %d: a Send still blocked 5s after its receiver died", rep)
			}
		}
		t.Logf("rep %d: slowest Send returned %v after its receiver died (the death came %v after the kill)", rep, worst, death.Sub(kill))
		p.Wait(10 * time.Second)
		// New Sends fail at once too.
		if _, err := send(t, c, []byte("E"), 8); !errors.Is(err, transport.ErrPeerGone) {
			t.Errorf("rep %d: Send after the kill: %v, want ErrPeerGone", rep, err)
		}
		c.Close()
	}
}

// laneOf is the receiver's lane a request came in.
func laneOf(r transport.Request) *rlane {
	h, _ := r.Handle()
	return h.(*rlane)
}

// waitGone waits until the receiver's lane for r has seen its sender go.
func waitGone(t *testing.T, r transport.Request) {
	t.Helper()
	l := laneOf(r)
	waitFor(t, 5*time.Second, "the receiver to see its sender die", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.gone
	})
}

// 3. A sender that dies while its request is taken or posted.
func TestDeadSender(t *testing.T) {
	e, addr := listen(t, "deadsender", Options{})
	ctx := testCtx(t, 40*time.Second)
	lanesGone := func() {
		t.Helper()
		waitFor(t, 5*time.Second, "the endpoint's lanes to be released", func() bool { return laneCount(e) == 0 })
	}

	// Taken, then the sender dies: Reply reports ErrPeerGone.
	for rep := range 3 {
		p := startSend(t, addr, "victim", "one", 0)
		req, _, err := e.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(req.Data()) != "E one request" {
			t.Fatalf("received %q", req.Data())
		}
		if name, pid := req.Sender(); name != "victim" || pid != p.PID() {
			t.Fatalf("Sender() = %q, %d; want victim, %d", name, pid, p.PID())
		}
		if req.MaxReply() != 64 {
			t.Fatalf("MaxReply() = %d, want 64", req.MaxReply())
		}
		if cr, ok := req.Cred(); !ok || cr.PID != p.PID() || cr.UID != os.Getuid() {
			t.Fatalf("Cred() = %+v", cr)
		}
		p.kill()
		waitGone(t, req)
		if err := req.Reply([]byte("too late")); !errors.Is(err, transport.ErrPeerGone) {
			t.Fatalf("rep %d: Reply to a dead sender: %v, want ErrPeerGone", rep, err)
		}
		if err := req.Reply([]byte("again")); !errors.Is(err, transport.ErrReplied) {
			t.Fatalf("rep %d: second Reply: %v, want ErrReplied", rep, err)
		}
		lanesGone()
	}

	// Posted, never taken, then the sender dies: nothing is delivered.
	// Once its lane is released nothing is left to deliver it from, so a
	// Receive that only looks (its context already over) tells; a delivery
	// that came later would reach serveLocal below, whose answer would fail.
	p := startSend(t, addr, "victim", "one", 0)
	waitFor(t, 5*time.Second, "the request to be posted", func() bool { return rlaneStates(e)[lanePosted] == 1 })
	p.kill()
	lanesGone()
	over, cancel := context.WithCancel(ctx)
	cancel()
	req, _, err := e.Receive(over)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive after a posted sender died: %v, %v; want nothing waiting", req, err)
	}

	// The receiver goes on serving others.
	stop := serveLocal(t, e, 0)
	q := startSend(t, addr, "alive", "loop", 300)
	q.Expect("ok", 30*time.Second)
	if err := q.Wait(10 * time.Second); err != nil {
		t.Fatalf("sender after the dead ones: %v", err)
	}
	lanesGone()
	if res := stop(); len(failures(res)) != 0 || res["nil"] != 300 {
		t.Fatalf("replies: %v, want 300 successes", res)
	}
}

// Senders killed at random moments of a busy exchange: the receiver's
// replies succeed or report ErrPeerGone, and no lane is left behind.
func TestDeadSenderStress(t *testing.T) {
	e, addr := listen(t, "deadstress", Options{})
	stop := serveLocal(t, e, 300*time.Microsecond)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for rep := range 5 {
		p := startSend(t, addr, "stress", "stress", 8)
		// Busy: each of the 8 goroutines has a lane (one or more, as
		// its sizes need) and sends on it.
		waitFor(t, 10*time.Second, "the stress sender's lanes", func() bool { return laneCount(e) >= 8 })
		// Then a kill at a random moment of the exchange: the random
		// pause is what this test varies, not a wait for a state.
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
		p.Signal(syscall.SIGKILL)
		rest, _ := io.ReadAll(p.Stdout)
		if strings.Contains(string(rest), "wrong") {
			t.Errorf("rep %d: a sender got a wrong reply: %s", rep, rest)
		}
		p.Wait(10 * time.Second)
		waitFor(t, 5*time.Second, "the dead sender's lanes to be released", func() bool { return laneCount(e) == 0 })
	}
	res := stop()
	for name := range failures(res) {
		if name != "peer-gone" {
			t.Errorf("replies failed with %v; only peer-gone is expected", res)
		}
	}
	t.Logf("replies: %v", res)
	if res["nil"] == 0 {
		t.Errorf("no request was answered")
	}
}

// 4. Cancellation.
func TestCancel(t *testing.T) {
	p := startRecv(t, "cancel", 0, holdForever)
	c := dial(t, p, Options{})

	t.Run("not-received", func(t *testing.T) {
		echo(t, c, "warm-up")
		before := counts(t, c)["recv"]
		p.command("pause")
		p.Expect("paused", 10*time.Second)
		for i := range 10 {
			c.mu.Lock()
			if len(c.free) != 1 {
				c.mu.Unlock()
				t.Fatalf("%d idle lanes, want 1", len(c.free))
			}
			l := c.free[0]
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i*3)*time.Millisecond)
			start := time.Now()
			_, err := c.Send(ctx, []byte(fmt.Sprintf("E withdrawn %d", i)), make([]byte, 64))
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send to a receiver not receiving: %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 500*time.Millisecond {
				t.Fatalf("Send returned %v after its deadline", d)
			}
			c.mu.Lock()
			reused := len(c.free) == 1 && c.free[0] == l && len(c.all) == 1 && l.w.state.Load() == laneIdle
			c.mu.Unlock()
			if !reused {
				t.Fatalf("the withdrawn lane was not put back for reuse (states %v)", laneStates(c))
			}
		}
		p.command("resume")
		echo(t, c, "after the withdrawals")
		if got := counts(t, c)["recv"]; got != before+2 {
			t.Fatalf("the receiver got %d requests, want %d: withdrawn ones must not be delivered", got-before, 2)
		}
	})

	t.Run("taken", func(t *testing.T) {
		for i := range 5 {
			id := fmt.Sprintf("w%d", i)
			ctx, cancel := context.WithCancel(testCtx(t, 30*time.Second))
			res := make(chan error, 1)
			go func() {
				_, err := c.Send(ctx, append([]byte{opWait}, id...), make([]byte, 64))
				res <- err
			}()
			p.Expect("took "+id, 10*time.Second)
			cancel()
			select {
			case err := <-res:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: Send cancelled after the receiver took it: %v, want Canceled", id, err)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s: Send did not return within 2s of its cancellation", id)
			}
			p.command("answer")
			if line := p.Expect("answered "+id, 10*time.Second); line != "answered "+id+" peer-gone" {
				t.Fatalf("receiver: %q, want its Reply to return peer-gone", line)
			}
			echo(t, c, "after "+id) // its own reply, not the abandoned one
		}
	})

	t.Run("random", func(t *testing.T) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		before := counts(t, c)
		var mu sync.Mutex
		var ok, failed int
		var wg sync.WaitGroup
		base := testCtx(t, 40*time.Second)
		for g := range 2 {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			wg.Go(func() {
				for i := range 300 {
					req := patternSeed(13+rng.IntN(300), g<<20|i)
					req[0] = opDelay
					binary.LittleEndian.PutUint32(req[1:5], uint32(rng.IntN(1500)))
					binary.LittleEndian.PutUint32(req[5:9], uint32(g))
					binary.LittleEndian.PutUint32(req[9:13], uint32(i))
					ctx, cancel := context.WithTimeout(base, time.Duration(rng.IntN(1500))*time.Microsecond)
					reply := filled(len(req) + 3)
					n, err := c.Send(ctx, req, reply)
					cancel()
					switch {
					case err == nil:
						if j := firstDiff(reply[:n], complement(req)); j >= 0 || n != len(req) {
							t.Errorf("goroutine %d, send %d: reply of %d bytes differs at byte %d", g, i, n, j)
							return
						}
						mu.Lock()
						ok++
						mu.Unlock()
					case errors.Is(err, context.DeadlineExceeded) && base.Err() == nil:
						mu.Lock()
						failed++
						mu.Unlock()
					default:
						t.Errorf("goroutine %d, send %d: %v", g, i, err)
						return
					}
					// The next Send gets its own answer, never a late one.
					f := append([]byte{opEcho}, fmt.Sprintf("follow-up %d.%d", g, i)...)
					fctx, fcancel := context.WithTimeout(base, 20*time.Second)
					reply = filled(len(f) + 3)
					n, err = c.Send(fctx, f, reply)
					fcancel()
					if err != nil || !bytes.Equal(reply[:n], complement(f)) {
						t.Errorf("follow-up %d.%d: %v, reply %q", g, i, err, reply[:n])
						return
					}
				}
			})
		}
		wg.Wait()
		after := counts(t, c)
		dok, dgone := after["dok"]-before["dok"], after["dgone"]-before["dgone"]
		t.Logf("answered %d, cancelled %d (%d after the receiver took them, %d withdrawn before)",
			ok, failed, dgone, failed-dgone)
		if dok != ok || after["dother"] != before["dother"] || dgone > failed {
			t.Fatalf("receiver: %d replies delivered, %d to senders gone, %d other; senders: %d answered, %d cancelled",
				dok, dgone, after["dother"]-before["dother"], ok, failed)
		}
		if dgone == 0 || failed == dgone {
			t.Fatalf("random timing did not exercise both cancellation paths: %d cancelled, %d of them after a take", failed, dgone)
		}
	})
}

// 5. Endpoint.Close with senders blocked, posted and taken.
func TestEndpointClose(t *testing.T) {
	e, addr := listen(t, "epclose", Options{})
	ctx := testCtx(t, 30*time.Second)
	p := startSend(t, addr, "burst", "burst", 6)
	waitFor(t, 10*time.Second, "6 requests posted", func() bool { return rlaneStates(e)[lanePosted] == 6 })
	var held []transport.Request
	for range 3 {
		req, _, err := e.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, req)
	}
	if s := rlaneStates(e); s[laneTaken] != 3 || s[lanePosted] != 3 {
		t.Fatalf("lane states %v, want 3 taken and 3 posted", s)
	}
	within(t, 5*time.Second, "Endpoint.Close", func() { e.Close() })
	for range 6 {
		line := p.ReadLine(2 * time.Second)
		if f := strings.Fields(line); len(f) != 2 || f[1] != "peer-gone" {
			t.Errorf("sender: %q, want every Send to fail with peer-gone", line)
		}
	}
	p.Expect("done", 5*time.Second)
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := e.Receive(ctx); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Receive after Close: %v, want ErrClosed", err)
	}
	if e.q.Post((&fakeReq{}).req(), 0) {
		t.Fatal("Post after Close returned true")
	}
	for _, r := range held {
		if err := r.Reply([]byte("late")); err == nil {
			t.Fatal("Reply to a request held across Close succeeded")
		}
	}
	if n := laneCount(e); n != 0 {
		t.Fatalf("%d lanes left after Close", n)
	}
	// A new sender cannot reach the closed endpoint.
	if _, err := Dial(context.Background(), addr, os.Getpid(), "late", Options{}); !errors.Is(err, transport.ErrPeerGone) {
		t.Fatalf("Dial to a closed endpoint: %v, want ErrPeerGone", err)
	}
}

func TestReceiveUnblockedByClose(t *testing.T) {
	for _, noSpin := range []bool{false, true} {
		e, _ := listen(t, "recvclose"+strconv.FormatBool(noSpin), Options{NoSpin: noSpin})
		ctx := testCtx(t, 30*time.Second)
		// A Receive whose context ends returns promptly.
		short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		start := time.Now()
		_, _, err := e.Receive(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
			t.Fatalf("Receive with a 30ms deadline: %v after %v", err, time.Since(start))
		}
		// Two blocked Receives: one waiting for a request, one waiting its
		// turn.
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, _, err := e.Receive(ctx)
				errs <- err
			}()
		}
		proctest.WaitParked(t, 5*time.Second, "transport.(*Queue).Receive", 2)
		within(t, 5*time.Second, "Endpoint.Close", func() { e.Close() })
		for range 2 {
			select {
			case err := <-errs:
				if !errors.Is(err, transport.ErrClosed) {
					t.Fatalf("blocked Receive after Close: %v, want ErrClosed", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("a blocked Receive did not return within 2s of Close")
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConnClose(t *testing.T) {
	p := startRecv(t, "connclose", 0, 1)
	c := dial(t, p, Options{})
	ctx := testCtx(t, 30*time.Second)
	errs := make(chan error, 2)
	go func() {
		_, err := c.Send(ctx, []byte{opHold, 'a'}, make([]byte, 8))
		errs <- err
	}()
	p.Expect("held 1", 10*time.Second)
	p.Expect("paused", 10*time.Second)
	go func() {
		_, err := c.Send(ctx, []byte{opHold, 'b'}, make([]byte, 8))
		errs <- err
	}()
	waitFor(t, 10*time.Second, "one request taken and one posted", func() bool {
		s := laneStates(c)
		return s[laneTaken] == 1 && s[lanePosted] == 1
	})
	within(t, 5*time.Second, "Conn.Close", func() { c.Close() })
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("Send blocked across Conn.Close: %v, want ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a blocked Send did not return within 2s of Conn.Close")
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Send(ctx, []byte("E"), nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	c.mu.Lock()
	left, bell := len(c.all), c.bellMap
	c.mu.Unlock()
	if left != 0 || bell != nil {
		t.Fatalf("after Close: %d lanes, bell mapped: %v", left, bell != nil)
	}
	// The receiver's view: the taken request's sender is gone, the posted
	// one was withdrawn and is never delivered.
	p.command("release")
	if line := p.Expect("released", 10*time.Second); line != "released peer-gone" {
		t.Fatalf("receiver: %q, want its Reply to the abandoned request to return peer-gone", line)
	}
	p.command("resume")
	c2 := dial(t, p, Options{})
	echo(t, c2, "after Close")
	if m := counts(t, c2); m["recv"] != 3 {
		t.Fatalf("the receiver got %d requests, want 3 (held, echo, count)", m["recv"])
	}
}

// 7. Fairness: 16 goroutines share one Conn; the receiver numbers the
// requests in the order it serves them. Between the point where every
// goroutine has been served once and the point where the first one is
// done, all of them were competing, so each must have been served a fair
// share of that stretch of the serving order. Counting in serving order
// rather than wall time keeps the check steady on a loaded machine. With
// a fast receiver the senders' own scheduling decides who gets to post;
// with a slow one (20us of work per request) every sender is nearly always
// posted and the receiver's rotation over lanes decides.
func TestFairness(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   byte
	}{{"fast-receiver", opFair}, {"slow-receiver", opFairSlow}} {
		t.Run(tc.name, func(t *testing.T) {
			// Which goroutine the Go scheduler runs next is not ours to
			// decide, and on a shared 2-core machine one round in some
			// dozens comes out lopsided; starvation the transport causes
			// shows in every round. So: the best of three rounds.
			var got []string
			for range 3 {
				lo, hi, stretch := fairnessRound(t, tc.op)
				if t.Failed() {
					return
				}
				if 2*lo >= hi {
					return
				}
				got = append(got, fmt.Sprintf("served %s: slowest %d, fastest %d", stretch, lo, hi))
			}
			t.Fatalf("goroutines of one sending process starve each other: in the stretch "+
				"where all competed, in each of 3 rounds, the slowest got less than half the fastest's round trips: %s", strings.Join(got, "; "))
		})
	}
}

// fairnessRound runs 16 goroutines sending through one Conn and returns
// the fewest and the most round trips a goroutine got in the stretch of
// the serving order where all of them competed.
func fairnessRound(t *testing.T, op byte) (lo, hi int, stretch string) {
	const goroutines, perG = 16, 2000
	p := startRecv(t, "fair", 0, holdForever)
	// Spinning off, as the fairness target is stated: a spinning sender
	// and a spinning receiver occupy both CPUs of a small machine, and a
	// first goroutine can then finish all its round trips (a few
	// milliseconds) before the kernel runs the thread that would start the
	// others: unfair to them, but the kernel's doing, not the transport's.
	c := dial(t, p, Options{NoSpin: true})
	ctx := testCtx(t, 60*time.Second)
	served := make([][]uint32, goroutines)
	var wg, warm sync.WaitGroup
	begin := make(chan struct{})
	warm.Add(goroutines)
	for g := range goroutines {
		wg.Go(func() {
			reply := make([]byte, 64)
			// A first exchange sets up this goroutine's lane; then all
			// start together.
			_, err := c.Send(ctx, []byte{opEcho, byte(g)}, reply)
			warm.Done()
			if err != nil {
				t.Errorf("goroutine %d, warm-up: %v", g, err)
				return
			}
			<-begin
			for i := range perG {
				req := patternSeed(9+(i*7+g)%40, g*perG+i)
				req[0] = op
				binary.LittleEndian.PutUint32(req[1:5], uint32(g))
				binary.LittleEndian.PutUint32(req[5:9], uint32(i))
				n, err := c.Send(ctx, req, reply)
				if err != nil {
					t.Errorf("goroutine %d, send %d: %v", g, i, err)
					return
				}
				if n != 4+len(req) || !bytes.Equal(reply[4:n], complement(req)) {
					t.Errorf("goroutine %d, send %d: the reply is not this request's", g, i)
					return
				}
				served[g] = append(served[g], binary.LittleEndian.Uint32(reply))
			}
		})
	}
	warm.Wait()
	start := time.Now()
	close(begin)
	wg.Wait()
	if t.Failed() {
		return 0, 0, ""
	}
	elapsed := time.Since(start)
	// The stretch of the serving order in which all goroutines competed.
	from, to := uint32(0), uint32(goroutines*perG)
	for _, s := range served {
		from, to = max(from, s[0]), min(to, s[len(s)-1])
	}
	lo, hi = perG, 0
	for _, s := range served {
		k := 0
		for _, idx := range s {
			if from <= idx && idx <= to {
				k++
			}
		}
		lo, hi = min(lo, k), max(hi, k)
	}
	t.Logf("%d round trips in %v; served %d..%d: per goroutine %d..%d", goroutines*perG, elapsed, from, to, lo, hi)
	if to <= from {
		lo = 0 // some goroutine finished before another began
	}
	return lo, hi, fmt.Sprintf("%d..%d", from, to)
}

// 8. Requests posted by other transports are served along with lanes.
type fakeReq struct {
	id      int
	mu      sync.Mutex
	reply   []byte
	answers int
	aborted bool
}

func (f *fakeReq) Data(uint64) []byte                 { return []byte(fmt.Sprintf("fake %d", f.id)) }
func (f *fakeReq) Sender(uint64) (string, int)        { return "fake", 1 }
func (f *fakeReq) Cred(uint64) (transport.Cred, bool) { return transport.Cred{}, false }
func (f *fakeReq) MaxReply(uint64) int                { return 64 }
func (f *fakeReq) ReplyBuffer(uint64) []byte          { return nil }
func (f *fakeReq) Relay(uint64, transport.Conn) error { return transport.ErrNotSupported }
func (f *fakeReq) Reply(_ uint64, b []byte) error     { return f.answer(b, false) }
func (f *fakeReq) ReplyInPlace(uint64, int) error     { return transport.ErrNotSupported }
func (f *fakeReq) ReplyError(uint64) error            { return f.answer(nil, false) }
func (f *fakeReq) Abort(uint64)                       { f.answer(nil, true) }
func (f *fakeReq) Claim(id uint64) (uint64, bool)     { return id, true }
func (f *fakeReq) req() transport.Request             { return transport.NewRequest(f, 0) }

func (f *fakeReq) answer(b []byte, abort bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers++
	if f.answers > 1 {
		return transport.ErrReplied
	}
	f.reply, f.aborted = append([]byte(nil), b...), abort
	return nil
}

func TestPost(t *testing.T) {
	const n = 8
	e, addr := listen(t, "post", Options{})
	ctx := testCtx(t, 30*time.Second)
	p := startSend(t, addr, "burst", "burst", n)
	waitFor(t, 10*time.Second, "8 requests posted", func() bool { return rlaneStates(e)[lanePosted] == n })
	fakes := make([]*fakeReq, n)
	for i := range fakes {
		fakes[i] = &fakeReq{id: i}
		if !e.q.Post(fakes[i].req(), 0) {
			t.Fatal("Post returned false")
		}
	}
	var got []transport.Request
	var kinds []byte
	for range 2 * n {
		req, proxy, err := e.Receive(ctx)
		if err != nil || proxy != 0 {
			t.Fatalf("Receive: %v, proxy %d", err, proxy)
		}
		got = append(got, req)
		h, _ := req.Handle()
		switch r := h.(type) {
		case *fakeReq:
			kinds = append(kinds, 'P')
			if r != fakes[strings.Count(string(kinds), "P")-1] {
				t.Fatalf("posted requests out of order")
			}
		case *rlane:
			kinds = append(kinds, 'L')
		default:
			t.Fatalf("Receive returned a %T", req)
		}
	}
	for i := 1; i < len(kinds); i++ {
		if kinds[i] == kinds[i-1] {
			t.Fatalf("Receive order %s: posted requests and lanes must alternate while both wait", kinds)
		}
	}
	for _, req := range got {
		if err := req.Reply(complement(req.Data())); err != nil {
			t.Fatalf("Reply: %v", err)
		}
	}
	for range n {
		if line := p.ReadLine(5 * time.Second); !strings.HasSuffix(line, " ok") {
			t.Fatalf("sender: %q", line)
		}
	}
	for _, f := range fakes {
		if f.answers != 1 || f.aborted || !bytes.Equal(f.reply, complement(f.Data(0))) {
			t.Fatalf("fake %d: %d answers, aborted %v, reply %q", f.id, f.answers, f.aborted, f.reply)
		}
	}
	// A proxy.
	if !e.q.Post(transport.Request{}, 42) {
		t.Fatal("Post of a proxy returned false")
	}
	if req, proxy, err := e.Receive(ctx); err != nil || req.Valid() || proxy != 42 {
		t.Fatalf("Receive of a proxy: %v, %d, %v", req, proxy, err)
	}
	// Queued at Close: aborted; after Close: refused.
	queued := []*fakeReq{{id: 100}, {id: 101}}
	for _, f := range queued {
		e.q.Post(f.req(), 0)
	}
	e.q.Post(transport.Request{}, 5)
	within(t, 5*time.Second, "Endpoint.Close", func() { e.Close() })
	for _, f := range queued {
		if f.answers != 1 || !f.aborted {
			t.Fatalf("fake %d queued at Close: %d answers, aborted %v; want aborted", f.id, f.answers, f.aborted)
		}
	}
	late := &fakeReq{id: 200}
	if e.q.Post(late.req(), 0) || late.answers != 0 {
		t.Fatalf("Post after Close: accepted, or answered (%d)", late.answers)
	}
}

// A Post blocked on a full queue returns false at Close, and every queued
// request is aborted.
func TestPostFullQueue(t *testing.T) {
	e, _ := listen(t, "postfull", Options{})
	var fakes []*fakeReq
	for i := range transport.QueueDepth {
		f := &fakeReq{id: i}
		fakes = append(fakes, f)
		if !e.q.Post(f.req(), 0) {
			t.Fatalf("Post %d returned false", i)
		}
	}
	res := make(chan bool, 1)
	blocked := &fakeReq{id: -1}
	go func() { res <- e.q.Post(blocked.req(), 0) }()
	waitFor(t, 5*time.Second, "the Post on a full queue to block", func() bool {
		select {
		case <-res:
			t.Fatal("Post on a full queue did not block")
		default:
		}
		return proctest.Parked("transport.(*Queue).Post") == 1
	})
	within(t, 5*time.Second, "Endpoint.Close", func() { e.Close() })
	select {
	case ok := <-res:
		if ok || blocked.answers != 0 {
			t.Fatalf("blocked Post: %v, %d answers; want false and no answer (its caller fails it)", ok, blocked.answers)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a blocked Post did not return within 2s of Close")
	}
	for _, f := range fakes {
		if !f.aborted {
			t.Fatalf("queued request %d was not aborted at Close", f.id)
		}
	}
}
