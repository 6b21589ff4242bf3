//go:build !race

// The race detector cannot see the futex hand-offs in shared memory, so
// these tests are compiled out of race runs.

package shm

// Test harness: TestMain re-executes the test binary as a helper process
// playing a role (a receiver serving a small op protocol, or a sender), so
// that every exchange crosses a real process boundary.

import (
	"maps"

	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/transport/transporttest"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/transport"
)

// helperLifetime bounds a helper that its test forgot; helpers also exit
// when their stdin (a pipe from the test process) closes, and get SIGKILL
// when the test process dies.
const helperLifetime = 3 * time.Minute

func TestMain(m *testing.M) {
	roles := map[string]proctest.Role{
		"recv":      roleRecv,
		"send":      roleSend,
		"grab":      roleGrab,
		"trig":      roleTrig,
		"answerdie": roleAnswerDie,
	}
	maps.Copy(roles, transporttest.Roles(Transport{}))
	proctest.Main(m, roles, proctest.WithLifetime(helperLifetime))
}

// ---- helper side ----

var sayMu sync.Mutex

// say prints one line on the helper's stdout, which the test reads.
func say(format string, args ...any) {
	sayMu.Lock()
	defer sayMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

// commands delivers the lines the test writes on the helper's stdin; the
// helper exits when stdin closes (its test is over).
func commands() <-chan string {
	ch := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			ch <- sc.Text()
		}
		os.Exit(0)
	}()
	return ch
}

// Requests to a "recv" helper start with an op byte; an empty request gets
// an empty reply.
//
//	'E' ...        Reply with the complement of the whole request
//	'I' ...        the same, written in place through ReplyBuffer
//	'S' n(4) ...   Reply with pattern(n)
//	'J' n(4) ...   pattern(n) written in place, ReplyInPlace(n)
//	'X'            ReplyError
//	'L'            Reply with the errName of the last answer's error
//	'H' ...        hold: never answered until the "release" command
//	'W' id...      print "took ID", wait for the "answer" command, Reply
//	               with the complement, print "answered ID ERRNAME"
//	'D' us(4) ...  sleep us microseconds, Reply with the complement, count
//	               the outcome
//	'C'            Reply "recv=N dok=N dgone=N dother=N"
//	'F' ...        Reply with the served-order index (4 bytes) followed by
//	               the complement of the request
//	'G' ...        'F' after 20 microseconds of work
//
// Commands on stdin: pause (stop receiving; prints "paused" once no
// Receive is running), resume, release (answer every held request; prints
// "released ERRNAME..."), answer (see 'W').
const (
	opEcho      = 'E'
	opInPlace   = 'I'
	opSized     = 'S'
	opSizedInPl = 'J'
	opError     = 'X'
	opLast      = 'L'
	opHold      = 'H'
	opWait      = 'W'
	opDelay     = 'D'
	opCount     = 'C'
	opFair      = 'F'
	opFairSlow  = 'G'
	holdForever = 0
)

type server struct {
	e       *Endpoint
	holdMax int
	answer  chan struct{}

	mu        sync.Mutex
	cond      *sync.Cond
	paused    bool
	announced bool
	cancel    context.CancelFunc
	held      []transport.Request

	// Used only by the serving goroutine.
	recv, dok, dgone, dother int
	served                   uint32
	lastErr                  error
}

// roleRecv DIR NAME MAXMSG NOSPIN HOLDMAX: listen as NAME at
// Address(DIR, NAME, pid) and serve the op protocol. After HOLDMAX held
// requests (0: no limit) it stops receiving, as after "pause".
func roleRecv(args []string) error {
	dir, name := args[0], args[1]
	maxMsg, _ := strconv.Atoi(args[2])
	holdMax, _ := strconv.Atoi(args[4])
	e, err := Listen(Address(dir, name, os.Getpid()), name, Options{MaxMessage: maxMsg, NoSpin: args[3] == "1"})
	if err != nil {
		return err
	}
	s := &server{e: e, holdMax: holdMax, answer: make(chan struct{}, 16)}
	s.cond = sync.NewCond(&s.mu)
	go s.commands(commands())
	say("ready")
	return s.serve()
}

