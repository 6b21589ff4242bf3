// Package transporttest is the conformance suite every transport passes:
// the contract of package transport, checked across real processes, in
// the manner of golang.org/x/net/nettest.TestConn.
//
// A transport's test package wires it up in TestMain, adding the suite's
// helper roles to its own, and runs it from one test:
//
//	func TestMain(m *testing.M) {
//		proctest.Main(m, transporttest.Roles(shm.Transport{}))
//	}
//
//	func TestConformance(t *testing.T) { transporttest.Run(t, shm.Transport{}) }
//
// Each case puts one side in the test process and the other in a helper
// process running the same test binary: what one message is (answered
// exactly once, its data valid until then, safe for concurrent use), late
// answers, cancellation, dead peers on either side, and Close under load.
// The transport runs alone, with no other transport beside it.
package transporttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// bound is how long any one step of a case may take before the case
// fails.
const bound = 10 * time.Second

// deathBound is how soon after a receiver's death every Send blocked on
// it must return: measured from the death itself (see watchDeath), not
// from the kill.
const deathBound = 2 * time.Second

// Roles are the helper roles the suite starts, for proctest.Main.
func Roles(tr transport.Transport) map[string]proctest.Role {
	return map[string]proctest.Role{
		"transporttest-recv": func(args []string) error { return roleRecv(tr, args) },
		"transporttest-send": func(args []string) error { return roleSend(tr, args) },
	}
}

// Run runs every case against tr.
func Run(t *testing.T, tr transport.Transport) { RunWith(t, tr, Options{}) }

// Options vary the endpoints the suite makes, on both sides.
type Options struct {
	// ThreadWait is transport.Config.ThreadWait and ThreadReceive.
	ThreadWait bool
}

// threadWaitEnv passes Options.ThreadWait to the helper processes.
const threadWaitEnv = "GOSIMPL_TRANSPORTTEST_THREADWAIT"

// RunWith runs every case against tr, its endpoints made with o.
func RunWith(t *testing.T, tr transport.Transport, o Options) {
	if o.ThreadWait {
		t.Setenv(threadWaitEnv, "1")
	}
	for _, c := range []struct {
		name string
		f    func(*testing.T, transport.Transport)
	}{
		{"RoundTrip", testRoundTrip},
		{"AnswerOnce", testAnswerOnce},
		{"Claim", testClaim},
		{"ReplyTooLarge", testReplyTooLarge},
		{"Buffer", testBuffer},
		{"LateAnswer", testLateAnswer},
		{"ConcurrentDataReply", testConcurrentDataReply},
		{"Proxy", testProxy},
		{"Cancel", testCancel},
		{"DeadSender", testDeadSender},
		{"DeadReceiver", testDeadReceiver},
		{"CloseUnderLoad", testCloseUnderLoad},
		{"ReceiveEnds", testReceiveEnds},
		{"UntilTaken", testUntilTaken},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, tr) })
	}
}

// ---- both sides ----

// listen starts tr's endpoint for name in dir, with a queue of its own.
func listen(tr transport.Transport, dir, name string) (transport.Endpoint, *transport.Queue, error) {
	reg, err := naming.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	q := transport.NewQueue(name, false)
	ep, err := tr.Listen(transport.Config{Name: name, Registry: reg, Queue: q, MaxMessage: 1 << 20,
		ThreadWait: os.Getenv(threadWaitEnv) == "1", ThreadReceive: os.Getenv(threadWaitEnv) == "1"})
	if err != nil {
		q.Close()
		return nil, nil, err
	}
	return ep, q, nil
}

// closeAll closes q, then ep, as simpl does.
func closeAll(ep transport.Endpoint, q *transport.Queue) {
	q.Close()
	ep.Close()
}

// peer is the receiver name, process pid, in dir.
func peer(dir, name string, pid int) transport.Peer {
	reg, _ := naming.Open(dir)
	n, _ := naming.Parse(name)
	return transport.Peer{Name: n, Entry: naming.Entry{
		Name: name, PID: pid, Alive: true, Path: reg.ReceivePath(name, pid),
	}}
}

