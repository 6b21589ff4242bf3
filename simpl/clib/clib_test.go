package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/testmain"
	"github.com/gosimpl/gosimpl/naming"
)

// The tests build the library (c-shared and c-archive) and C programs
// against it once per test binary, into binDir, and run them as real
// processes, each test in a FIFO directory of its own.

const ciEnv = "GOSIMPL_CI"

// binDir holds what the tests build; made before the tests run (outside
// their own $TMPDIR, which testmain checks is left empty) and removed
// after them.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gosimpl-clib-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	code := testmain.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cannotRun skips a test that lacks what it needs, or fails it under CI
// (GOSIMPL_CI=1), where everything it needs is installed.
func cannotRun(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(ciEnv) == "1" {
		t.Fatalf("%s; %s=1 (CI, which installs gcc) requires this test to run", why, ciEnv)
	}
	t.Skipf("%s; CI (.ci/run) installs gcc and runs it", why)
}

// The programs built, in binDir: the samples against libsimpl.so, probe
// and own also against libsimpl.a (probe-a, own-a), and cpeer, an unported C SIMPL peer
// that speaks C SIMPL's FIFO wire by itself.
var programs = []string{"sender", "receiver", "relay", "proxy", "probe", "misc", "own", "logger", "logit", "threads", "zerocopy"}

var (
	buildOnce sync.Once
	buildErr  error
	noCC      bool
)

// The exact commands docs/porting-csimpl.md gives, with -o and warnings as
// errors added.
func buildAll() error {
	if _, err := exec.LookPath("cc"); err != nil {
		noCC = true
		return err
	}
	run := func(name string, args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		// The library never has the race detector: the shared-memory
		// transport's futex hand-offs are invisible to it (see GUIDE), and
		// a C program has no race runtime to link anyway.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("go", "build", "-buildmode=c-shared", "-o", filepath.Join(binDir, "libsimpl.so"), "."); err != nil {
		return err
	}
	if err := run("go", "build", "-buildmode=c-archive", "-o", filepath.Join(binDir, "libsimpl.a"), "."); err != nil {
		return err
	}
	for _, p := range programs {
		if err := run("cc", "-Wall", "-Werror", "-I", "include", filepath.Join("testdata", p+".c"), "-L", binDir, "-lsimpl", "-o", filepath.Join(binDir, p)); err != nil {
			return err
		}
	}
	for _, p := range []string{"probe", "own"} {
		if err := run("cc", "-Wall", "-Werror", "-I", "include", filepath.Join("testdata", p+".c"), filepath.Join(binDir, "libsimpl.a"), "-lpthread", "-ldl", "-o", filepath.Join(binDir, p+"-a")); err != nil {
			return err
		}
	}
	cpeer := filepath.Join("..", "..", "internal", "transport", "fifo", "testdata", "cpeer.c")
	return run("cc", "-O1", "-Wall", "-Werror", "-o", filepath.Join(binDir, "cpeer"), cpeer)
}

func built(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() { buildErr = buildAll() })
	if noCC {
		cannotRun(t, "no C compiler (cc) on PATH: the drop-in library's tests build C programs")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// prog is one running program with its stdin.
type prog struct {
	*proctest.Proc
	stdin io.WriteCloser
}

// start runs program name from binDir in FIFO directory dir, with env
// added to its environment.
func start(t *testing.T, dir string, env []string, name string, args ...string) *prog {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir, "LD_LIBRARY_PATH="+binDir)
	cmd.Env = append(cmd.Env, env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &prog{proctest.StartCmd(t, cmd), in}
	t.Cleanup(func() { in.Close() })
	return p
}

// expectLine reads the next line and fails unless it is want.
func (p *prog) expectLine(t *testing.T, want string, d time.Duration) {
	t.Helper()
	if got := p.ReadLine(d); got != want {
		t.Fatalf("%s: got %q, want %q; stderr: %s", filepath.Base(p.Cmd.Path), got, want, p.Stderr())
	}
}

// output reads the program's whole output, killing it and failing the
// test if it has not ended within d.
func (p *prog) output(t *testing.T, d time.Duration) []byte {
	t.Helper()
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(p.Stdout)
		ch <- b
	}()
	select {
	case b := <-ch:
		return b
	case <-time.After(d):
		p.Cmd.Process.Kill()
		b := <-ch
		t.Fatalf("%s did not end within %v; output:\n%s", filepath.Base(p.Cmd.Path), d, b)
		return nil
	}
}

