package fifo_test

// Interoperability with C SIMPL, byte for byte: testdata/cpeer.c is a small
// C peer written from the wire description (shared/spec/simpl-local-wire.md),
// compiled with the system C compiler and run as real processes against
// this package, in both directions and through a Go relay.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/transport/fifo"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

const (
	interopTimeout = 60 * time.Second // one subtest, start to end
	lineTimeout    = 20 * time.Second // one line from a C peer
	tail           = 16               // the reply rule's fixed suffix
)

var interopSizes = []int{0, 1, 64, 64 << 10, 1 << 20}

// TestInterop builds the C peer once and runs every interoperability case
// against it.
func TestInterop(t *testing.T) {
	bin := buildCPeer(t)
	t.Run("GoSenderCReceiver", func(t *testing.T) { testGoSenderCReceiver(t, bin) })
	t.Run("CSenderGoReceiver", func(t *testing.T) { testCSenderGoReceiver(t, bin) })
	t.Run("GoRelaysBetweenCPeers", func(t *testing.T) { testGoRelay(t, bin) })
}

// buildCPeer compiles testdata/cpeer.c into the test's temporary directory,
// or skips the test when there is no C compiler.
func buildCPeer(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) on PATH: the C SIMPL interoperability tests need one (.ci/run installs gcc)")
	}
	bin := filepath.Join(t.TempDir(), "cpeer")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cc, "-O1", "-Wall", "-Werror", "-o", bin, filepath.Join("testdata", "cpeer.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("compile testdata/cpeer.c: %v\n%s", err, out)
	}
	return bin
}

// startCPeer runs the C peer with FIFO_PATH=dir and waits for "ready". It
// is killed when the test ends if still running.
func startCPeer(t *testing.T, bin, dir string, args ...string) *proctest.Proc {
	t.Helper()
	// Runs after the kill below: a C peer killed because the test failed
	// leaves its FIFOs, which would only add noise to the failure. (Reap
	// never touches a live process's FIFOs, so Go-side leaks still show.)
	t.Cleanup(func() {
		if reg, err := naming.Open(dir); err == nil && t.Failed() {
			reg.Reap("")
		}
	})
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir)
	p := proctest.StartCmd(t, cmd)
	p.Expect("ready", lineTimeout)
	return p
}

// runCPeer runs the C peer to completion (bounded) and returns its pid.
func runCPeer(t *testing.T, bin, dir string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lineTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpeer %v: %v\n%s", args, err, out)
	}
	return cmd.Process.Pid
}