// reap removes what a killed helper attached as name left in dir (a
// transport that publishes names leaves its FIFOs, as C SIMPL does).
func reap(t *testing.T, dir, name string) {
	t.Helper()
	reg, err := naming.Open(dir)
	if err == nil {
		_, err = reg.Reap(name)
	}
	if err != nil {
		t.Errorf("reap %s: %v", name, err)
	}
}

// WatchDeath starts watching process pid through a pidfd, and returns
// died, which waits (failing the test after 10 s) for the process to exit
// and returns the moment this process saw it exit: when the pidfd became
// readable, which is also what a transport's own watcher waits for.
// Bounds on noticing a death run from then, not from the kill: the kernel
// ends a process only when each of its threads gets a CPU to die on, which
// on a loaded machine takes a while of its own. Call it before the kill.
func WatchDeath(t testing.TB, pid int) (died func() time.Time) {
	t.Helper()
	p, err := sys.OpenPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan time.Time, 1)
	go func() {
		if err := p.Wait(); err == nil {
			ch <- time.Now()
		}
	}()
	t.Cleanup(func() { p.Close() })
	return func() time.Time {
		t.Helper()
		select {
		case at := <-ch:
			p.Close()
			return at
		case <-time.After(bound):
			t.Fatalf("pid %d did not die within %v", pid, bound)
			return time.Time{}
		}
	}
}

// kind names err's sentinel, as helpers print it.
func kind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{transport.ErrPeerGone, "peer_gone"},
		{transport.ErrReplyTooLarge, "reply_too_large"},
		{transport.ErrTooLarge, "too_large"},
		{transport.ErrRejected, "rejected"},
		{transport.ErrBadProxy, "bad_proxy"},
		{transport.ErrClosed, "closed"},
		{context.DeadlineExceeded, "deadline"},
		{context.Canceled, "canceled"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other: " + err.Error()
}

// reply is what the receivers answer to a request: "re:" and the request.
func reply(d []byte) []byte { return append([]byte("re:"), d...) }

// ---- helper side ----

// roleRecv serves NAME in $FIFO_PATH: it answers each request with reply,
// except one starting with "hold", which it keeps unanswered and reports,
// and prints each proxy.
func roleRecv(tr transport.Transport, args []string) error {
	ep, q, err := listen(tr, os.Getenv("FIFO_PATH"), args[0])
	if err != nil {
		return err
	}
	defer closeAll(ep, q)
	proctest.Ready()
	var held []transport.Request
	for {
		req, proxy, err := q.Receive(context.Background())
		if err != nil {
			return err
		}
		if !req.Valid() {
			fmt.Printf("proxy %d\n", proxy)
			continue
		}
		if d := req.Data(); strings.HasPrefix(string(d), "hold") {
			held = append(held, req)
			fmt.Printf("held %s\n", d)
			continue
		}
		req.Reply(reply(req.Data()))
	}
}