// exits waits for the program's end and fails unless its status is code.
func (p *prog) exits(t *testing.T, code int) {
	t.Helper()
	err := p.Wait(10 * time.Second)
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", filepath.Base(p.Cmd.Path), err)
	}
	if got != code {
		t.Fatalf("%s exited with %d, want %d: %v", filepath.Base(p.Cmd.Path), got, code, err)
	}
}

// exitsQuietly waits for the program's end, after its exit function has
// printed its line, and fails unless it prints nothing more and exits
// with status 0.
func (p *prog) exitsQuietly(t *testing.T, d time.Duration) {
	t.Helper()
	if rest := p.output(t, d); len(rest) > 0 {
		t.Errorf("after its exit function %s printed %q", filepath.Base(p.Cmd.Path), rest)
	}
	p.exits(t, 0)
}

// receiverR builds the programs and starts the sample receiver as R in a
// FIFO directory of its own, ready (within wait).
func receiverR(t *testing.T, wait time.Duration) (string, *prog) {
	t.Helper()
	built(t)
	dir := proctest.Dir(t)
	r := start(t, dir, nil, "receiver", "-n", "R")
	r.expectLine(t, "ready", wait)
	return dir, r
}

// pattern and fnv32a are the sample programs' (testdata/common.h) and
// cpeer's.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

func fnv32a(b []byte) string {
	h := fnv.New32a()
	h.Write(b)
	return fmt.Sprintf("%08x", h.Sum32())
}

// msgLine is what receiver and cpeer print for a request of size bytes
// from whom (pid) accepting ybytes of reply.
func msgLine(whom string, pid, size, ybytes int) string {
	return fmt.Sprintf("msg %s %d %d %d %d %s", whom, pid, size, ybytes, max(size, ybytes), fnv32a(pattern(size)))
}

const commErr = "receive/reply problem ... could be a failed receiver"

// probeChecks is how many checks testdata/probe.c makes.
const probeChecks = 64

// TestProbe runs probe's checks, from C, against the shared library and
// the static archive: layouts and macros as compiled, error texts and
// their stickiness, truncation, proxy encoding through Receive and
// whatsMyRecvfd, bad input from C, and fork without exec.
func TestProbe(t *testing.T) {
	built(t)
	long := "abcdefghijklmnopqrstuvwxyz0123456789ABCD" // 40 bytes
	for _, bin := range []string{"probe", "probe-a"} {
		t.Run(bin, func(t *testing.T) {
			dir := proctest.Dir(t)
			p := start(t, dir, nil, bin, "checks", long)
			out := p.output(t, 30*time.Second)
			p.exits(t, 0)
			out = append([]byte("\n"), out...)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if lines[len(lines)-1] != "done" || bytes.Contains(out, []byte("FAIL")) {
				t.Fatalf("probe:\n%s", out)
			}
			// Every check ran and passed, not just no failure printed.
			for _, c := range []string{"fcmsg_rec layout", "macros", "initial error", "truncation", "sticky",
				"proxy encoding", "shutdown encoding", "recvfd pending", "recvfd drained", "Send negative size",
				"Reply unknown handle", "Receive NULL handle", "fork child", "fork parent", "name_detach twice",
				"signals after detach", "simplCheckProcess unterminated"} {
				if !bytes.Contains(out, []byte("\nok "+c+"\n")) {
					t.Errorf("no %q in:\n%s", "ok "+c, out)
				}
			}
			if n := bytes.Count(out, []byte("\nok ")); n != probeChecks {
				t.Errorf("%d checks passed, want every one of probe's %d:\n%s", n, probeChecks, out)
			}
			if !bytes.Contains(out, []byte("\nname "+long[:31]+"\n")) {
				t.Errorf("attached name not %q:\n%s", long[:31], out)
			}
		})
	}
}

