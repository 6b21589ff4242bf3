package fifo

// A header corrupted in flight by a third process. A sender (a helper
// process) has written its request and rung the receiver (this process);
// while the doorbell waits unread in the receiver's FIFO, another helper,
// running as root like the test and so able to attach any segment,
// rewrites the sender's segment. The receiver must neither crash nor hang,
// the corrupted Send must end as the design says (below), nothing may be
// rung at a process that did not send, and the receiver must then serve
// the same sender and another one normally.
//
// What the receiver does with a corrupted header (endpoint.go accept,
// segment.go readHeader, trust.go):
//
//   - served: what it cannot tell from a real request is served, bounded
//     by the segment actually mapped: shmsize (never read), nbytes that
//     still lies within the segment (the request then reads as longer),
//     ybytes beyond the segment (capped to it, its trailer excluded), and
//     a private receiver's claim trailer (only public receivers use it).
//   - refused: a size out of bounds in a header whose pid is the
//     segment's creator and whose name is usable: the receiver answers -1
//     with a code in nbytes, and the Send fails at once with ErrBadMessage
//     ("receiver refused the header") or ErrTooLarge.
//   - dropped: a header that does not identify the sender, a pid that is
//     not the segment's live creator (0, negative, another live process,
//     an exited one) or a sender name that cannot name its reply FIFO (not
//     NUL-terminated, '/', "..", an auxiliary suffix other than #k), and,
//     at a public receiver, a claim that is not its own. Per trust.go the
//     receiver answers only into the reply FIFO of the process that made
//     the segment, Y<whom>.<pid>, so a header whose whom or pid is not that
//     process's cannot be answered without risking a ring at someone else
//     (a confused deputy): the doorbell is dropped (Dropped counts it) and
//     the Send ends by its own context, here cancelled by the test after
//     it has seen no answer come.
//   - unanswerable: a header naming another valid name with the creator's
//     true pid cannot be told from a real request (the wire carries no
//     proof of the name, and whoever may write the segment may as well
//     send in its own right): it is delivered, and its Reply finds no reply
//     FIFO Y<that name>.<pid> (ErrPeerGone); the Send ends by its context.
//
// To hold the receiver off while the header is corrupted, the test plugs
// its reader first: a proxy doorbell that nobody Receives keeps the reader
// waiting for its credit before it reads more (see readAhead), so the
// sender's doorbell stays in the FIFO until the test Receives the plug.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

func init() {
	roles["corruptsender"] = runCorruptSender
	roles["corrupter"] = runCorrupter
}

// runCorruptSender (DIR NAME TO) attaches NAME, locates TO and obeys its
// standard input, one command a line: "send MSG" starts a Send of MSG
// with a 64-byte reply buffer, printing "reply R" or "err CLASS E" when it
// ends (CLASS from sendClass); "cancel" cancels the Send in progress; end
// of input (or "quit") closes the endpoint and exits.
func runCorruptSender(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	defer ep.Close()
	c, err := ep.Locate(args[2])
	if err != nil {
		return err
	}
	defer c.Close()
	proctest.Ready()
	var (
		mu     sync.Mutex
		cancel context.CancelFunc = func() {}
		wg     sync.WaitGroup
	)
	defer wg.Wait()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "send":
			ctx, stop := context.WithTimeout(context.Background(), helperTimeout)
			mu.Lock()
			cancel = stop
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer stop()
				reply := make([]byte, 64)
				n, err := c.Send(ctx, []byte(arg), reply)
				if err != nil {
					fmt.Printf("err %s %v\n", sendClass(err), err)
					return
				}
				fmt.Printf("reply %s\n", reply[:n])
			}()
		case "cancel":
			mu.Lock()
			cancel()
			mu.Unlock()
		case "quit":
			return nil
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	return in.Err()
}