func attachIn(t *testing.T, dir, name string) *fifo.Endpoint {
	t.Helper()
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := fifo.Attach(name, fifo.Options{Registry: reg, ThreadReceive: os.Getenv(fifo.ThreadRxEnv) == "1"})
	if err != nil {
		t.Fatalf("attach %q: %v", name, err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func locateIn(t *testing.T, ep *fifo.Endpoint, name string) *fifo.Conn {
	t.Helper()
	c, err := ep.Locate(name)
	if err != nil {
		t.Fatalf("locate %q from %q: %v", name, ep.Name(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pattern is cpeer.c's pat(): byte i of an n-byte message is i*7+n.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// ruleReply is the reply both sides give to a request that is neither "X"
// nor "B": every byte +1, then 0xA0..0xAF.
func ruleReply(req []byte) []byte {
	out := make([]byte, 0, len(req)+tail)
	for _, c := range req {
		out = append(out, c+1)
	}
	for j := range tail {
		out = append(out, byte(0xA0+j))
	}
	return out
}

// answer is the reply rule on the Go side.
func answer(req transport.Request) error {
	if d := req.Data(); len(d) == 1 && d[0] == 'X' {
		return req.ReplyError()
	}
	return req.Reply(ruleReply(req.Data()))
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

// cMsg is one "msg WHOM PID NBYTES YBYTES SHMSIZE FNV" line of cpeer recv:
// the header and data as the C receiver read them from the segment.
type cMsg struct {
	whom                     string
	pid, nbytes, ybytes, shm int
	sum                      uint32
}

func readMsg(t *testing.T, p *proctest.Proc) cMsg {
	t.Helper()
	line := p.ReadLine(lineTimeout)
	var m cMsg
	if _, err := fmt.Sscanf(line, "msg %s %d %d %d %d %x", &m.whom, &m.pid, &m.nbytes, &m.ybytes, &m.shm, &m.sum); err != nil {
		t.Fatalf("C receiver printed %q, want a msg line (%v); stderr: %s", line, err, p.Stderr())
	}
	return m
}

// wantMsg reads one msg line and checks it describes req sent by whom/pid
// with a reply buffer of ybytes.
func wantMsg(t *testing.T, p *proctest.Proc, whom string, pid int, req []byte, ybytes int) {
	t.Helper()
	want := cMsg{whom, pid, len(req), ybytes, max(len(req), ybytes), fnv32a(req)}
	if got := readMsg(t, p); got != want {
		t.Errorf("C receiver saw %+v, want %+v", got, want)
	}
}

// Go Conn.Send / Trigger → C receiver: every size, reply too large by the C
// SIMPL rule and out of spec, ReplyError, concurrent sender identities and
// proxies.
func testGoSenderCReceiver(t *testing.T, bin string) {
	dir := proctest.Dir(t)
	const concurrent = 4
	proxies := []int{1, 42, 0x7FFFFFFF}
	count := len(interopSizes) + 1 /* wider buffer */ + 1 /* too large */ + 1 /* X */ + 2 /* B, then normal */ + concurrent + len(proxies)
	c := startCPeer(t, bin, dir, "recv", "SRV", strconv.Itoa(count))
	ep := attachIn(t, dir, "CLI")
	conn := locateIn(t, ep, "SRV")
	if conn.PID() != c.PID() {
		t.Fatalf("located pid %d, C receiver is %d", conn.PID(), c.PID())
	}
	ctx := proctest.Context(t, interopTimeout)
	me := os.Getpid()

	// A receiver that dies fails the Send (ErrPeerGone); one that hangs
	// would leave it waiting, so each Send has its own deadline.
	send := func(req []byte, ybytes int) ([]byte, error) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, lineTimeout)
		defer cancel()
		reply := make([]byte, ybytes)
		n, err := conn.Send(sctx, req, reply)
		if sctx.Err() != nil {
			t.Fatalf("send %d bytes: no reply within %v (%v); C stderr: %s", len(req), lineTimeout, err, c.Stderr())
		}
		return reply[:n], err
	}

	for _, n := range interopSizes {
		req := pattern(n)
		got, err := send(req, n+tail)
		if err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		if want := ruleReply(req); string(got) != string(want) {
			t.Errorf("send %d bytes: reply of %d bytes differs from the expected %d", n, len(got), len(want))
		}
		wantMsg(t, c, "CLI", me, req, n+tail)
	}

	// A reply buffer larger than the reply.
	req := pattern(300)
	if got, err := send(req, 1000); err != nil || string(got) != string(ruleReply(req)) {
		t.Errorf("300 bytes into a 1000-byte buffer: %d bytes, %v", len(got), err)
	}
	wantMsg(t, c, "CLI", me, req, 1000)

	// One byte short: a C receiver answers -1 and leaves nbytes alone, which
	// the wire cannot tell from ReplyError, so it is ErrRejected.
	req = pattern(100)
	if _, err := send(req, 100+tail-1); !errors.Is(err, transport.ErrRejected) {
		t.Errorf("reply one byte too large for the buffer: %v, want ErrRejected", err)
	}
	wantMsg(t, c, "CLI", me, req, 100+tail-1)

	if _, err := send([]byte("X"), 64); !errors.Is(err, transport.ErrRejected) {
		t.Errorf("C ReplyError: %v, want ErrRejected", err)
	}
	wantMsg(t, c, "CLI", me, []byte("X"), 64)

	// A receiver that ignores ybytes and answers 0 with 17 bytes: the Go
	// sender refuses to copy past its 8-byte buffer.
	if _, err := send([]byte("B"), 8); !errors.Is(err, transport.ErrReplyTooLarge) {
		t.Errorf("17-byte reply into 8 bytes with doorbell 0: %v, want ErrReplyTooLarge", err)
	}
	wantMsg(t, c, "CLI", me, []byte("B"), 8)
	req = pattern(10)
	if got, err := send(req, 10+tail); err != nil || string(got) != string(ruleReply(req)) {
		t.Errorf("send after the out-of-spec reply: %d bytes, %v", len(got), err)
	}
	wantMsg(t, c, "CLI", me, req, 10+tail)

	// Concurrent Sends go out under auxiliary identities (CLI#k); the C
	// receiver answers each through its own reply FIFO.
	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	reqs := map[uint32]bool{}
	for g := range concurrent {
		req := pattern(1000 + g)
		reqs[fnv32a(req)] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply := make([]byte, len(req)+tail)
			n, err := conn.Send(ctx, req, reply)
			switch {
			case err != nil:
				errs <- fmt.Errorf("concurrent send %d: %w", g, err)
			case string(reply[:n]) != string(ruleReply(req)):
				errs <- fmt.Errorf("concurrent send %d: wrong reply", g)
			}
		}()
	}
	// (A slot goes back to the pool after its reply, so an identity may
	// serve more than one of these Sends.)
	aux := regexp.MustCompile(`^CLI(#[1-9][0-9]*)?$`)
	for range concurrent {
		m := readMsg(t, c)
		if !aux.MatchString(m.whom) || m.pid != me || !reqs[m.sum] {
			t.Errorf("concurrent send: C receiver saw %+v", m)
		}
		delete(reqs, m.sum)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	for _, p := range proxies {
		if err := conn.Trigger(p); err != nil {
			t.Fatalf("Trigger(%d): %v", p, err)
		}
		if got, want := c.ReadLine(lineTimeout), fmt.Sprintf("proxy %d", p); got != want {
			t.Errorf("C receiver printed %q, want %q", got, want)
		}
	}

	if err := c.Wait(lineTimeout); err != nil {
		t.Errorf("C receiver: %v", err)
	}
	conn.Close()
	ep.Close()
	proctest.CheckNoSegments(t, c.PID())
}

// cpeer send ARG → Go receiver: every size, MaxReply, Sender, ReplyError,
// a reply too large for the C sender's buffer, and C triggers.
func testCSenderGoReceiver(t *testing.T, bin string) {
	dir := proctest.Dir(t)
	ep := attachIn(t, dir, "SRV")
	ctx := proctest.Context(t, interopTimeout)
	var args []string
	for _, n := range interopSizes {
		args = append(args, strconv.Itoa(n))
	}
	args = append(args, "X", "9:24", "100:200")
	c := startCPeer(t, bin, dir, append([]string{"send", "CLI", "SRV"}, args...)...)

	for _, arg := range args {
		req, proxy, err := ep.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %q from the C sender: %v; C stderr: %s", arg, err, c.Stderr())
		}
		if !req.Valid() {
			t.Fatalf("receive %q: got proxy %d", arg, proxy)
		}
		size, ybytes := argSizes(arg)
		want := pattern(size)
		if arg == "X" {
			want = []byte("X")
		}
		if whom, pid := req.Sender(); whom != "CLI" || pid != c.PID() {
			t.Errorf("%s: Sender() = %q, %d; want CLI, %d", arg, whom, pid, c.PID())
		}
		if string(req.Data()) != string(want) {
			t.Errorf("%s: %d bytes received, contents differ from the C pattern", arg, len(req.Data()))
		}
		if req.MaxReply() != ybytes {
			t.Errorf("%s: MaxReply() = %d, want %d", arg, req.MaxReply(), ybytes)
		}
		err = answer(req)
		switch {
		case arg == "9:24":
			if !errors.Is(err, transport.ErrReplyTooLarge) {
				t.Errorf("25-byte reply to a 24-byte C buffer: Reply = %v, want ErrReplyTooLarge", err)
			}
		case err != nil:
			t.Errorf("%s: answer: %v", arg, err)
		}
	}
	for _, arg := range args {
		want := fmt.Sprintf("ok %s %d", arg, sizeOf(arg)+tail)
		if arg == "X" || arg == "9:24" {
			want = fmt.Sprintf("err %s -1", arg)
		}
		if got := c.ReadLine(lineTimeout); got != want {
			t.Errorf("C sender printed %q, want %q; stderr: %s", got, want, c.Stderr())
		}
	}
	if err := c.Wait(lineTimeout); err != nil {
		t.Errorf("C sender: %v", err)
	}

	for _, p := range []int{7, 1, 0x7FFFFFFF} {
		runCPeer(t, bin, dir, "trigger", "TRIG", "SRV", strconv.Itoa(p))
		req, proxy, err := ep.Receive(ctx)
		if err != nil || req.Valid() || proxy != p {
			t.Errorf("C Trigger(%d): Receive = %v, proxy %d, %v", p, req, proxy, err)
		}
	}
	if n := ep.Dropped(); n != 0 {
		t.Errorf("%d doorbells dropped", n)
	}
	ep.Close()
	proctest.CheckNoSegments(t, c.PID())
}

// argSizes decodes cpeer send's SIZE[:YBYTES] or X.
func argSizes(arg string) (size, ybytes int) {
	if arg == "X" {
		return 1, 1 + tail
	}
	s, y, ok := strings.Cut(arg, ":")
	size, _ = strconv.Atoi(s)
	ybytes = size + tail
	if ok {
		ybytes, _ = strconv.Atoi(y)
	}
	return size, ybytes
}

func sizeOf(arg string) int { s, _ := argSizes(arg); return s }

// C sender → Go relay → C receiver, which answers the C sender directly;
// then Go sender → the same Go relay → C receiver.
func testGoRelay(t *testing.T, bin string) {
	dir := proctest.Dir(t)
	var cArgs []string
	for _, n := range interopSizes {
		cArgs = append(cArgs, strconv.Itoa(n))
	}
	cArgs = append(cArgs, "X", "9:24")
	goSizes := []int{0, 64, 1 << 20}
	total := len(cArgs) + len(goSizes) + 1 // + Go "X"

	final := startCPeer(t, bin, dir, "recv", "FINAL", strconv.Itoa(total))
	mid := attachIn(t, dir, "MID")
	to := locateIn(t, mid, "FINAL")
	ctx := proctest.Context(t, interopTimeout)

	type seen struct {
		whom string
		pid  int
		n    int
	}
	relayed := make(chan []seen, 1)
	relayErr := make(chan error, 1)
	go func() {
		var got []seen
		for range total {
			req, _, err := mid.Receive(ctx)
			if err == nil && !req.Valid() {
				err = errors.New("relay got a proxy")
			}
			if err != nil {
				relayErr <- err
				return
			}
			whom, pid := req.Sender()
			got = append(got, seen{whom, pid, len(req.Data())})
			if err := req.Relay(ctx, to); err != nil {
				relayErr <- fmt.Errorf("relay: %w", err)
				return
			}
			if err := req.Reply(nil); !errors.Is(err, transport.ErrReplied) {
				relayErr <- fmt.Errorf("Reply after Relay: %v, want ErrReplied", err)
				return
			}
		}
		relayed <- got
	}()

	cli := startCPeer(t, bin, dir, append([]string{"send", "CLI", "MID"}, cArgs...)...)
	for _, arg := range cArgs {
		want := fmt.Sprintf("ok %s %d", arg, sizeOf(arg)+tail)
		if arg == "X" || arg == "9:24" {
			want = fmt.Sprintf("err %s -1", arg)
		}
		if got := cli.ReadLine(lineTimeout); got != want {
			t.Fatalf("C sender printed %q, want %q; stderr: %s; C receiver stderr: %s", got, want, cli.Stderr(), final.Stderr())
		}
	}
	if err := cli.Wait(lineTimeout); err != nil {
		t.Errorf("C sender: %v", err)
	}

	gcli := attachIn(t, dir, "GCLI")
	c := locateIn(t, gcli, "MID")
	for _, n := range goSizes {
		req := pattern(n)
		reply := make([]byte, n+tail)
		k, err := c.Send(ctx, req, reply)
		if err != nil || string(reply[:k]) != string(ruleReply(req)) {
			t.Errorf("Go send %d bytes through the relay: %d bytes, %v", n, k, err)
		}
	}
	if _, err := c.Send(ctx, []byte("X"), make([]byte, 8)); !errors.Is(err, transport.ErrRejected) {
		t.Errorf("Go send X through the relay: %v, want ErrRejected", err)
	}

	var got []seen
	select {
	case got = <-relayed:
	case err := <-relayErr:
		t.Fatalf("Go relay: %v", err)
	case <-ctx.Done():
		t.Fatalf("Go relay did not see %d messages in time", total)
	}
	for i, arg := range cArgs {
		size, ybytes := argSizes(arg)
		req := pattern(size)
		if arg == "X" {
			req = []byte("X")
		}
		if want := (seen{"CLI", cli.PID(), size}); got[i] != want {
			t.Errorf("relay saw %+v, want %+v", got[i], want)
		}
		wantMsg(t, final, "CLI", cli.PID(), req, ybytes)
	}
	for i, n := range append(goSizes, -1) {
		req, ybytes := []byte("X"), 8
		if n >= 0 {
			req, ybytes = pattern(n), n+tail
		}
		if want := (seen{"GCLI", os.Getpid(), len(req)}); got[len(cArgs)+i] != want {
			t.Errorf("relay saw %+v, want %+v", got[len(cArgs)+i], want)
		}
		wantMsg(t, final, "GCLI", os.Getpid(), req, ybytes)
	}
	if err := final.Wait(lineTimeout); err != nil {
		t.Errorf("C receiver: %v", err)
	}
	c.Close()
	gcli.Close()
	mid.Close()
	proctest.CheckNoSegments(t, cli.PID(), final.PID())
}