// TestFIFOPath: the name's FIFOs go in $FIFO_PATH, with the name cut to
// 31 bytes, and go at name_detach or at exit() without it; a missing
// directory and one longer than 127 bytes fail with C SIMPL's codes; a
// name in use is refused.
func TestFIFOPath(t *testing.T) {
	built(t)
	dir := proctest.Dir(t)
	long := strings.Repeat("n", 40)
	p := start(t, dir, nil, "probe", "attach", long)
	p.expectLine(t, "attach 0 no error "+long[:31], 10*time.Second)
	for _, f := range []string{long[:31], "Y" + long[:31]} {
		path := filepath.Join(dir, f+"."+strconv.Itoa(p.PID()))
		if st, err := os.Stat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("FIFO %s: %v, %v", path, err, st)
		}
	}
	q := start(t, dir, nil, "probe", "attach", long+"xyz")
	q.expectLine(t, "attach -1 simpl name is probably in use -", 10*time.Second)
	q.exits(t, 0)
	p.stdin.Close()
	p.exits(t, 0)

	// exit() without name_detach: the library's exit handler removes the
	// FIFOs (proctest.Dir checks the directory is left empty).
	e := start(t, dir, nil, "probe", "exit", "E")
	e.expectLine(t, "attach 0 no error E", 10*time.Second)
	if _, err := os.Stat(filepath.Join(dir, "E."+strconv.Itoa(e.PID()))); err != nil {
		t.Error(err)
	}
	e.stdin.Close()
	e.exits(t, 3)

	missing := start(t, filepath.Join(dir, "missing"), nil, "probe", "attach", "x")
	missing.expectLine(t, "attach -1 no simpl fifo path available - check export variable FIFO_PATH -", 10*time.Second)
	missing.exits(t, 0)
	tooLong := "/" + strings.Repeat("d", 127)
	tl := start(t, tooLong, nil, "probe", "attach", "x")
	tl.expectLine(t, "attach -1 FIFO_PATH too long -", 10*time.Second)
	tl.exits(t, 0)
}

// TestPortedPair: a ported sender and a ported receiver exchange
// messages through gosimpl's shared-memory transport. The proof is the
// System V segment a FIFO-transport sender must create (C SIMPL's wire
// carries every message in one): the sender has none, while the same
// programs forced onto the FIFO transport (the control) have one. The
// receiver ends on SIGTERM as a C SIMPL one does: its exit function runs,
// its FIFOs go, status 0.
func TestPortedPair(t *testing.T) {
	built(t)
	for _, tc := range []struct {
		transport string
		segments  bool
	}{{"auto", false}, {"fifo", true}} {
		t.Run(tc.transport, func(t *testing.T) {
			dir := proctest.Dir(t)
			env := []string{"GOSIMPL_TRANSPORT=" + tc.transport}
			for _, inplace := range []bool{false, true} {
				size := 1000
				args := []string{"-n", "R", "-t", "0"}
				if inplace {
					// Larger than a page: the area grows to hold it.
					size = 6000
					args = append(args, "-z")
				}
				sargs := []string{"-n", "S", "-r", "R", "-t", "50", "-s", strconv.Itoa(size), "-w"}
				if inplace {
					sargs = append(sargs, "-z")
				}
				r := start(t, dir, env, "receiver", args...)
				r.expectLine(t, "ready", 10*time.Second)
				s := start(t, dir, env, "sender", sargs...)
				s.expectLine(t, "ready", 10*time.Second)
				r.expectLine(t, msgLine("S", s.PID(), size, size+16), 10*time.Second)
				s.Expect("sent 50", 20*time.Second)
				segs := proctest.Segments(t, s.PID())
				if got := len(segs) > 0; got != tc.segments {
					t.Errorf("in place %v: sender's System V segments: %v, want some: %v", inplace, segs, tc.segments)
				}
				s.stdin.Close()
				s.exits(t, 0)
				pr := start(t, dir, env, "proxy", "-n", "P", "-r", "R", "-p", "5", "-p", "2147483647")
				pr.expectLine(t, "trigger 5", 10*time.Second)
				pr.expectLine(t, "trigger 2147483647", 10*time.Second)
				pr.exits(t, 0)
				r.Expect("proxy 5", 10*time.Second)
				r.expectLine(t, "proxy 2147483647", 10*time.Second) // PROXY_SHUTDOWN
				// As C SIMPL's: the exit function runs, the process
				// exits, and the program's thread, waiting in Receive,
				// never sees the name go (it printed a failed Receive
				// for every time round its loop until the exit).
				r.Signal(syscall.SIGTERM)
				r.expectLine(t, "exit function", 10*time.Second)
				r.exitsQuietly(t, 10*time.Second)
			}
		})
	}
}