// sendClass names the kind of a Send's failure.
func sendClass(err error) string {
	for _, k := range []struct {
		name string
		err  error
	}{
		{"badmessage", transport.ErrBadMessage},
		{"toolarge", transport.ErrTooLarge},
		{"replytoolarge", transport.ErrReplyTooLarge},
		{"rejected", transport.ErrRejected},
		{"peergone", transport.ErrPeerGone},
		{"canceled", context.Canceled},
		{"deadline", context.DeadlineExceeded},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

// corruptions are what the corrupter can do to a segment's header or
// trailer; arg is the case's parameter.
var corruptions = map[string]func(s *segment, arg string) error{
	"nbytes":  func(s *segment, arg string) error { return putArg(s, offNBytes, arg) },
	"ybytes":  func(s *segment, arg string) error { return putArg(s, offYBytes, arg) },
	"shmsize": func(s *segment, arg string) error { return putArg(s, offShmSize, arg) },
	"pid":     func(s *segment, arg string) error { return putArg(s, offPID, arg) },
	// nbytes one past the mapped segment, whatever the page size.
	"nbytes past segment": func(s *segment, _ string) error {
		s.put(offNBytes, int32(s.capacity()+1))
		return nil
	},
	// The corrupter's own pid: a process gone by the time it is read.
	"pid exited": func(s *segment, _ string) error {
		s.put(offPID, int32(os.Getpid()))
		return nil
	},
	"whom": func(s *segment, arg string) error {
		if len(arg) >= whomLen {
			return fmt.Errorf("name %q too long for the header", arg)
		}
		clear(s.mem[offWhom : offWhom+whomLen])
		copy(s.mem[offWhom:], arg)
		return nil
	},
	"whom unterminated": func(s *segment, _ string) error {
		for i := range whomLen {
			s.mem[offWhom+i] = 'A'
		}
		return nil
	},
	// arg is "NAME PID": another sender's whole identity.
	"whom and pid": func(s *segment, arg string) error {
		name, pid, _ := strings.Cut(arg, " ")
		clear(s.mem[offWhom : offWhom+whomLen])
		copy(s.mem[offWhom:], name)
		return putArg(s, offPID, pid)
	},
	"header 0xff": func(s *segment, _ string) error {
		for i := range HeaderSize {
			s.mem[i] = 0xff
		}
		return nil
	},
	"claim": func(s *segment, arg string) error {
		v, err := strconv.ParseUint(arg, 0, 64)
		if err != nil {
			return err
		}
		atomic.StoreUint64(sys.Uint64At(s.mem, len(s.mem)-8), v)
		return nil
	},
	"magic": func(s *segment, _ string) error {
		atomic.StoreUint64(sys.Uint64At(s.mem, len(s.mem)-offMagic), 0xdeadbeefdeadbeef)
		return nil
	},
}

func putArg(s *segment, off int, arg string) error {
	v, err := strconv.ParseInt(arg, 0, 32)
	if err != nil {
		return err
	}
	s.put(off, int32(v))
	return nil
}

// runCorrupter (CPID MSG KIND ARG) finds the one segment made by process
// CPID that holds the request MSG (nbytes and data), applies corruption
// KIND with ARG to it and prints "corrupted ID SIZE".
func runCorrupter(args []string) error {
	cpid, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	msg, kind, arg := args[1], args[2], args[3]
	corrupt, ok := corruptions[kind]
	if !ok {
		return fmt.Errorf("no corruption %q", kind)
	}
	all, err := sys.ShmList()
	if err != nil {
		return err
	}
	holds := func(mem []byte) bool {
		s := segment{mem: mem}
		return len(mem) >= HeaderSize+len(msg) && int(s.get(offNBytes)) == len(msg) && string(s.data(len(msg))) == msg
	}
	var found []int
	for _, info := range all {
		if info.CPID != cpid {
			continue
		}
		mem, err := sys.ShmAttach(info.ID)
		if err != nil {
			continue // gone meanwhile
		}
		if holds(mem) {
			found = append(found, info.ID)
		}
		sys.ShmDetach(mem)
	}
	if len(found) != 1 {
		return fmt.Errorf("segments of pid %d holding %q: %v, want exactly one", cpid, msg, found)
	}
	mem, err := sys.ShmAttach(found[0])
	if err != nil {
		return err
	}
	defer sys.ShmDetach(mem)
	if err := corrupt(&segment{id: found[0], mem: mem}, arg); err != nil {
		return err
	}
	fmt.Printf("corrupted %d %d\n", found[0], len(mem))
	return nil
}

// quickExit is the environment that spares a helper built with -race the
// race runtime's second of sleep at exit (a corrupter runs per case).
func quickExit() []string {
	return []string{"GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
}

// corruptPeer is a corruptsender helper.
type corruptPeer struct {
	name  string
	pid   int
	p     *proctest.Proc
	in    io.WriteCloser
	lines chan string // its stdout, closed at its end
}

func startCorruptPeer(t *testing.T, dir, name, to string) *corruptPeer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), proctest.Env("corruptsender", dir, name, to)...), quickExit()...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.StartCmd(t, cmd)
	c := &corruptPeer{name: name, pid: p.PID(), p: p, in: in, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		for {
			line, err := p.Stdout.ReadString('\n')
			if err != nil {
				return
			}
			c.lines <- strings.TrimRight(line, "\n")
		}
	}()
	// Before StartCmd's own cleanup (which reads what is left of stdout):
	// end the helper, then the reader above.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		for range c.lines {
		}
	})
	if l := c.line(t, helperTimeout); l != "ready" {
		t.Fatalf("sender %s: %q, want ready; stderr: %s", name, l, p.Stderr())
	}
	return c
}