// roleSend attaches NAME in $FIFO_PATH, dials PEER (process PEERPID) and
// runs the commands read on stdin, one a line, printing one line for each:
//
//	send MSG TIMEOUT [MAXREPLY]  -> "reply TEXT" or "err KIND"
//	loop MSG                     -> sends until a Send fails: "err KIND"
//	trigger N                    -> "ok" or "err KIND"
func roleSend(tr transport.Transport, args []string) error {
	dir := os.Getenv("FIFO_PATH")
	ep, q, err := listen(tr, dir, args[0])
	if err != nil {
		return err
	}
	defer closeAll(ep, q)
	pid, _ := strconv.Atoi(args[2])
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	c, err := ep.Dial(ctx, peer(dir, args[1], pid))
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	proctest.Ready()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 4<<20)
	var (
		queued            sync.WaitGroup
		endQueue, endSend context.CancelFunc = func() {}, func() {}
	)
	defer queued.Wait()
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "send":
			d, _ := time.ParseDuration(f[2])
			maxReply := 1 << 20
			if len(f) > 3 {
				maxReply, _ = strconv.Atoi(f[3])
			}
			msg := f[1]
			if msg == "-" {
				msg = ""
			}
			buf := make([]byte, maxReply)
			ctx, cancel := context.WithTimeout(context.Background(), d)
			n, err := c.Send(ctx, []byte(msg), buf)
			cancel()
			if err != nil {
				fmt.Printf("err %s\n", kind(err))
			} else {
				fmt.Printf("reply %s\n", buf[:n])
			}
		case "loop":
			buf := make([]byte, 64)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), bound)
				n, err := c.Send(ctx, []byte(f[1]), buf)
				cancel()
				if err != nil {
					fmt.Printf("err %s\n", kind(err))
					break
				}
				if string(buf[:n]) != string(reply([]byte(f[1]))) {
					fmt.Printf("err crossed %q\n", buf[:n])
					break
				}
			}
		case "buffer":
			// buffer SIZE N MAX MSG: MSG (or "-", none) into a Buffer of
			// SIZE bytes, its first N bytes sent with room for MAX.
			size, _ := strconv.Atoi(f[1])
			n, _ := strconv.Atoi(f[2])
			maxReply, _ := strconv.Atoi(f[3])
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			b, err := c.Buffer(ctx, size)
			if err == nil {
				if f[4] != "-" {
					copy(b.Bytes(), f[4])
				}
				var got []byte
				if got, err = b.Send(ctx, n, maxReply); err == nil {
					fmt.Printf("reply %s\n", got)
				}
				b.Close()
			}
			cancel()
			var se *transport.SizeError
			switch {
			case errors.As(err, &se):
				fmt.Printf("err %s %d %d\n", kind(err), se.Size, se.Limit)
			case err != nil:
				fmt.Printf("err %s\n", kind(err))
			}
		case "withdraws":
			fmt.Printf("withdraws %t\n", transport.WithdrawsQueued(c))
		case "sendq":
			// A Send under transport.UntilTaken in the background:
			// "unqueue" ends its wait in the queue ("taken" if the
			// receiver has the request), "stop" the Send.
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			qctx, qcancel := context.WithCancel(context.Background())
			endSend, endQueue = cancel, qcancel
			ctx = transport.UntilTaken(ctx, qctx, func() { fmt.Println("taken") })
			queued.Add(1)
			go func(msg string) {
				defer queued.Done()
				defer cancel()
				defer qcancel()
				buf := make([]byte, 64)
				n, err := c.Send(ctx, []byte(msg), buf)
				if err != nil {
					fmt.Printf("err %s\n", kind(err))
				} else {
					fmt.Printf("reply %s\n", buf[:n])
				}
			}(f[1])
		case "unqueue":
			endQueue()
		case "stop":
			endSend()
		case "trigger":
			p, _ := strconv.Atoi(f[1])
			if err := c.Trigger(p); err != nil {
				fmt.Printf("err %s\n", kind(err))
			} else {
				fmt.Println("ok")
			}
		}
	}
	return in.Err()
}

// ---- test side ----

// receiver is the transport's receiving side in the test process.
type receiver struct {
	t   *testing.T
	dir string
	ep  transport.Endpoint
	q   *transport.Queue
}

func newReceiver(t *testing.T, tr transport.Transport) *receiver {
	t.Helper()
	dir := proctest.Dir(t)
	ep, q, err := listen(tr, dir, "SRV")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := &receiver{t: t, dir: dir, ep: ep, q: q}
	t.Cleanup(func() { closeAll(ep, q) })
	return r
}

// receive returns the next request (not a proxy) within bound.
func (r *receiver) receive() transport.Request {
	r.t.Helper()
	req, proxy, err := r.receiveAny()
	if err != nil {
		r.t.Fatalf("Receive: %v", err)
	}
	if !req.Valid() {
		r.t.Fatalf("Receive: proxy %d, want a request", proxy)
	}
	return req
}

func (r *receiver) receiveAny() (transport.Request, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return r.q.Receive(ctx)
}

// sender is a helper process sending to SRV.
type sender struct {
	*proctest.Proc
	in io.WriteCloser
}

// startSender starts a helper named name that sends to r.
func (r *receiver) startSender(name string) *sender {
	r.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env("transporttest-send", name, "SRV", strconv.Itoa(os.Getpid()))...)
	cmd.Env = append(cmd.Env, "FIFO_PATH="+r.dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	p := proctest.StartCmd(r.t, cmd)
	p.Expect("ready", bound)
	s := &sender{Proc: p, in: in}
	r.t.Cleanup(func() {
		in.Close()
		if err := p.Wait(bound); err != nil && !p.Killed() {
			r.t.Errorf("sender %s: %v", name, err)
		}
	})
	return s
}