// TestPortedErrors: failed exchanges between two ported programs (over
// shared memory) are reported as C SIMPL reports them, on both sides:
// ReplyError, a reply larger than the sender accepts, a request larger
// than the receiver's buffer.
func TestPortedErrors(t *testing.T) {
	const wait = 10 * time.Second
	dir, r := receiverR(t, wait)
	for _, tc := range []struct {
		args []string
		recv string // what the receiver prints last
	}{
		{[]string{"-x"}, "replyerror"},
		{[]string{"-s", "100", "-y", "10"}, "reply err reply message too large for sender buffer"},
		{[]string{"-s", "70000"}, "receive err received message too large for receiver buffer"},
	} {
		s := start(t, dir, nil, "sender", append([]string{"-n", "S", "-r", "R"}, tc.args...)...)
		s.Expect("err 0 "+commErr, wait)
		s.exits(t, 1)
		r.Expect(tc.recv, wait)
	}
	r.Signal(syscall.SIGTERM)
	r.exits(t, 0)
}

// TestPortedRelay: a relay among three ported programs, all over shared
// memory: the relayer forwards, the final receiver's reply reaches the
// original sender, and the relayer, which detaches right after Relay,
// waits for that first (so the sender is not failed).
func TestPortedRelay(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	dir := proctest.Dir(t)
	r := start(t, dir, nil, "receiver", "-n", "R", "-t", "1", "-h")
	r.expectLine(t, "ready", wait)
	rl := start(t, dir, nil, "relay", "-n", "RL", "-r", "R")
	rl.expectLine(t, "ready", wait)
	s := start(t, dir, nil, "sender", "-n", "S", "-r", "RL", "-s", "500")
	rl.expectLine(t, "relay S 500", wait)
	rl.expectLine(t, "relayed", wait)
	r.expectLine(t, msgLine("RL", rl.PID(), 500, 516), wait)
	// R answers only now; RL, done with its one request, has gone on to
	// name_detach meanwhile (almost always), which must wait for this.
	io.WriteString(r.stdin, "go\n")
	r.expectLine(t, "reply 516", wait)
	s.Expect("sent 1", wait)
	for _, p := range []*prog{s, r, rl} {
		p.exits(t, 0)
	}
}

// reap removes the FIFOs a SIGKILLed program leaves (as the next attach of
// its name, or fcshow -clean, would).
func reap(t *testing.T, dir string, names ...string) {
	t.Helper()
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := reg.Reap(n); err != nil {
			t.Error(err)
		}
	}
}