func (c *corruptPeer) do(t *testing.T, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		t.Fatalf("sender %s: %s: %v; stderr: %s", c.name, cmd, err, c.p.Stderr())
	}
}

// line is the helper's next line of output, within d.
func (c *corruptPeer) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("sender %s exited; stderr: %s", c.name, c.p.Stderr())
		}
		return l
	case <-time.After(d):
		t.Fatalf("sender %s: its Send did not end within %v (hung?); stderr: %s", c.name, d, c.p.Stderr())
	}
	return ""
}

// quiet fails the test if the helper prints anything (its Send ends)
// within d. A negative check over a window, called once the receiver has
// decided (dropped the doorbell, or failed its Reply): it cannot fail
// unless an answer really reached the sender; d gives a stray ring, made
// before that decision, time to reach the helper and show.
func (c *corruptPeer) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l := <-c.lines:
		t.Errorf("sender %s: %q, want its Send still waiting", c.name, l)
	case <-time.After(d):
	}
}

// quit ends the helper and waits for its exit.
func (c *corruptPeer) quit(t *testing.T) {
	t.Helper()
	c.do(t, "quit")
	c.in.Close()
	select {
	case l, ok := <-c.lines:
		if ok {
			t.Errorf("sender %s: %q at quit", c.name, l)
		}
	case <-time.After(helperTimeout):
		t.Fatalf("sender %s did not exit within %v", c.name, helperTimeout)
	}
	if err := c.p.Wait(helperTimeout); err != nil {
		t.Errorf("sender %s: %v", c.name, err)
	}
}

// isFrom tells whether whom is name or one of its auxiliary identities.
func isFrom(whom, name string) bool { return whom == name || naming.IsAuxOf(whom, name) }

// queued is how many bytes wait unread in ep's receive FIFO.
func queued(t *testing.T, ep *Endpoint) int {
	t.Helper()
	var n int
	var err error
	ep.rxControl(func(fd int) { n, err = unix.IoctlGetInt(fd, unix.TIOCINQ) })
	if err != nil {
		t.Fatalf("FIONREAD (TIOCINQ): %v", err)
	}
	return n
}

// receiveReq receives one request on ep within helperTimeout.
func receiveReq(t *testing.T, ep *Endpoint, what string) transport.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	req, proxy, err := ep.Receive(ctx)
	if err != nil {
		t.Fatalf("receiver: no %s within %v: %v", what, helperTimeout, err)
	}
	if !req.Valid() {
		t.Fatalf("receiver: proxy %d, want %s", proxy, what)
	}
	return req
}