func (s *server) commands(cmds <-chan string) {
	for c := range cmds {
		switch c {
		case "pause":
			s.mu.Lock()
			s.paused, s.announced = true, false
			cancel := s.cancel
			s.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case "resume":
			s.mu.Lock()
			s.paused = false
			s.cond.Broadcast()
			s.mu.Unlock()
		case "release":
			s.mu.Lock()
			held := s.held
			s.held = nil
			s.mu.Unlock()
			var names []string
			for _, r := range held {
				names = append(names, errName(r.Reply([]byte("R"))))
			}
			say("released %s", strings.Join(names, " "))
		case "answer":
			s.answer <- struct{}{}
		default:
			say("unknown command %q", c)
		}
	}
}

// nextCtx waits while receiving is paused and returns the context for the
// next Receive, which "pause" cancels.
func (s *server) nextCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.paused {
		if !s.announced {
			s.announced = true
			say("paused")
		}
		s.cond.Wait()
	}
	if s.cancel != nil {
		s.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	return ctx
}

func (s *server) serve() error {
	for {
		ctx := s.nextCtx()
		req, proxy, err := s.e.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue // paused
			}
			return err
		}
		if !req.Valid() {
			say("proxy %d", proxy)
			continue
		}
		s.recv++
		s.handle(req)
	}
}

func (s *server) handle(req transport.Request) {
	d := req.Data()
	if len(d) == 0 {
		s.lastErr = req.Reply(nil)
		return
	}
	switch d[0] {
	case opEcho:
		s.lastErr = req.Reply(complement(d))
	case opInPlace:
		r := req
		buf := r.ReplyBuffer()
		n := len(d)
		for i := range min(n, len(buf)) {
			buf[i] = ^d[i] // the same byte of the lane: read, then overwritten
		}
		s.lastErr = r.ReplyInPlace(n)
	case opSized:
		s.lastErr = req.Reply(pattern(int(binary.LittleEndian.Uint32(d[1:5]))))
	case opSizedInPl:
		r := req
		n := int(binary.LittleEndian.Uint32(d[1:5]))
		copy(r.ReplyBuffer(), pattern(n))
		s.lastErr = r.ReplyInPlace(n)
	case opError:
		s.lastErr = req.ReplyError()
	case opLast:
		req.Reply([]byte(errName(s.lastErr)))
	case opHold:
		s.mu.Lock()
		s.held = append(s.held, req)
		n := len(s.held)
		if s.holdMax > 0 && n >= s.holdMax {
			s.paused, s.announced = true, false
		}
		s.mu.Unlock()
		say("held %d", n)
	case opWait:
		id := string(d[1:])
		say("took %s", id)
		select {
		case <-s.answer:
		case <-time.After(30 * time.Second):
		}
		say("answered %s %s", id, errName(req.Reply(complement(d))))
	case opDelay:
		time.Sleep(time.Duration(binary.LittleEndian.Uint32(d[1:5])) * time.Microsecond)
		switch err := req.Reply(complement(d)); {
		case err == nil:
			s.dok++
		case errors.Is(err, transport.ErrPeerGone):
			s.dgone++
		default:
			s.dother++
		}
	case opCount:
		req.Reply(fmt.Appendf(nil, "recv=%d dok=%d dgone=%d dother=%d", s.recv, s.dok, s.dgone, s.dother))
	case opFair, opFairSlow:
		if d[0] == opFairSlow {
			for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
			}
		}
		out := make([]byte, 4+len(d))
		binary.LittleEndian.PutUint32(out, s.served)
		s.served++
		for i, c := range d {
			out[4+i] = ^c
		}
		s.lastErr = req.Reply(out)
	default:
		s.lastErr = req.ReplyError()
	}
}