// TestUnportedPeer: ported programs and an unported C SIMPL program
// (cpeer, which speaks C SIMPL's FIFO wire itself) exchange messages,
// proxies and relays in both directions.
func TestUnportedPeer(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	t.Run("ported sender", func(t *testing.T) {
		dir := proctest.Dir(t)
		cp := start(t, dir, nil, "cpeer", "recv", "CP", "5")
		cp.expectLine(t, "ready", wait)
		s := start(t, dir, nil, "sender", "-n", "S", "-r", "CP", "-t", "3", "-s", "100")
		cp.expectLine(t, msgLine("S", s.PID(), 100, 116), wait)
		s.Expect("sent 3", wait)
		s.exits(t, 0)
		x := start(t, dir, nil, "sender", "-n", "SX", "-r", "CP", "-x")
		x.Expect("err 0 "+commErr, wait) // cpeer error-replies "X"
		x.exits(t, 1)
		pr := start(t, dir, nil, "proxy", "-n", "P", "-r", "CP", "-p", "7")
		pr.expectLine(t, "trigger 7", wait)
		pr.exits(t, 0)
		cp.Expect("proxy 7", wait)
		cp.exits(t, 0)
	})
	t.Run("ported receiver", func(t *testing.T) {
		dir := proctest.Dir(t)
		// The receiver waits in select() on whatsMyRecvfd().
		r := start(t, dir, nil, "receiver", "-n", "R", "-S")
		r.expectLine(t, "ready", wait)
		cs := start(t, dir, nil, "cpeer", "send", "CS", "R", "100", "1000", "X", "10:5")
		cs.expectLine(t, "ready", wait)
		cs.expectLine(t, "ok 100 116", wait)
		cs.expectLine(t, "ok 1000 1016", wait)
		cs.expectLine(t, "err X -1", wait)
		cs.expectLine(t, "err 10:5 -1", wait)
		cs.exits(t, 0)
		r.expectLine(t, msgLine("CS", cs.PID(), 100, 116), wait)
		r.expectLine(t, "reply 116", wait)
		r.expectLine(t, msgLine("CS", cs.PID(), 1000, 1016), wait)
		r.expectLine(t, "reply 1016", wait)
		r.Expect("replyerror", wait)
		r.Expect("reply err reply message too large for sender buffer", wait)
		ct := start(t, dir, nil, "cpeer", "trigger", "CT", "R", "9")
		ct.exits(t, 0)
		r.expectLine(t, "proxy 9", wait)
		r.Signal(syscall.SIGTERM)
		r.exits(t, 0)
	})
	t.Run("relay C to C", func(t *testing.T) {
		dir := proctest.Dir(t)
		cp := start(t, dir, nil, "cpeer", "recv", "CP", "1")
		cp.expectLine(t, "ready", wait)
		rl := start(t, dir, nil, "relay", "-n", "RL", "-r", "CP")
		rl.expectLine(t, "ready", wait)
		cs := start(t, dir, nil, "cpeer", "send", "CS", "RL", "200")
		cs.expectLine(t, "ready", wait)
		rl.expectLine(t, "relay CS 200", wait)
		rl.expectLine(t, "relayed", wait)
		// Handed over whole: cpeer sees the original sender, and its
		// reply reaches it.
		cp.expectLine(t, msgLine("CS", cs.PID(), 200, 216), wait)
		cs.expectLine(t, "ok 200 216", wait)
		for _, p := range []*prog{cs, cp, rl} {
			p.exits(t, 0)
		}
	})
	t.Run("relay ported to C", func(t *testing.T) {
		dir := proctest.Dir(t)
		cp := start(t, dir, nil, "cpeer", "recv", "CP", "1")
		cp.expectLine(t, "ready", wait)
		rl := start(t, dir, nil, "relay", "-n", "RL", "-r", "CP")
		rl.expectLine(t, "ready", wait)
		s := start(t, dir, nil, "sender", "-n", "S", "-r", "RL", "-s", "300")
		rl.expectLine(t, "relay S 300", wait)
		rl.expectLine(t, "relayed", wait)
		cp.Expect("msg ", wait)
		s.Expect("sent 1", wait)
		for _, p := range []*prog{s, cp, rl} {
			p.exits(t, 0)
		}
	})
	t.Run("relay C to ported", func(t *testing.T) {
		dir := proctest.Dir(t)
		r := start(t, dir, nil, "receiver", "-n", "R", "-t", "1")
		r.expectLine(t, "ready", wait)
		rl := start(t, dir, nil, "relay", "-n", "RL", "-r", "R")
		rl.expectLine(t, "ready", wait)
		cs := start(t, dir, nil, "cpeer", "send", "CS", "RL", "50")
		cs.expectLine(t, "ready", wait)
		rl.expectLine(t, "relay CS 50", wait)
		// The relayer reached R through shared memory, so it forwards the
		// request (simpl.Message.Relay) and R sees the relayer as its
		// sender; the answer still reaches the original sender.
		r.expectLine(t, msgLine("RL", rl.PID(), 50, 66), wait)
		r.expectLine(t, "reply 66", wait)
		cs.expectLine(t, "ok 50 66", wait)
		for _, p := range []*prog{cs, r, rl} {
			p.exits(t, 0)
		}
	})
}

// deadBound is how soon a ported program must learn that its peer was
// SIGKILLed (C SIMPL waits for ever). gosimpl's transports watch the peer
// with a pidfd and take milliseconds; the bound is generous for a loaded
// machine.
const deadBound = 5 * time.Second