// roundTrip has c send msg, serves it on ep and checks the reply.
func (c *corruptPeer) roundTrip(t *testing.T, ep *Endpoint, msg string) transport.Request {
	t.Helper()
	c.do(t, "send "+msg)
	r := receiveReq(t, ep, msg)
	whom, pid := r.Sender()
	if !isFrom(whom, c.name) || pid != c.pid || string(r.Data()) != msg {
		t.Fatalf("received %q from %s (pid %d), want %q from %s (pid %d)", r.Data(), whom, pid, msg, c.name, c.pid)
	}
	if err := r.Reply([]byte("re:" + msg)); err != nil {
		t.Fatalf("Reply to %s: %v", c.name, err)
	}
	if l := c.line(t, helperTimeout); l != "reply re:"+msg {
		t.Fatalf("sender %s: %q, want %q", c.name, l, "reply re:"+msg)
	}
	return r
}

type corruptOutcome int

const (
	served       corruptOutcome = iota // delivered to Receive and answered
	refused                            // answered -1 at once: the Send fails
	dropped                            // dropped unanswered: the Send ends by its context
	unanswerable                       // delivered, but its reply FIFO does not exist
)

func (o corruptOutcome) String() string {
	return [...]string{"served", "refused", "dropped", "unanswerable"}[o]
}

// corruptMaxMessage is the receiver's MaxMessage: less than a segment's
// capacity, so an nbytes can lie within the segment and still be too
// large for the receiver.
const corruptMaxMessage = 2048

// corruptEnv is what a case's argument may depend on.
type corruptEnv struct {
	receiver, a, b *corruptPeer
	recvPID        int
	token          uint64
}

type corruptCase struct {
	name string
	kind string
	arg  func(e corruptEnv) string
	// private is the outcome at a 0600 receiver, and at a public (0666)
	// one too unless publicDrops: the claim is checked there only.
	private     corruptOutcome
	publicDrops bool
	// refused: the Send's error class and a word of its message.
	class, says string
	// served: check the request; reply with reply (default "re:"+msg)
	// and expect the sender's line want (default "reply "+reply).
	check func(t *testing.T, r transport.Request, size int)
	reply string
	want  string
	// unanswerable: the name the request is delivered from.
	from string
}

func lit(s string) func(corruptEnv) string { return func(corruptEnv) string { return s } }