// do sends the helper one command.
func (s *sender) do(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, cmd); err != nil {
		t.Fatalf("command %q: %v", cmd, err)
	}
}

// expectLine reads the helper's next line and checks it is want.
func (s *sender) expectLine(t *testing.T, want string) {
	t.Helper()
	if got := s.ReadLine(bound); got != want {
		t.Fatalf("sender says %q, want %q", got, want)
	}
}

func testRoundTrip(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	for _, msg := range []string{"a", "-", strings.Repeat("x", 64<<10)} {
		s.do(t, "send "+msg+" 10s")
		req := r.receive()
		want := msg
		if msg == "-" {
			want = ""
		}
		if string(req.Data()) != want {
			t.Fatalf("received %d bytes, want %d", len(req.Data()), len(want))
		}
		if name, pid := req.Sender(); name != "CLI" || pid != s.PID() {
			t.Errorf("Sender() = %q, %d; want CLI, %d", name, pid, s.PID())
		}
		if c, ok := req.Cred(); ok && (c.PID != s.PID() || c.UID != os.Getuid()) {
			t.Errorf("Cred() = %+v; want pid %d, uid %d", c, s.PID(), os.Getuid())
		}
		if req.MaxReply() != 1<<20 {
			t.Errorf("MaxReply() = %d, want %d", req.MaxReply(), 1<<20)
		}
		if err := req.Reply(reply(req.Data())); err != nil {
			t.Fatalf("Reply: %v", err)
		}
		s.expectLine(t, "reply re:"+want)
	}
}

func testAnswerOnce(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	answers := []struct {
		name   string
		answer func(transport.Request) error
		says   string
	}{
		{"Reply", func(q transport.Request) error { return q.Reply([]byte("one")) }, "reply one"},
		{"ReplyError", transport.Request.ReplyError, "err rejected"},
		{"ReplyInPlace", func(q transport.Request) error {
			b := q.ReplyBuffer()
			if b == nil {
				return q.Reply([]byte("one"))
			}
			return q.ReplyInPlace(copy(b, "one"))
		}, "reply one"},
	}
	for _, first := range answers {
		s.do(t, "send once 10s")
		req := r.receive()
		cp := req // a copy names the same message
		if err := first.answer(req); err != nil {
			t.Fatalf("%s: %v", first.name, err)
		}
		s.expectLine(t, first.says)
		for _, again := range answers {
			if err := again.answer(cp); !errors.Is(err, transport.ErrReplied) {
				t.Errorf("%s after %s: %v, want ErrReplied", again.name, first.name, err)
			}
		}
		cp.Abort() // a no-op once answered
		if d := req.Data(); d != nil {
			t.Errorf("Data after %s: %q, want nil", first.name, d)
		}
		// The next message of the same sender is its own.
		s.do(t, "send next 10s")
		next := r.receive()
		if string(next.Data()) != "next" || req.Data() != nil {
			t.Fatalf("next message %q; the answered one shows %q", next.Data(), req.Data())
		}
		next.Reply(reply(next.Data()))
		s.expectLine(t, "reply re:next")
	}
}

// testClaim: a claimed request is answered only through the Request
// Claim returned; the one claimed from, and its copies, have no data and
// get ErrReplied; a request answered can be claimed no more.
func testClaim(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "send mine 10s")
	req := r.receive()
	cp := req
	claimed, ok := req.Claim()
	if !ok {
		t.Fatal("Claim of an unanswered request: not ok")
	}
	if d := cp.Data(); d != nil {
		t.Errorf("Data of the request claimed from: %q, want nil", d)
	}
	if err := cp.Reply([]byte("stale")); !errors.Is(err, transport.ErrReplied) {
		t.Errorf("Reply to the request claimed from: %v, want ErrReplied", err)
	}
	if _, ok := cp.Claim(); ok {
		t.Error("a second Claim through the request claimed from: ok")
	}
	if string(claimed.Data()) != "mine" {
		t.Errorf("the claimed request's Data: %q, want \"mine\"", claimed.Data())
	}
	if err := claimed.Reply(reply(claimed.Data())); err != nil {
		t.Fatalf("Reply through the claimed request: %v", err)
	}
	s.expectLine(t, "reply re:mine")
	if _, ok := claimed.Claim(); ok {
		t.Error("Claim of an answered request: ok")
	}
}