// TestDeadPeer: a SIGKILLed receiver fails the ported sender's Send with
// COMMUNICATION_ERROR, on either transport; a SIGKILLed sender, ported or
// unported, fails the ported receiver's Reply (C SIMPL's open() of the
// dead sender's reply FIFO blocks for ever).
func TestDeadPeer(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	for _, tr := range []string{"auto", "fifo"} {
		t.Run("receiver killed/"+tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			env := []string{"GOSIMPL_TRANSPORT=" + tr}
			r := start(t, dir, env, "receiver", "-n", "R", "-h")
			r.expectLine(t, "ready", wait)
			s := start(t, dir, env, "sender", "-n", "S", "-r", "R")
			r.Expect("msg S", wait)
			t0 := time.Now()
			r.Kill()
			s.Expect("err 0 "+commErr, deadBound)
			t.Logf("Send failed %v after the kill", time.Since(t0))
			s.exits(t, 1)
			reap(t, dir, "R")
		})
	}
	for _, who := range []string{"sender", "cpeer"} {
		t.Run(who+" killed", func(t *testing.T) {
			dir := proctest.Dir(t)
			r := start(t, dir, nil, "receiver", "-n", "R", "-h", "-t", "1")
			r.expectLine(t, "ready", wait)
			var s *prog
			if who == "cpeer" {
				s = start(t, dir, nil, "cpeer", "send", "S", "R", "100")
			} else {
				s = start(t, dir, nil, "sender", "-n", "S", "-r", "R", "-s", "100")
			}
			r.expectLine(t, msgLine("S", s.PID(), 100, 116), wait)
			held := time.Now()
			s.Kill()
			heldFor(held)
			t0 := time.Now()
			io.WriteString(r.stdin, "go\n")
			r.expectLine(t, "reply err error in opening trigger fifo", deadBound)
			t.Logf("Reply failed %v after the go-ahead", time.Since(t0))
			r.exits(t, 0)
			reap(t, dir, "S")
		})
	}
}

// TestMisc: the libsimplmisc helpers C SIMPL programs call are in
// libsimpl: cksum agrees with cksum(1) (the POSIX algorithm), the nibble
// conversions round-trip and lay nibbles out most significant first; and
// a program with its own function of one of their names (power) links
// against either form of the library and calls its own.
func TestMisc(t *testing.T) {
	built(t)
	dir := proctest.Dir(t)
	file := filepath.Join(binDir, "libsimpl.so") // a few MB of anything
	want, err := exec.Command("cksum", file).Output()
	if err != nil {
		cannotRun(t, "cksum(1), the reference for cksum(): %v", err)
	}
	f := strings.Fields(string(want))
	p := start(t, dir, nil, "misc", file)
	p.expectLine(t, "cksum "+f[0]+" "+f[1], 10*time.Second)
	out := p.output(t, 30*time.Second)
	p.exits(t, 0)
	if !strings.HasSuffix(string(out), "done\n") || strings.Contains(string(out), "FAIL") || strings.Count(string(out), "ok ") != 12 {
		t.Errorf("misc, want 12 checks passed:\n%s", out)
	}
	for _, bin := range []string{"own", "own-a"} {
		o := start(t, dir, nil, bin)
		o.expectLine(t, "power 42 no error", 10*time.Second)
		o.exits(t, 0)
	}
}

// TestLogger: libsimpllog's helpers over the library: logit (which
// defines the logger globals, as such programs must) logs through fcLogx
// and logMsgx to an fclogger-style receiver, which reads each 200-byte
// record in place through its FCMSG_REC handle; a masked-out fcLogx sends
// nothing and returns 0.
func TestLogger(t *testing.T) {
	built(t)
	dir := proctest.Dir(t)
	lg := start(t, dir, nil, "logger", "-n", "LOG", "-t", "2")
	lg.expectLine(t, "ready", 10*time.Second)
	li := start(t, dir, nil, "logit", "-n", "me", "-l", "LOG", "-m", "hello")
	for _, want := range []string{"fcLogx 0", "logMsgx 0", "filtered 0"} {
		li.expectLine(t, want, 10*time.Second)
	}
	li.exits(t, 0)
	header := regexp.MustCompile(`^log 200 \[logit\.c :main        \] \d{6}\.\d{3} say hello$`)
	if got := lg.ReadLine(10 * time.Second); !header.MatchString(got) {
		t.Errorf("fcLogx record: %q, want %v", got, header)
	}
	lg.expectLine(t, "log 200 (logit.c) me:hello", 10*time.Second)
	lg.exits(t, 0)
}

// TestHeaders: the headers compile, all together, under every C standard
// a C SIMPL program may be built with, strict ISO modes included
// (-pedantic, warnings as errors), and are idempotent.
func TestHeaders(t *testing.T) {
	if _, err := exec.LookPath("cc"); err != nil {
		cannotRun(t, "no C compiler (cc) on PATH")
	}
	for _, std := range []string{"c89", "gnu89", "c99", "c11", "gnu17"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "cc", "-std="+std, "-pedantic", "-Wall", "-Wextra", "-Werror",
			"-I", "include", "-fsyntax-only", filepath.Join("testdata", "headers.c")).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("-std=%s: %v\n%s", std, err, out)
		}
	}
}