func corruptCases() []corruptCase {
	room := func(size int) int { return size - HeaderSize - trailerSize }
	capReply := func(t *testing.T, r transport.Request, size int) {
		if got := r.MaxReply(); got != room(size) {
			t.Errorf("MaxReply %d, want %d: capped to the segment less its trailer", got, room(size))
		}
	}
	tooBig := strings.Repeat("x", 100) // more than the sender's 64-byte buffer, within the segment
	bad := func(name, kind, arg string) corruptCase {
		return corruptCase{name: name, kind: kind, arg: lit(arg), private: refused, class: "badmessage", says: "refused the header"}
	}
	drop := func(name, kind string, arg func(corruptEnv) string) corruptCase {
		return corruptCase{name: name, kind: kind, arg: arg, private: dropped}
	}
	serve := func(name, kind, arg string) corruptCase {
		return corruptCase{name: name, kind: kind, arg: lit(arg), private: served}
	}
	pidOf := func(p func(corruptEnv) int) func(corruptEnv) string {
		return func(e corruptEnv) string { return strconv.Itoa(p(e)) }
	}
	return []corruptCase{
		// Sizes.
		bad("nbytes -1", "nbytes", "-1"),
		bad("nbytes MinInt32", "nbytes", strconv.Itoa(math.MinInt32)),
		bad("nbytes past the segment", "nbytes past segment", ""),
		bad("nbytes 1<<30", "nbytes", strconv.Itoa(1<<30)),
		bad("nbytes MaxInt32", "nbytes", strconv.Itoa(math.MaxInt32)),
		{name: "nbytes over MaxMessage", kind: "nbytes", arg: lit("3000"), private: refused, class: "toolarge", says: "too large"},
		{name: "nbytes within the segment", kind: "nbytes", arg: lit("1500"), private: served,
			check: func(t *testing.T, r transport.Request, size int) {
				if len(r.Data()) != 1500 {
					t.Errorf("request of %d bytes, want the 1500 the header says", len(r.Data()))
				}
			}},
		bad("ybytes -1", "ybytes", "-1"),
		bad("ybytes MinInt32", "ybytes", strconv.Itoa(math.MinInt32)),
		{name: "ybytes 1<<30", kind: "ybytes", arg: lit(strconv.Itoa(1 << 30)), private: served,
			check: capReply, reply: tooBig, want: "err replytoolarge"},
		{name: "ybytes MaxInt32", kind: "ybytes", arg: lit(strconv.Itoa(math.MaxInt32)), private: served,
			check: capReply, reply: tooBig, want: "err replytoolarge"},
		serve("shmsize -1", "shmsize", "-1"),
		serve("shmsize 0", "shmsize", "0"),
		serve("shmsize MaxInt32", "shmsize", strconv.Itoa(math.MaxInt32)),

		// The sender's pid.
		drop("pid 0", "pid", lit("0")),
		drop("pid -1", "pid", lit("-1")),
		drop("pid MinInt32", "pid", lit(strconv.Itoa(math.MinInt32))),
		drop("pid of another sender", "pid", pidOf(func(e corruptEnv) int { return e.b.pid })),
		drop("pid of the receiver", "pid", pidOf(func(e corruptEnv) int { return e.recvPID })),
		drop("pid 1", "pid", lit("1")),
		drop("pid of an exited process", "pid exited", lit("")),
		drop("name and pid of another sender", "whom and pid", func(e corruptEnv) string {
			return fmt.Sprintf("%s %d", e.b.name, e.b.pid)
		}),

		// The sender's name.
		drop("name not NUL-terminated", "whom unterminated", lit("")),
		drop("name empty", "whom", lit("")),
		drop("name ..", "whom", lit("..")),
		drop("name with /", "whom", lit("A/B")),
		drop("name ../", "whom", lit("../A")),
		drop("auxiliary name with ../", "whom", lit("A#/../../tmp/x")),
		drop("auxiliary name #0", "whom", lit("A#0")),
		drop("auxiliary name without k", "whom", lit("A#")),
		drop("auxiliary name #k#k", "whom", lit("A#1#2")),
		drop("name with a control byte", "whom", lit("A\x01")),
		drop("header all 0xff", "header 0xff", lit("")),
		{name: "name of another sender", kind: "whom", arg: lit("B"), private: unanswerable, from: "B"},

		// gosimpl's trailer: only a public receiver needs the claim.
		{name: "claim garbage", kind: "claim", arg: lit("0x0123456789abcdef"), private: served, publicDrops: true},
		{name: "claim 0", kind: "claim", arg: lit("0"), private: served, publicDrops: true},
		{name: "claim of another receiver", kind: "claim", arg: func(e corruptEnv) string { return strconv.FormatUint(e.token+1, 10) },
			private: served, publicDrops: true},
		{name: "trailer magic garbage", kind: "magic", arg: lit(""), private: served, publicDrops: true},
	}
}

// TestCorruptHeader: every corruption of corruptCases, made by a third
// process while the doorbell waits, at a private (0600) and at a public
// (0666) receiver. After each the same sender and another one are served
// normally; at the end nothing is left: no FIFO, no segment (of the
// senders or of this process), no mapping, no descriptor.
func TestCorruptHeader(t *testing.T) {
	t.Run("private", func(t *testing.T) { testCorruptHeader(t, 0) })
	t.Run("public", func(t *testing.T) { testCorruptHeader(t, 0o666) })
}