// roleSend ADDR PID WHOM MODE N: a sender helper.
//
//	one      send one 'E' request (the test receives it and kills us)
//	burst N  N concurrent Sends of {'Q', i, i>>8}; print "I RESULT" each
//	         (RESULT: ok when the reply is the request's complement,
//	         wrong, or an errName), then "done"
//	loop N   N Sends of varied sizes, each reply checked; print "ok"
//	stress N N goroutines sending checked requests until killed; print
//	         "wrong ..." on a bad reply
func roleSend(args []string) error {
	pid, _ := strconv.Atoi(args[1])
	n, _ := strconv.Atoi(args[4])
	c, err := Dial(context.Background(), args[0], pid, args[2], Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	commands()
	say("ready")
	ctx := context.Background()
	switch args[3] {
	case "one":
		reply := make([]byte, 64)
		k, err := c.Send(ctx, []byte("E one request"), reply)
		say("sent %s %q", errName(err), reply[:k])
	case "burst":
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req := []byte{'Q', byte(i), byte(i >> 8)}
				reply := make([]byte, 64)
				k, err := c.Send(ctx, req, reply)
				switch {
				case err == nil && string(reply[:k]) == string(complement(req)):
					say("%d ok", i)
				case err == nil:
					say("%d wrong %x", i, reply[:k])
				default:
					say("%d %s", i, errName(err))
				}
			})
		}
		wg.Wait()
		say("done")
	case "loop":
		sizes := []int{0, 1, 100, 5000, 70000}
		reply := make([]byte, 70000)
		for i := range n {
			req := patternSeed(sizes[i%len(sizes)], i)
			k, err := c.Send(ctx, req, reply)
			if err != nil {
				return fmt.Errorf("send %d (%d bytes): %w", i, len(req), err)
			}
			if string(reply[:k]) != string(complement(req)) {
				return fmt.Errorf("send %d (%d bytes): wrong reply of %d bytes", i, len(req), k)
			}
		}
		say("ok")
	case "stress":
		for g := range n {
			go func() {
				reply := make([]byte, 9000)
				for i := 0; ; i++ {
					req := patternSeed((i*131+g*17)%9000, g*1000003+i)
					k, err := c.Send(ctx, req, reply)
					if err == nil && string(reply[:k]) != string(complement(req)) {
						say("wrong %d %d", g, i)
					}
				}
			}()
		}
		select {}
	default:
		return fmt.Errorf("unknown mode %q", args[3])
	}
	return nil
}

// ---- shared helpers ----

// pattern is n bytes that depend on n.
func pattern(n int) []byte { return patternSeed(n, n) }

// patternSeed is n pseudo-random bytes from seed.
func patternSeed(n, seed int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func complement(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = ^c
	}
	return out
}

// errName names the sentinel an error wraps, for helper output.
func errName(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, transport.ErrPeerGone):
		return "peer-gone"
	case errors.Is(err, transport.ErrReplyTooLarge):
		return "reply-too-large"
	case errors.Is(err, transport.ErrReplied):
		return "replied"
	case errors.Is(err, transport.ErrRejected):
		return "rejected"
	case errors.Is(err, transport.ErrTooManyLanes):
		return "too-many-lanes"
	case errors.Is(err, transport.ErrTooLarge):
		return "too-large"
	case errors.Is(err, transport.ErrBadMessage):
		return "bad-message"
	case errors.Is(err, transport.ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return "other:" + strings.ReplaceAll(err.Error(), " ", "_")
}

// ---- test side ----

// proc is a running helper with a command pipe.
type proc struct {
	*proctest.Proc
	t    *testing.T
	in   io.WriteCloser
	addr string // for a "recv" helper: its address
}

// startHelper runs the test binary as a helper in role and waits for it to
// print "ready". It is killed when the test ends.
func startHelper(t *testing.T, role string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env(role, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Proc: proctest.StartCmd(t, cmd), t: t, in: in}
	t.Cleanup(func() { in.Close() })
	p.Expect("ready", 10*time.Second)
	return p
}

// startRecv starts a "recv" helper listening as name.
func startRecv(t *testing.T, name string, maxMsg, holdMax int) *proc {
	t.Helper()
	dir := t.TempDir()
	p := startHelper(t, "recv", dir, name, strconv.Itoa(maxMsg), "0", strconv.Itoa(holdMax))
	p.addr = Address(dir, name, p.PID())
	return p
}