func testReplyTooLarge(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "send small 10s 4")
	req := r.receive()
	if req.MaxReply() != 4 {
		t.Fatalf("MaxReply() = %d, want 4", req.MaxReply())
	}
	if err := req.Reply([]byte("12345")); !errors.Is(err, transport.ErrReplyTooLarge) {
		t.Fatalf("Reply of 5 bytes to a 4-byte buffer: %v, want ErrReplyTooLarge", err)
	}
	s.expectLine(t, "err reply_too_large")
	if err := req.Reply([]byte("1234")); !errors.Is(err, transport.ErrReplied) {
		t.Fatalf("Reply after a too-large one: %v, want ErrReplied", err)
	}
}

// A Buffer sends from its own area and refuses, before anything reaches
// the receiver, a request or reply room larger than the area, with the
// sizes.
func testBuffer(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "buffer 8 9 8 -")
	s.expectLine(t, "err too_large 9 8")
	s.do(t, "buffer 8 4 9 -")
	s.expectLine(t, "err too_large 9 8")
	s.do(t, "buffer 8 -1 8 -")
	s.expectLine(t, "err too_large -1 8")
	s.do(t, "buffer 64 5 32 hello")
	req := r.receive()
	if string(req.Data()) != "hello" || req.MaxReply() != 32 {
		t.Fatalf("from a Buffer: %q with room for %d, want \"hello\" and 32", req.Data(), req.MaxReply())
	}
	if err := req.Reply(reply(req.Data())); err != nil {
		t.Fatal(err)
	}
	s.expectLine(t, "reply re:hello")
}

func testLateAnswer(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "send late 300ms")
	req := r.receive()
	s.expectLine(t, "err deadline")
	if err := req.Reply([]byte("stale")); err != nil && !errors.Is(err, transport.ErrPeerGone) {
		t.Fatalf("late Reply: %v, want nil or ErrPeerGone", err)
	}
	if err := req.Reply([]byte("stale")); !errors.Is(err, transport.ErrReplied) {
		t.Fatalf("second late Reply: %v, want ErrReplied", err)
	}
	// The late answer reaches no later Send.
	for i := range 3 {
		msg := "fresh" + strconv.Itoa(i)
		s.do(t, "send "+msg+" 10s")
		next := r.receive()
		if err := next.Reply(reply(next.Data())); err != nil {
			t.Fatalf("Reply to %s: %v", msg, err)
		}
		s.expectLine(t, "reply re:"+msg)
	}
}

func testConcurrentDataReply(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	for round := range 20 {
		msg := "round" + strconv.Itoa(round)
		s.do(t, "send "+msg+" 10s")
		req := r.receive()
		var wg sync.WaitGroup
		bad := make(chan string, 8)
		for range 4 {
			wg.Go(func() {
				for range 200 {
					// Data is valid until the request is answered; a
					// transport may write the reply over it in place. What
					// was read counts only if the request is still
					// unanswered after reading it.
					d := req.Data()
					if got := string(d); d != nil && got != msg && req.Data() != nil {
						bad <- got
						return
					}
					req.MaxReply()
					req.Sender()
					req.ReplyBuffer()
				}
			})
		}
		wg.Go(func() {
			if err := req.Reply(reply([]byte(msg))); err != nil {
				bad <- "Reply: " + err.Error()
			}
		})
		wg.Wait()
		close(bad)
		for b := range bad {
			t.Fatalf("round %d: %s (want %q or nil)", round, b, msg)
		}
		if req.Data() != nil {
			t.Fatalf("round %d: Data after Reply is not nil", round)
		}
		s.expectLine(t, "reply re:"+msg)
	}
}

func testProxy(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	for _, bad := range []string{"0", "-3"} {
		s.do(t, "trigger "+bad)
		s.expectLine(t, "err bad_proxy")
	}
	for _, p := range []int{1, 7, 1 << 30} {
		s.do(t, "trigger "+strconv.Itoa(p))
		s.expectLine(t, "ok")
		req, proxy, err := r.receiveAny()
		if err != nil || req.Valid() || proxy != p {
			t.Fatalf("Receive after Trigger(%d): request %v, proxy %d, %v", p, req.Valid(), proxy, err)
		}
		if err := req.Reply(nil); err == nil {
			t.Fatal("Reply to a proxy succeeded")
		}
	}
}