func testCorruptHeader(t *testing.T, perm os.FileMode) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Attach("SRV", Options{Registry: reg, Perm: perm, MaxMessage: corruptMaxMessage, ThreadReceive: threadRx()})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	public := perm&0o002 != 0
	if got := ep.fifoMode&0o002 != 0; got != public {
		t.Fatalf("receive FIFO mode %o", ep.fifoMode)
	}
	a := startCorruptPeer(t, dir, "A", "SRV")
	b := startCorruptPeer(t, dir, "B", "SRV")
	env := corruptEnv{a: a, b: b, recvPID: os.Getpid(), token: ep.token}

	// Warm up: each sender's segment is attached and its reply FIFO open,
	// as for a sender in the middle of a conversation.
	for _, p := range []*corruptPeer{a, b} {
		r := p.roundTrip(t, ep, "warm-"+p.name)
		ep.mu.Lock()
		h, _ := r.Handle()
		needClaim := h.(*Request).seg.needClaim
		ep.mu.Unlock()
		if needClaim != public {
			t.Fatalf("needClaim %v at a receiver of mode %o", needClaim, perm)
		}
	}
	var corrupters []int
	for i, tc := range corruptCases() {
		want := tc.private
		if public && tc.publicDrops {
			want = dropped
		}
		ok := t.Run(tc.name, func(t *testing.T) {
			corrupters = append(corrupters, corruptOne(t, ep, env, tc, want, i))
		})
		if !ok {
			break // what follows would fail for the same reason
		}
	}
	a.quit(t)
	b.quit(t)
	ep.Close()
	proctest.CheckNoSegments(t, append(corrupters, a.pid, b.pid)...)
}

// corruptPlug is the proxy that holds the receiver's reader.
const corruptPlug = 77

// corruptOne runs one case and returns the corrupter's pid.
func corruptOne(t *testing.T, ep *Endpoint, env corruptEnv, tc corruptCase, want corruptOutcome, i int) int {
	a := env.a
	dropped0 := ep.Dropped()

	// Plug the reader: it takes a proxy and waits for a Receive (after a
	// proxy it waits for its credit before it reads on: see readAhead).
	// Read on Receive's thread (threadWait), the FIFO is read only when
	// a Receive asks: the plug stays in it, before the doorbell.
	ringWith(t, ep, -corruptPlug)
	plug := 0
	if ep.threadRx {
		plug = 4
	} else {
		waitFor(t, "the receiver's reader taking the plug", func() bool { return queued(t, ep) == 0 })
	}

	// The sender rings; its doorbell stays in the FIFO.
	msg := fmt.Sprintf("bad-%d", i)
	a.do(t, "send "+msg)
	waitFor(t, "the sender's doorbell in the FIFO", func() bool { return queued(t, ep) >= plug+4 })
	if n := queued(t, ep); n != plug+4 {
		t.Fatalf("%d bytes in the receive FIFO, want the one doorbell", n-plug)
	}

	// The third process corrupts the segment.
	cp := proctest.StartNoWait(t, "corrupter", quickExit(), strconv.Itoa(a.pid), msg, tc.kind, tc.arg(env))
	line := cp.Expect("corrupted", helperTimeout)
	if err := cp.Wait(helperTimeout); err != nil {
		t.Fatalf("corrupter: %v", err)
	}
	var id, size int
	if _, err := fmt.Sscanf(line, "corrupted %d %d", &id, &size); err != nil {
		t.Fatalf("corrupter: %q: %v", line, err)
	}
	if queued(t, ep) != plug+4 {
		t.Fatal("the doorbell was read before the corruption was done")
	}

	// Release the reader: the plug, then the corrupted doorbell.
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	req, proxy, err := ep.Receive(ctx)
	cancel()
	if err != nil || req.Valid() || proxy != corruptPlug {
		t.Fatalf("receive the plug: %v, proxy %d, %v", req, proxy, err)
	}

	switch want {
	case served:
		r := receiveReq(t, ep, "the request")
		whom, pid := r.Sender()
		if !isFrom(whom, a.name) || pid != a.pid || segmentOf(r) != id {
			t.Fatalf("received from %s (pid %d), segment %d; want %s (pid %d), segment %d", whom, pid, segmentOf(r), a.name, a.pid, id)
		}
		if !strings.HasPrefix(string(r.Data()), msg) {
			t.Errorf("received %q, want %q", r.Data(), msg)
		}
		if tc.check != nil {
			tc.check(t, r, size)
		}
		reply, wantLine := tc.reply, tc.want
		if reply == "" {
			reply = "re:" + msg
		}
		if wantLine == "" {
			wantLine = "reply " + reply
		}
		if err := r.Reply([]byte(reply)); err != nil {
			t.Errorf("Reply: %v", err)
		}
		if l := a.line(t, helperTimeout); !strings.HasPrefix(l, wantLine) {
			t.Errorf("sender: %q, want %q", l, wantLine)
		}
		if n := ep.Dropped(); n != dropped0 {
			t.Errorf("%d doorbells dropped, want none", n-dropped0)
		}
	case refused:
		waitRead(t, ep, "the refusal counted", func() bool { return ep.Dropped() == dropped0+1 })
		l := a.line(t, helperTimeout)
		if !strings.HasPrefix(l, "err "+tc.class+" ") || !strings.Contains(l, tc.says) {
			t.Errorf("sender: %q, want err %s (%q)", l, tc.class, tc.says)
		}
		receiveNothing(t, ep)
	case dropped, unanswerable:
		if want == dropped {
			expectDropped(t, ep, dropped0+1)
		} else {
			r := receiveReq(t, ep, "the request")
			whom, pid := r.Sender()
			if whom != tc.from || pid != a.pid {
				t.Fatalf("received from %s (pid %d), want %s (pid %d)", whom, pid, tc.from, a.pid)
			}
			if cred, _ := r.Cred(); cred.PID != a.pid {
				t.Errorf("Cred pid %d, want %d", cred.PID, a.pid)
			}
			if err := r.Reply([]byte("re:" + msg)); !errors.Is(err, transport.ErrPeerGone) {
				t.Errorf("Reply: %v, want ErrPeerGone (no reply FIFO Y%s.%d)", err, tc.from, a.pid)
			}
			if n := ep.Dropped(); n != dropped0 {
				t.Errorf("%d doorbells dropped, want none", n-dropped0)
			}
		}
		// No answer comes; the Send ends when its context does.
		a.quiet(t, 100*time.Millisecond)
		a.do(t, "cancel")
		if l := a.line(t, helperTimeout); !strings.HasPrefix(l, "err canceled ") {
			t.Errorf("sender after cancel: %q, want err canceled", l)
		}
	}
	ep.mu.Lock()
	pending := len(ep.pending)
	ep.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d requests still pending in the receiver", pending)
	}

	// The receiver goes on: the same sender, then another one (which was
	// rung by no one meanwhile: a stray -1 would fail its Send).
	a.roundTrip(t, ep, fmt.Sprintf("good-A-%d", i))
	env.b.roundTrip(t, ep, fmt.Sprintf("good-B-%d", i))
	return cp.PID()
}