// startSend starts a "send" helper sending to the endpoint at addr in
// this process.
func startSend(t *testing.T, addr, whom, mode string, n int) *proc {
	t.Helper()
	return startHelper(t, "send", addr, strconv.Itoa(os.Getpid()), whom, mode, strconv.Itoa(n))
}

func (p *proc) command(line string) {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		p.t.Fatalf("command %q to helper: %v", line, err)
	}
}

// kill sends SIGKILL and reaps the helper.
func (p *proc) kill() {
	p.t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// dial connects to a "recv" helper; the Conn is closed when the test ends.
func dial(t *testing.T, p *proc, opts Options) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), p.addr, p.PID(), "tester", opts)
	if err != nil {
		t.Fatalf("dial %s: %v", p.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listen starts an endpoint in this process; closed when the test ends.
func listen(t *testing.T, name string, opts Options) (*Endpoint, string) {
	t.Helper()
	addr := Address(t.TempDir(), name, os.Getpid())
	e, err := Listen(addr, name, opts)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { e.Close() })
	return e, addr
}

// testCtx bounds a test: every blocking call in it gets this context.
func testCtx(t *testing.T, d time.Duration) context.Context {
	return proctest.Context(t, d)
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// within runs f and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// send is Conn.Send with a bounded context, checking nothing.
func send(t *testing.T, c *Conn, req []byte, replyCap int) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reply := make([]byte, replyCap)
	n, err := c.Send(ctx, req, reply)
	if ctx.Err() != nil {
		t.Fatalf("send of %d bytes: no answer within 20s: %v", len(req), err)
	}
	return reply[:n], err
}

// echo sends an 'E' request and checks the reply byte for byte.
func echo(t *testing.T, c *Conn, payload string) {
	t.Helper()
	req := append([]byte{opEcho}, payload...)
	got, err := send(t, c, req, len(req))
	if err != nil {
		t.Fatalf("echo %q: %v", payload, err)
	}
	if string(got) != string(complement(req)) {
		t.Fatalf("echo %q: reply %q, want the complement of the request", payload, got)
	}
}

// counts asks a "recv" helper for its counters.
func counts(t *testing.T, c *Conn) map[string]int {
	t.Helper()
	got, err := send(t, c, []byte{opCount}, 256)
	if err != nil {
		t.Fatalf("count query: %v", err)
	}
	m := map[string]int{}
	for _, f := range strings.Fields(string(got)) {
		k, v, _ := strings.Cut(f, "=")
		m[k], _ = strconv.Atoi(v)
	}
	return m
}

// laneStates counts a Conn's lanes by state.
func laneStates(c *Conn) map[uint32]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[uint32]int{}
	for l := range c.all {
		m[l.w.state.Load()]++
	}
	return m
}

// rlaneStates counts an Endpoint's live lanes by state.
func rlaneStates(e *Endpoint) map[uint32]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[uint32]int{}
	for l := range e.all {
		l.mu.Lock()
		if !l.dead {
			m[l.w.state.Load()]++
		}
		l.mu.Unlock()
	}
	return m
}

func laneCount(e *Endpoint) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.all)
}

// serveLocal answers every request on e with the complement of its data,
// after a random pause below delay, until the returned stop is called (also
// when the test ends, before e is closed: a request's data must not be read
// once its endpoint closed). stop returns the Reply results by errName.
func serveLocal(t *testing.T, e *Endpoint, delay time.Duration) (stop func() map[string]int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan map[string]int, 1)
	go func() {
		res := map[string]int{}
		defer func() { done <- res }()
		for {
			req, _, err := e.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					res["receive:"+errName(err)]++
				}
				return
			}
			reply := complement(req.Data())
			if delay > 0 {
				time.Sleep(rand.N(delay))
			}
			res[errName(req.Reply(reply))]++
		}
	}()
	var once sync.Once
	var res map[string]int
	stop = func() map[string]int {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("serving goroutine did not stop within 10s")
			}
		})
		return res
	}
	t.Cleanup(func() { stop() })
	return stop
}

// failures drops the successes from serveLocal's results.
func failures(res map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range res {
		if k != "nil" {
			out[k] = v
		}
	}
	return out
}