func testCancel(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	// A Receive ends with its context, sleeping or not.
	for _, d := range []time.Duration{0, 50 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		_, _, err := r.q.Receive(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive with a %v deadline: %v", d, err)
		}
		if time.Since(start) > bound {
			t.Fatalf("Receive with a %v deadline took %v", d, time.Since(start))
		}
	}
	// A Send ends with its context while the receiver holds its message,
	// and the sender goes on.
	s := r.startSender("CLI")
	s.do(t, "send hold 200ms")
	held := r.receive()
	s.expectLine(t, "err deadline")
	s.do(t, "send after 10s")
	next := r.receive()
	next.Reply(reply(next.Data()))
	s.expectLine(t, "reply re:after")
	held.Abort()
}

func testDeadSender(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "send hold 10s")
	req := r.receive()
	s.Kill()
	reap(t, r.dir, "CLI")
	// The answer to a dead sender goes nowhere and says so or not, as the
	// transport can tell; it never blocks, and the message is spent.
	done := make(chan error, 1)
	go func() { done <- req.Reply([]byte("to the dead")) }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, transport.ErrPeerGone) {
			t.Fatalf("Reply to a dead sender: %v, want nil or ErrPeerGone", err)
		}
	case <-time.After(bound):
		t.Fatal("Reply to a dead sender blocked")
	}
	if err := req.ReplyError(); !errors.Is(err, transport.ErrReplied) {
		t.Fatalf("second answer to a dead sender: %v, want ErrReplied", err)
	}
	// The receiver serves the next sender as usual.
	s2 := r.startSender("CLI2")
	s2.do(t, "send alive 10s")
	next := r.receive()
	next.Reply(reply(next.Data()))
	s2.expectLine(t, "reply re:alive")
}

func testDeadReceiver(t *testing.T, tr transport.Transport) {
	dir := proctest.Dir(t)
	ep, q, err := listen(tr, dir, "CLI")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(ep, q)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env("transporttest-recv", "SRV")...)
	cmd.Env = append(cmd.Env, "FIFO_PATH="+dir)
	srv := proctest.StartCmd(t, cmd)
	srv.Expect("ready", bound)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := ep.Dial(ctx, peer(dir, "SRV", srv.PID()))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	if n, err := c.Send(ctx, []byte("first"), buf); err != nil || string(buf[:n]) != "re:first" {
		t.Fatalf("Send: %q, %v", buf[:n], err)
	}
	const blocked = 4
	type result struct {
		err error
		at  time.Time
	}
	res := make(chan result, blocked)
	for i := range blocked {
		go func() {
			_, err := c.Send(ctx, []byte("hold"+strconv.Itoa(i)), make([]byte, 64))
			res <- result{err, time.Now()}
		}()
	}
	for range blocked {
		srv.Expect("held", bound)
	}
	died := WatchDeath(t, srv.PID())
	srv.Kill()
	death := died()
	defer reap(t, dir, "SRV")
	for range blocked {
		select {
		case r := <-res:
			if !errors.Is(r.err, transport.ErrPeerGone) {
				t.Errorf("Send to a receiver that died: %v, want ErrPeerGone", r.err)
			}
			if d := r.at.Sub(death); d > deathBound {
				t.Errorf("a Send returned %v after its receiver died, want within %v", d, deathBound)
			}
		case <-time.After(bound):
			t.Fatalf("a Send was still blocked %v after its receiver died", bound)
		}
	}
	if _, err := c.Send(ctx, []byte("after"), buf); !errors.Is(err, transport.ErrPeerGone) {
		t.Errorf("Send after the receiver died: %v, want ErrPeerGone", err)
	}
}