// TestThreads: Sends from four threads of one ported program at once, to
// a ported receiver and to an unported one, each thread getting its own
// replies.
func TestThreads(t *testing.T) {
	const wait = 20 * time.Second
	dir, r := receiverR(t, wait)
	th := start(t, dir, nil, "threads", "-n", "T", "-r", "R", "-T", "4", "-t", "200")
	th.expectLine(t, "threads ok 800", wait)
	th.exits(t, 0)
	r.Signal(syscall.SIGTERM)
	r.exits(t, 0)

	cp := start(t, dir, nil, "cpeer", "recv", "CP", "400")
	cp.expectLine(t, "ready", wait)
	th = start(t, dir, nil, "threads", "-n", "T", "-r", "CP", "-T", "4", "-t", "100")
	th.expectLine(t, "threads ok 400", wait)
	th.exits(t, 0)
	cp.exits(t, 0)
}

// TestExitFunctionWaits: on SIGTERM the exit function runs while the
// program's other threads go on: one that waits for threads still
// sending (threads -x) gets them back and returns, and the process then
// exits with status 0. (The library holds every thread that calls it
// only once the exit function has returned: held sooner, the threads
// here would never be joined.)
func TestExitFunctionWaits(t *testing.T) {
	const wait = 20 * time.Second
	dir, r := receiverR(t, wait)
	th := start(t, dir, nil, "threads", "-n", "T", "-r", "R", "-T", "4", "-x")
	th.expectLine(t, "running", wait)
	th.Signal(syscall.SIGTERM)
	line := th.ReadLine(wait)
	var n int
	if k, _ := fmt.Sscanf(line, "joined %d", &n); k != 1 || n < 4 {
		t.Fatalf("threads: %q after SIGTERM, want joined and at least 4 exchanges; stderr: %s", line, th.Stderr())
	}
	th.exitsQuietly(t, wait)
	r.Signal(syscall.SIGTERM)
	r.exits(t, 0)
}

// heldFor returns once the request the receiver took before since has
// been held 2*checkAfter. Reply checks that the sender lives (its pid)
// only for a request held checkAfter or more (senderGone); a prompter
// Reply to a sender just killed may beat the transport's own news of the
// death and succeed, which the tests of a Reply to a dead sender are not
// about. The hold is the behaviour's own threshold, not a wait for a
// state: nothing else tells when it has passed.
func heldFor(since time.Time) {
	time.Sleep(time.Until(since.Add(2 * checkAfter)))
}

// TestRelocate: a program that locates its receiver again before every
// Send, as C SIMPL programs that locate per request do, gets a new id
// each time (as C SIMPL a new descriptor) on the same connection while
// the receiver lives, not a new connection (a socket, a lane, a
// goroutine) each time: its descriptors stay as they were. Before, every
// name_locate made a connection that lived until name_detach (about 3
// descriptors each through shared memory), and a program that located
// per request ran out of descriptors (helper-40).
func TestRelocate(t *testing.T) {
	const wait = 10 * time.Second
	dir, r := receiverR(t, wait)
	s := start(t, dir, nil, "sender", "-n", "S", "-r", "R", "-t", "50", "-s", "64", "-l")
	s.expectLine(t, "ready", wait)
	for i := range 50 {
		if line := s.ReadLine(wait); !strings.HasPrefix(line, fmt.Sprintf("ok %d ", i)) {
			t.Fatalf("sender locating before each Send, Send %d: %q", i, line)
		}
	}
	var first, last int
	if line := s.ReadLine(wait); func() bool { _, err := fmt.Sscanf(line, "fds %d %d", &first, &last); return err != nil }() {
		t.Fatalf("sender: %q, want its descriptor counts", line)
	}
	if first < 0 || last > first+2 {
		t.Errorf("sender's descriptors: %d after the first Send, %d after 49 more locates and Sends", first, last)
	}
	s.expectLine(t, "sent 50", wait)
	s.exits(t, 0)
	r.Signal(syscall.SIGTERM)
	r.exits(t, 0)
}