// expectDropped waits until ep has dropped n doorbells in all, failing
// the test if it delivers a request instead, and then checks that nothing
// is delivered.
func expectDropped(t *testing.T, ep *Endpoint, n int64) {
	t.Helper()
	deadline := time.Now().Add(helperTimeout)
	for ep.Dropped() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the doorbell neither dropped nor delivered within %v", helperTimeout)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		req, proxy, err := ep.Receive(ctx)
		cancel()
		if err == nil {
			who, pid := "", 0
			if req.Valid() {
				who, pid = req.Sender()
				req.ReplyError()
			}
			t.Fatalf("delivered a request from %q (pid %d), proxy %d; want the doorbell dropped", who, pid, proxy)
		}
	}
	if got := ep.Dropped(); got != n {
		t.Errorf("dropped %d doorbells, want %d", got, n)
	}
	receiveNothing(t, ep)
}

// TestCheckWhomAux: an auxiliary identity is a name, '#' and k >= 1, as
// naming.AuxWhom makes them; nothing else after '#' (it becomes part of a
// file name).
func TestCheckWhomAux(t *testing.T) {
	for _, whom := range []string{"A", "A#1", "A#12", naming.AuxWhom(strings.Repeat("N", naming.MaxNameLen), 3)} {
		if err := checkWhom(whom); err != nil {
			t.Errorf("checkWhom(%q): %v", whom, err)
		}
	}
	for _, whom := range []string{"", "#1", "A#", "A#0", "A#-1", "A#01", "A#1#2", "A#x", "A#/../x", "A#1/..", "../A"} {
		if err := checkWhom(whom); !errors.Is(err, transport.ErrBadMessage) {
			t.Errorf("checkWhom(%q): %v, want ErrBadMessage", whom, err)
		}
	}
}