func testCloseUnderLoad(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	const senders = 3
	var ss []*sender
	for i := range senders {
		s := r.startSender("LOAD" + strconv.Itoa(i))
		s.do(t, "loop m"+strconv.Itoa(i))
		ss = append(ss, s)
	}
	// Serve a while, then keep a few unanswered and close under the rest.
	var held []transport.Request
	for i := range 300 {
		req := r.receive()
		if i%100 == 99 {
			held = append(held, req)
			continue
		}
		if err := req.Reply(reply(req.Data())); err != nil {
			t.Fatalf("Reply %d: %v", i, err)
		}
	}
	closed := make(chan struct{})
	go func() {
		closeAll(r.ep, r.q)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(bound):
		t.Fatal("Close under load did not return")
	}
	for i, s := range ss {
		line := s.ReadLine(bound)
		if line != "err peer_gone" && line != "err closed" {
			t.Errorf("sender %d after Close: %q, want err peer_gone", i, line)
		}
	}
	for _, req := range held {
		if err := req.Reply([]byte("after close")); err == nil {
			t.Error("Reply to a request held across Close succeeded")
		}
	}
	if _, _, err := r.q.Receive(context.Background()); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
}

// testReceiveEnds: a Receive with nothing to take returns its context's
// error when the context ends, each time (the wait is set up afresh), and
// an error wrapping ErrClosed once the queue closes, whether it was
// waiting by then or came after; and a request that comes meanwhile is
// still received between those waits.
func testReceiveEnds(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		_, _, err := r.q.Receive(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive %d with nothing to take: %v, want DeadlineExceeded", i, err)
		}
		if d := time.Since(start); d > bound {
			t.Fatalf("Receive %d ended %v after its 20ms deadline", i, d)
		}
	}
	s := r.startSender("CLI")
	s.do(t, "send hello 10s")
	req := r.receive()
	if err := req.Reply(reply(req.Data())); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	s.expectLine(t, "reply re:hello")
	got := make(chan error, 1)
	go func() {
		_, _, err := r.q.Receive(context.Background())
		got <- err
	}()
	r.q.Close()
	select {
	case err := <-got:
		if !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Receive as the queue closes: %v, want ErrClosed", err)
		}
	case <-time.After(bound):
		t.Fatalf("Receive still waiting %v after the queue closed", bound)
	}
}

// testUntilTaken checks transport.UntilTaken: where the transport says
// it can (WithdrawsQueued), the end of the queued context takes back a
// request still queued, so that the receiver never sees it, and leaves a
// taken one with the receiver: the Send waits on for its answer, the
// receiver's end or its own context's. Where it cannot, the queued
// context is ignored.
func testUntilTaken(t *testing.T, tr transport.Transport) {
	r := newReceiver(t, tr)
	s := r.startSender("CLI")
	s.do(t, "withdraws")
	switch got := s.ReadLine(bound); got {
	case "withdraws false":
		s.do(t, "sendq held")
		held := r.receive()
		s.do(t, "unqueue")
		if err := held.Reply(reply(held.Data())); err != nil {
			t.Fatalf("Reply: %v", err)
		}
		s.expectLine(t, "reply re:held")
		return
	case "withdraws true":
	default:
		t.Fatalf("sender says %q", got)
	}

	// Queued, never received: taken back. Whether the end comes before
	// or after the request is posted, the receiver must not see it.
	s.do(t, "sendq queued")
	s.do(t, "unqueue")
	s.expectLine(t, "err canceled")
	s.do(t, "send after 10s")
	if next := r.receive(); string(next.Data()) != "after" {
		t.Fatalf("received %q, want the message sent after the withdrawn one", next.Data())
	} else if err := next.Reply(reply(next.Data())); err != nil {
		t.Fatalf("Reply: %v", err)
	}
	s.expectLine(t, "reply re:after")

	// Received: the end of the queue's wait finds it taken, and the Send
	// gets the answer.
	s.do(t, "sendq held")
	held := r.receive()
	s.do(t, "unqueue")
	s.expectLine(t, "taken")
	if err := held.Reply(reply(held.Data())); err != nil {
		t.Fatalf("Reply after the wait in the queue ended: %v", err)
	}
	s.expectLine(t, "reply re:held")

	// Received, then the Send's own context ends: it ends the Send.
	s.do(t, "sendq abandoned")
	abandoned := r.receive()
	s.do(t, "unqueue")
	s.expectLine(t, "taken")
	s.do(t, "stop")
	s.expectLine(t, "err canceled")
	abandoned.Abort()

	// Received, then the receiver goes: the Send ends with that.
	s.do(t, "sendq dropped")
	r.receive()
	s.do(t, "unqueue")
	s.expectLine(t, "taken")
	closeAll(r.ep, r.q)
	s.expectLine(t, "err peer_gone")
}
