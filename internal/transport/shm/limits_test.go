//go:build !race

package shm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// roleGrab ADDR PID: dial the receiver at ADDR (process PID) and reserve
// lanes (Buffers, each within 1 s) until one is not had, or 5000 of them;
// print "grabbed N ERRNAME". Then dial the receiver again, a Conn holding
// no lane: "second ERRNAME LIMIT" (LIMIT from a LaneLimitError, else -1).
// Then, holding them, a Send with a 300 ms deadline on the first Conn
// ("wait ERRNAME": it should wait for one of its own lanes), and a Send
// after one Buffer is closed ("after ERRNAME"). It holds the rest until its
// stdin closes.
func roleGrab(args []string) error {
	pid, _ := strconv.Atoi(args[1])
	c, err := Dial(context.Background(), args[0], pid, "grabber", Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	commands()
	say("ready")
	var bufs []transport.Buffer
	var gerr error
	for len(bufs) < 5000 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b, err := c.Buffer(ctx, 64)
		cancel()
		if err != nil {
			gerr = err
			break
		}
		bufs = append(bufs, b)
	}
	say("grabbed %d %s", len(bufs), errName(gerr))
	c2, err := Dial(context.Background(), args[0], pid, "grabber", Options{})
	limit := -1
	var le *transport.LaneLimitError
	if errors.As(err, &le) {
		limit = le.Limit
	}
	if err == nil {
		c2.Close()
	}
	say("second %s %d", errName(err), limit)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = c.Send(ctx, []byte("E wait"), make([]byte, 8))
	cancel()
	say("wait %s", errName(err))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply := make([]byte, 8)
		n, err := c.Send(ctx, []byte("after"), reply)
		if err == nil && string(reply[:n]) != string(complement([]byte("after"))) {
			err = fmt.Errorf("wrong reply %q", reply[:n])
		}
		done <- err
	}()
	if len(bufs) > 0 {
		bufs[0].Close()
		bufs = bufs[1:]
	}
	say("after %s", errName(<-done))
	select {}
}

// One process takes lanes until the receiver refuses: it is held at the
// per-process limit, where a Conn holding lanes waits for one of them
// (its Buffer or Send ends with its context, and a Send goes through once
// one is freed) and a Conn holding none fails with ErrTooManyLanes carrying
// that limit (not ErrTooLarge); another process's Send still gets a lane
// (issue 16, item 6). Before, the grabber took all 4096 lanes (8192
// descriptors here) and was told "message too large".
func TestLaneGrab(t *testing.T) {
	e, addr := listen(t, "grabbed", Options{})
	stop := serveLocal(t, e, 0)
	before := openFDs(t)
	g := startHelper(t, "grab", addr, strconv.Itoa(os.Getpid()))
	if got, want := g.Expect("grabbed", 2*time.Minute), fmt.Sprintf("grabbed %d deadline", DefaultLanesPerProcess); got != want {
		t.Fatalf("lane grab: %q, want %q (a Conn holding lanes waits for one)", got, want)
	}
	if got, want := g.Expect("second", time.Minute), fmt.Sprintf("second too-many-lanes %d", DefaultLanesPerProcess); got != want {
		t.Fatalf("another Conn of the grabber: %q, want %q", got, want)
	}
	if n := laneCount(e); n > DefaultLanesPerProcess {
		t.Errorf("receiver holds %d lanes of one process, limit %d", n, DefaultLanesPerProcess)
	}
	// Each lane is a socket and a nudge pipe's write end here.
	if held := openFDs(t) - before; held > 2*DefaultLanesPerProcess+8 {
		t.Errorf("the grabber holds %d descriptors in the receiver, want at most %d", held, 2*DefaultLanesPerProcess+8)
	}
	// Another process (this one) still gets a lane and an answer.
	c, err := Dial(testCtx(t, 20*time.Second), addr, os.Getpid(), "other", Options{})
	if err != nil {
		t.Fatalf("Dial from another process during the grab: %v", err)
	}
	defer c.Close()
	echo(t, c, "not starved")
	if got := g.Expect("wait", 20*time.Second); got != "wait deadline" {
		t.Errorf("a Send of the grabber holding all its lanes: %q, want it to wait (deadline)", got)
	}
	if got := g.Expect("after", 20*time.Second); got != "after nil" {
		t.Errorf("a Send of the grabber after it closed a Buffer: %q, want nil", got)
	}
	echo(t, c, "still not starved")
	g.kill()
	waitFor(t, 10*time.Second, "the grabber's lanes to go", func() bool { return laneCount(e) <= 1 })
	stop()
}

// procState is the state letter of process pid in /proc/PID/stat.
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return f[0]
}

// A receiver stopped (SIGSTOP) for longer than the handshake's bound is
// not reported gone (issue 16, item 6): Dial says it is unreachable on
// this transport (Locate then takes the FIFO transport, whose Sends wait
// for it), and Sends on a Conn it has already, even one that needs a new
// lane, wait for it and complete once it continues. A receiver that dies
// while a Dial waits is reported gone at once. Before, both the Dial and
// the Send needing a lane failed with ErrPeerGone after 2 s.
func TestStoppedReceiver(t *testing.T) {
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = 500 * time.Millisecond
	p := startRecv(t, "stopped", 0, holdForever)
	c := dial(t, p, Options{}) // one lane, before the stop
	stop := func() {
		p.Signal(syscall.SIGSTOP)
		waitFor(t, 10*time.Second, "the receiver to stop", func() bool { return procState(t, p.PID()) == "T" })
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()

	stop()
	d0 := time.Now()
	c2, err := Dial(ctx, p.addr, p.PID(), "patient", Options{})
	if err == nil {
		c2.Close()
		t.Fatal("Dial to a stopped receiver succeeded")
	}
	if errors.Is(err, transport.ErrPeerGone) || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Dial to a stopped receiver: %v, want ErrUnreachable, not ErrPeerGone", err)
	}
	if d := time.Since(d0); d < handshakeTimeout || d > handshakeTimeout+5*time.Second {
		t.Errorf("Dial to a stopped receiver gave up after %v, want about %v", d, handshakeTimeout)
	}

	// Two Sends at once on the Conn: the second needs a lane of its own.
	res := make(chan error, 2)
	for i := range 2 {
		go func() {
			req := []byte{opEcho, byte('a' + i)}
			reply := make([]byte, 8)
			n, err := c.Send(ctx, req, reply)
			if err == nil && string(reply[:n]) != string(complement(req)) {
				err = fmt.Errorf("wrong reply %q", reply[:n])
			}
			res <- err
		}()
	}
	// The condition under test is time: longer than the handshake's bound.
	select {
	case err := <-res:
		t.Fatalf("a Send to a stopped receiver returned %v while it was stopped", err)
	case <-time.After(handshakeTimeout + 500*time.Millisecond):
	}
	p.Signal(syscall.SIGCONT)
	for range 2 {
		select {
		case err := <-res:
			if err != nil {
				t.Fatalf("a Send after SIGCONT: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("the Sends did not complete within 20s of SIGCONT")
		}
	}

	// Stopped again, and killed while a Dial waits: gone, promptly.
	handshakeTimeout = time.Minute
	stop()
	dead := make(chan error, 1)
	go func() {
		c3, err := Dial(ctx, p.addr, p.PID(), "late", Options{})
		if err == nil {
			c3.Close()
		}
		dead <- err
	}()
	select {
	case err := <-dead:
		t.Fatalf("Dial to a stopped receiver returned %v at once", err)
	case <-time.After(200 * time.Millisecond):
	}
	p.kill()
	select {
	case err := <-dead:
		if !errors.Is(err, transport.ErrPeerGone) {
			t.Fatalf("Dial to a receiver killed while stopped: %v, want ErrPeerGone", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("Dial to a receiver killed while stopped did not return within 2s")
	}
}

// Close ends a Send waiting for a new lane's handshake with a stopped
// receiver (ErrClosed, at once), as it ends Sends waiting on a lane:
// before, such a Send without a deadline waited until the receiver
// continued or died.
func TestConnCloseEndsHandshake(t *testing.T) {
	p := startRecv(t, "stoppedclose", 0, holdForever)
	c := dial(t, p, Options{}) // one lane, before the stop
	p.Signal(syscall.SIGSTOP)
	defer p.Signal(syscall.SIGCONT)
	waitFor(t, 10*time.Second, "the receiver to stop", func() bool { return procState(t, p.PID()) == "T" })
	res := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := c.Send(context.Background(), []byte{opEcho, byte('a' + i)}, make([]byte, 8))
			res <- err
		}()
	}
	waitFor(t, 10*time.Second, "a Send in a new lane's handshake", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.shakes) == 1
	})
	within(t, 5*time.Second, "Conn.Close", func() { c.Close() })
	for range 2 {
		select {
		case err := <-res:
			if !errors.Is(err, transport.ErrClosed) {
				t.Errorf("a Send to a stopped receiver across Conn.Close: %v, want ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a Send to a stopped receiver did not return within 2s of Conn.Close")
		}
	}
}

// Close cuts short a handshake waiting for a sender's hello, and returns
// only once that connection is closed (its goroutine done): before, the
// goroutine waited on for up to helloTimeout after Close, holding the
// connection.
func TestEndpointCloseEndsHandshake(t *testing.T) {
	e, addr := listen(t, "hsclose", Options{})
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, 10*time.Second, "the handshake to start", func() bool {
		e.hsMu.Lock()
		defer e.hsMu.Unlock()
		return e.hsAll == 1
	})
	within(t, 10*time.Second, "Endpoint.Close", func() { e.Close() })
	if closed, err := sys.PeerClosed(c); !closed || err != nil {
		t.Errorf("a handshake's connection after Close returned: closed %v (%v), want closed", closed, err)
	}
}

// A lane carries at most MaxLaneData. A reply buffer larger than that
// takes what a lane holds and the Send works; a request larger than that
// (a MaxMessage that allows it), or a Buffer, is a SizeError with the
// sizes. Before, the sender made a lane larger than any receiver takes
// and the Send failed as a corrupt message (helper-55).
func TestLaneCeiling(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("buffers of 256 MiB and more in a 32-bit address space")
	}
	e, addr := listen(t, "CEILING", Options{})
	stop := serveLocal(t, e, 0)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, os.Getpid(), "tester", Options{MaxMessage: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply := make([]byte, MaxLaneData+1<<20) // untouched: no memory until written
	if n, err := c.Send(ctx, []byte("Ehi"), reply); err != nil || n != 3 {
		t.Errorf("a 3-byte Send with a reply buffer of %d MiB: %d bytes, %v", len(reply)>>20, n, err)
	}
	limit := MaxLaneData - transport.MaxOrigin
	var se *transport.SizeError
	_, err = c.Send(ctx, make([]byte, limit+1), make([]byte, 8))
	if !errors.Is(err, transport.ErrTooLarge) || !errors.As(err, &se) || se.Size != limit+1 || se.Limit != limit {
		t.Errorf("a Send of %d bytes: %v, want a SizeError of ErrTooLarge, limit %d", limit+1, err, limit)
	}
	if _, err := c.Buffer(ctx, limit+1); !errors.Is(err, transport.ErrTooLarge) || !errors.As(err, &se) || se.Limit != limit {
		t.Errorf("a Buffer of %d bytes: %v, want a SizeError of ErrTooLarge, limit %d", limit+1, err, limit)
	}
}
