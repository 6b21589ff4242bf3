// End-to-end tests of the command-line tools: TestMain builds the real
// fcrecv, fcsend, fcshow and fcslay once, and each test drives them as a
// user would, in a FIFO directory of its own ($FIFO_PATH). Every test
// checks, when it ends, that no FIFO is left in that directory and that no
// System V segment created by the tools it ran remains.
package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/testmain"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// binDir holds the built tools.
var binDir string

// Time limits. They only bound hangs: no test asserts that anything is
// fast.
const (
	buildTimeout = 5 * time.Minute
	runTimeout   = 20 * time.Second // one short-lived tool run
	lineTimeout  = 10 * time.Second // one line from a running tool
	exitTimeout  = 10 * time.Second // a running tool's exit once asked
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gosimpl-tools-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	err = build(dir)
	code := 2
	if err == nil {
		binDir = dir
		code = testmain.Run(m)
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build builds every tool into dir, with the race detector when this test
// binary has it, so that races in the tools fail these tests too.
func build(dir string) error {
	if err := proctest.Build(dir+string(filepath.Separator), buildTimeout, nil, "./tools/..."); err != nil {
		return err
	}
	// fcrecv serves -metrics only when built with -tags metrics.
	if err := proctest.Build(filepath.Join(dir, "fcrecv-metrics"), buildTimeout, []string{"-tags", "metrics"}, "./tools/fcrecv"); err != nil {
		return err
	}
	for _, tool := range []string{"fcrecv", "fcrecv-metrics", "fcsend", "fcshow", "fcslay"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			return fmt.Errorf("go build ./tools/... made no %s: %v", tool, err)
		}
	}
	return nil
}

// env is one test's FIFO directory and the tools it ran there.
type env struct {
	t    *testing.T
	dir  string
	mu   sync.Mutex
	pids []int // every tool process, for the segment check
}

// newEnv makes the test's FIFO directory. When the test ends (after its
// tools were stopped: cleanups run last-registered first) it fails the test
// if a FIFO is left or a segment created by one of the tools remains.
// Call it first.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		simpltest.CheckDirEmpty(t, e.dir)
		e.mu.Lock()
		pids := slices.Clone(e.pids)
		e.mu.Unlock()
		simpltest.CheckNoSegments(t, pids...)
	})
	return e
}

func (e *env) addPID(pid int) {
	e.mu.Lock()
	e.pids = append(e.pids, pid)
	e.mu.Unlock()
}

// lastPID is the pid of the tool run last.
func (e *env) lastPID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pids[len(e.pids)-1]
}

// environ is the tools' environment: the test's FIFO directory, and the
// tools first on PATH so that shell command lines can name them.
// Race-enabled tools do not sleep a second at exit: a race they report
// still makes them exit 66 with the report on stderr, failing the test.
func (e *env) environ() []string {
	env := append(os.Environ(),
		"FIFO_PATH="+e.dir,
		"PATH="+binDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if os.Getenv("GORACE") == "" {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// command is tool with args in the test's environment, killed when ctx
// ends.
func (e *env) command(ctx context.Context, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, tool), args...)
	cmd.Env = e.environ()
	return cmd
}

// start starts a long-running tool; it is killed when the test ends if it
// is still running.
func (e *env) start(tool string, args ...string) *simpltest.Proc {
	e.t.Helper()
	p := simpltest.StartCmd(e.t, e.command(context.Background(), tool, args...))
	e.addPID(p.PID())
	return p
}

// result is how a short-lived command ended.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// run runs tool with args and stdin to completion, failing the test if it
// takes longer than runTimeout.
func (e *env) run(stdin, tool string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	return e.runCmd(ctx, e.command(ctx, tool, args...), stdin)
}

// sh runs a shell command line, with the tools on PATH.
func (e *env) sh(line string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Env = e.environ()
	return e.runCmd(ctx, cmd, "")
}

func (e *env) runCmd(ctx context.Context, cmd *exec.Cmd, stdin string) result {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Start()
	if err != nil {
		e.t.Fatalf("start %q: %v", cmd.Args, err)
	}
	e.addPID(cmd.Process.Pid)
	err = cmd.Wait()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		e.t.Fatalf("%q did not finish within %v (killed); stdout %q, stderr %q", cmd.Args, runTimeout, r.stdout, r.stderr)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		e.t.Fatalf("%q: %v; stdout %q, stderr %q", cmd.Args, err, r.stdout, r.stderr)
	}
	return r
}

// ok fails the test unless r is a success with nothing on stderr.
func (r result) ok(t *testing.T, what string) {
	t.Helper()
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%s: exit %d, stderr %q, stdout %q; want success", what, r.code, r.stderr, r.stdout)
	}
}

// failed checks that r is a failure (exit 1) reported in exactly one line
// on stderr, "TOOL: ...", that contains every string in want.
func (r result) failed(t *testing.T, tool string, want ...string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("%s: exit %d, want 1; stderr %q", tool, r.code, r.stderr)
	}
	checkOneLine(t, tool, r.stderr, want...)
}

// checkOneLine checks that stderr is one line, "TOOL: ...", that contains
// every string in want. The tool's prefix is the only one: the library's
// "simpl: " and "pubsub: " do not appear, nor "TOOL: " a second time.
func checkOneLine(t *testing.T, tool, stderr string, want ...string) {
	t.Helper()
	if !strings.HasPrefix(stderr, tool+": ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("%s: stderr %q, want exactly one line starting %q", tool, stderr, tool+": ")
	}
	for _, p := range []string{"simpl: ", "pubsub: ", tool + ": " + tool + ": "} {
		if strings.Contains(stderr, p) {
			t.Errorf("%s: stderr %q contains %q: one prefix, the tool's, is enough", tool, stderr, p)
		}
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: stderr %q does not mention %q", tool, stderr, w)
		}
	}
}

// expectLine reads p's next stdout line and fails the test unless it is
// want.
func expectLine(t *testing.T, p *simpltest.Proc, want string) {
	t.Helper()
	if got := p.ReadLine(lineTimeout); got != want {
		t.Fatalf("%v printed %q, want %q", p.Cmd.Args, got, want)
	}
}

// startRecv starts fcrecv with args and waits for its "attached" line.
func (e *env) startRecv(name string, args ...string) *simpltest.Proc {
	e.t.Helper()
	p := e.start("fcrecv", append([]string{"-n", name}, args...)...)
	expectLine(e.t, p, fmt.Sprintf("attached %s pid %d", name, p.PID()))
	return p
}

// stop sends sig to p and checks that it exits 0 with nothing on stderr.
func stop(t *testing.T, p *simpltest.Proc, sig syscall.Signal) {
	t.Helper()
	p.Signal(sig)
	if err := p.Wait(exitTimeout); err != nil {
		t.Errorf("%v after %v: %v, want exit 0", p.Cmd.Args, sig, err)
	}
	if s := p.Stderr(); s != "" {
		t.Errorf("%v after %v wrote %q on stderr", p.Cmd.Args, sig, s)
	}
}

// waitExit waits for p to exit by itself and returns its exit code.
func waitExit(t *testing.T, p *simpltest.Proc) int {
	t.Helper()
	p.Wait(exitTimeout)
	return p.Cmd.ProcessState.ExitCode()
}

// kill SIGKILLs p and reaps it.
func kill(t *testing.T, p *simpltest.Proc) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	p.Wait(exitTimeout)
}

// fifos lists the test's FIFO directory.
func (e *env) fifos() []string {
	e.t.Helper()
	des, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// waitFile waits until the FIFO directory holds base.
func (e *env) waitFile(base string) {
	e.t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for !slices.Contains(e.fifos(), base) {
		if time.Now().After(deadline) {
			e.t.Fatalf("no %s in the FIFO directory within %v: %v", base, lineTimeout, e.fifos())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clean runs fcshow -clean and checks that it removed at most n FIFOs and
// lists no names: every attach (a tool's own name included) may have
// swept some of the stale FIFOs first.
func (e *env) clean(n int) {
	e.t.Helper()
	r := e.run("", "fcshow", "-clean")
	r.ok(e.t, "fcshow -clean")
	var k int
	if _, err := fmt.Sscanf(r.stdout, "removed %d stale FIFOs\n", &k); err != nil || k < 0 || k > n ||
		!strings.HasSuffix(r.stdout, " stale FIFOs\nNAME  PID  STATE  UID  TRANSPORT  SINCE\n") {
		e.t.Errorf("fcshow -clean printed %q, want at most %d removed and no names left", r.stdout, n)
	}
	if left := e.fifos(); len(left) > 0 {
		e.t.Errorf("fcshow -clean left %v", left)
	}
}

// parseFrom splits fcrecv's "message from NAME pid PID: TEXT".
func parseFrom(line string) (name string, pid int, text string, ok bool) {
	rest, ok := strings.CutPrefix(line, "message from ")
	if !ok {
		return "", 0, "", false
	}
	name, rest, ok = strings.Cut(rest, " pid ")
	if !ok {
		return "", 0, "", false
	}
	p, text, ok := strings.Cut(rest, ": ")
	if !ok {
		return "", 0, "", false
	}
	pid, err := strconv.Atoi(p)
	return name, pid, text, err == nil
}

// TestPipeline is the README's example: lines piped into fcsend, each sent
// to a running fcrecv, the replies printed in order.
func TestPipeline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		replies string
	}{
		{"reply", []string{"-reply", "ok"}, "ok\nok\nok\n"},
		{"echo", nil, "one\ntwo\nthree\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			srv := e.startRecv("SRV", tc.args...)
			r := e.sh(`printf "one\ntwo\nthree\n" | fcsend -r SRV`)
			r.ok(t, "fcsend")
			if r.stdout != tc.replies {
				t.Errorf("fcsend printed %q, want %q", r.stdout, tc.replies)
			}
			// The sender's name is fcsend_PID, and PID is its pid.
			var sender string
			for _, want := range []string{"one", "two", "three"} {
				line := srv.ReadLine(lineTimeout)
				name, pid, text, ok := parseFrom(line)
				if !ok || text != want || name != "fcsend_"+strconv.Itoa(pid) || (sender != "" && name != sender) {
					t.Fatalf("fcrecv printed %q, want \"message from fcsend_PID pid PID: %s\" (sender %q)", line, want, sender)
				}
				sender = name
				e.addPID(pid)
			}
			stop(t, srv, syscall.SIGTERM)
		})
	}
}

// TestSendMessage covers -m: text, empty, binary and text that looks
// like hex, in both fcrecv's and fcsend's output; and lines of binary data
// read from standard input.
func TestSendMessage(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV")
	for _, tc := range []struct {
		msg, shown string
	}{
		{"hello", "hello"},
		{"tab\there, ünïcödé", "tab\there, ünïcödé"},
		{"", "(empty)"},
		{"\x01\x02\xffA", "hex:0102ff41"},
		{"two\nlines", "hex:74776f0a6c696e6573"},
		{"hex:41", "hex:6865783a3431"}, // not to be read as "A"
		{"(empty)", "hex:28656d70747929"},
	} {
		r := e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-m", tc.msg)
		r.ok(t, "fcsend -m "+strconv.Quote(tc.msg))
		if r.stdout != tc.shown+"\n" {
			t.Errorf("fcsend -m %q printed %q, want %q", tc.msg, r.stdout, tc.shown+"\n")
		}
		// The printed pid is the sender's.
		expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: %s", e.lastPID(), tc.shown))
	}

	// Binary lines, NUL included, through standard input.
	r := e.run("\x00\x01\nplain\n\xfe\n", "fcsend", "-n", "CLI", "-r", "SRV")
	r.ok(t, "fcsend < binary")
	if want := "hex:0001\nplain\nhex:fe\n"; r.stdout != want {
		t.Errorf("fcsend < binary printed %q, want %q", r.stdout, want)
	}
	pid := e.lastPID()
	for _, shown := range []string{"hex:0001", "plain", "hex:fe"} {
		expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: %s", pid, shown))
	}
	stop(t, srv, syscall.SIGINT)
}

// TestProxy: -p N shows up as "proxy N", and fcsend neither waits nor
// prints anything.
func TestProxy(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV")
	r := e.run("", "fcsend", "-r", "SRV", "-p", "7")
	r.ok(t, "fcsend -p 7")
	if r.stdout != "" {
		t.Errorf("fcsend -p 7 printed %q", r.stdout)
	}
	expectLine(t, srv, "proxy 7")
	// A request after the proxy is still answered: -p left nothing behind
	// that confuses the receiver.
	r = e.run("", "fcsend", "-r", "SRV", "-m", "after")
	r.ok(t, "fcsend -m after")
	if r.stdout != "after\n" {
		t.Errorf("fcsend -m after printed %q", r.stdout)
	}
	stop(t, srv, syscall.SIGTERM)
}

// TestCount: -count N exits 0 by itself after N messages and proxies,
// detached.
func TestCount(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-count", "2", "-reply", "done")
	e.run("", "fcsend", "-r", "SRV", "-p", "3").ok(t, "fcsend -p 3")
	r := e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-m", "x")
	r.ok(t, "fcsend -m x")
	if r.stdout != "done\n" {
		t.Errorf("fcsend printed %q, want %q", r.stdout, "done\n")
	}
	expectLine(t, srv, "proxy 3")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", e.lastPID()))
	if code := waitExit(t, srv); code != 0 {
		t.Errorf("fcrecv -count 2 exited %d after 2 messages, want 0; stderr %q", code, srv.Stderr())
	}
	// Gone: the name is free again.
	e.run("", "fcsend", "-r", "SRV", "-m", "y").failed(t, "fcsend", "not found", `"SRV"`)
}

// TestDelay: -delay D makes each reply take at least D.
func TestDelay(t *testing.T) {
	e := newEnv(t)
	const delay = 200 * time.Millisecond
	srv := e.startRecv("SRV", "-delay", delay.String(), "-reply", "slow")
	for i := range 2 {
		r := e.run("", "fcsend", "-r", "SRV", "-m", "x")
		r.ok(t, "fcsend")
		if r.stdout != "slow\n" {
			t.Errorf("fcsend printed %q", r.stdout)
		}
		if r.elapsed < delay {
			t.Errorf("send %d answered after %v, want at least %v", i, r.elapsed, delay)
		}
	}
	stop(t, srv, syscall.SIGTERM)
}

// TestSignalDuringDelay: a receiver stopped while it holds a message
// detaches cleanly, and its sender fails with one line.
func TestSignalDuringDelay(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-delay", "1h")
	cli := e.start("fcsend", "-n", "CLI", "-r", "SRV", "-m", "x")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", cli.PID()))
	stop(t, srv, syscall.SIGTERM)
	if code := waitExit(t, cli); code != 1 {
		t.Errorf("fcsend exited %d when its receiver detached, want 1", code)
	}
	checkOneLine(t, "fcsend", cli.Stderr(), "peer gone", "SRV")
}

// TestErrors: each failure exits 1 with one line naming the cause.
func TestErrors(t *testing.T) {
	long := strings.Repeat("x", 40)
	for _, tc := range []struct {
		name string
		tool string
		args []string
		want []string
	}{
		{"missing receiver", "fcsend", []string{"-r", "NOSUCH", "-m", "x"}, []string{"not found", `"NOSUCH"`, "-wait D waits for it"}},
		{"missing receiver, stdin", "fcsend", []string{"-r", "NOSUCH"}, []string{"not found", `"NOSUCH"`}},
		{"missing receiver, proxy", "fcsend", []string{"-r", "NOSUCH", "-p", "1"}, []string{"not found"}},
		{"missing receiver after -wait", "fcsend", []string{"-wait", "100ms", "-r", "NOSUCH", "-m", "x"}, []string{"not found"}},
		{"long receiver", "fcsend", []string{"-r", long, "-m", "x"}, []string{"bad name", "40 bytes"}},
		{"receiver with slash", "fcsend", []string{"-r", "a/b", "-m", "x"}, []string{"bad name", `"a/b"`}},
		{"receiver with #", "fcsend", []string{"-r", "a#1", "-m", "x"}, []string{"bad name"}},
		{"long sender", "fcsend", []string{"-n", long, "-r", "SRV", "-m", "x"}, []string{"bad name", "40 bytes"}},
		{"sender with slash", "fcsend", []string{"-n", "../x", "-r", "SRV", "-m", "x"}, []string{"bad name"}},
		{"remote receiver, no gateway", "fcsend", []string{"-r", "host:SRV", "-m", "x"}, []string{"no gateway runs on this host (start fcgate)"}},
		{"no receiver", "fcsend", []string{"-m", "x"}, []string{"usage: fcsend"}},
		{"-m and -p", "fcsend", []string{"-r", "SRV", "-m", "x", "-p", "1"}, []string{"-m and -p"}},
		{"proxy 0", "fcsend", []string{"-r", "SRV", "-p", "0"}, []string{"-p 0"}},
		{"negative -max-reply", "fcsend", []string{"-r", "SRV", "-m", "x", "-max-reply", "-1"}, []string{"-max-reply"}},
		{"huge -max-reply", "fcsend", []string{"-r", "SRV", "-m", "x", "-max-reply", "9223372036854775807"}, []string{"-max-reply 9223372036854775807: must be 0 to 1073741824"}},
		{"unknown flag", "fcsend", []string{"-bogus"}, []string{"-bogus", "usage: fcsend"}},
		{"bad duration", "fcsend", []string{"-r", "SRV", "-timeout", "soon"}, []string{"-timeout", "usage: fcsend"}},
		{"long name", "fcrecv", []string{"-n", long}, []string{"bad name", "40 bytes"}},
		{"name with slash", "fcrecv", []string{"-n", "a/b"}, []string{"bad name", `"a/b"`}},
		{"no name", "fcrecv", nil, []string{"usage: fcrecv"}},
		{"negative count", "fcrecv", []string{"-n", "R", "-count", "-1"}, []string{"-count"}},
		{"negative delay", "fcrecv", []string{"-n", "R", "-delay", "-1s"}, []string{"-delay"}},
		{"unknown flag", "fcrecv", []string{"-n", "R", "-bogus"}, []string{"-bogus", "usage: fcrecv"}},
		{"slay missing", "fcslay", []string{"NOSUCH"}, []string{"not found", `"NOSUCH"`}},
		{"slay bad name", "fcslay", []string{"a/b"}, []string{"bad name"}},
		{"slay no name", "fcslay", nil, []string{"usage: fcslay"}},
		{"show argument", "fcshow", []string{"extra"}, []string{"usage: fcshow"}},
		{"show unknown flag", "fcshow", []string{"-bogus"}, []string{"-bogus", "usage: fcshow"}},
		{"negative -wait", "fcsend", []string{"-r", "SRV", "-m", "x", "-wait", "-1s"}, []string{"-wait -1s: must be 0 or more"}},
		{"negative -timeout", "fcsend", []string{"-r", "SRV", "-m", "x", "-timeout", "-1s"}, []string{"-timeout -1s: must be 0 or more"}},
		{"slay two names", "fcslay", []string{"a", "b"}, []string{"usage: fcslay [-s SIGNAL] NAME"}},
		{"slay bad signal", "fcslay", []string{"-s", "NOPE", "SRV"}, []string{`-s: signal "NOPE": no such signal`}},
		{"bench -n", "fcbench", []string{"-n", "-1"}, []string{"-n -1: must be 0 to 10000000"}},
		{"bench huge -n", "fcbench", []string{"-n", "9999999999999"}, []string{"-n 9999999999999: must be 0 to 10000000"}},
		{"bench -size", "fcbench", []string{"-size", "70000000"}, []string{"-size 70000000: at most 67108864"}},
		{"bench -senders", "fcbench", []string{"-senders", "300"}, []string{"-senders 300: want 1 to 256"}},
		{"bench -progress", "fcbench", []string{"-progress", "-1s"}, []string{"-progress -1s: must be 0 or more"}},
		{"bench -plot", "fcbench", []string{"-plot", "x.gif"}, []string{"-plot x.gif: want a .png, .svg or .pdf file"}},
		{"bench -role", "fcbench", []string{"-role", "x"}, []string{`-role "x": internal flag`}},
		{"bench -zerocopy -remote", "fcbench", []string{"-zerocopy", "-remote", "h:N"}, []string{"-zerocopy: not with -remote or -nats"}},
		{"soak -senders", "fcsoak", []string{"-senders", "0"}, []string{"-senders 0: want 1 to 256"}},
		{"soak -duration", "fcsoak", []string{"-duration", "0s"}, []string{"-duration 0s: must be more than 0"}},
		{"soak -max-size", "fcsoak", []string{"-max-size", "10"}, []string{"-max-size 10: want 28 to 67108864"}},
		{"soak -transport", "fcsoak", []string{"-transport", "tcp"}, []string{`-transport "tcp": want fifo, shm or auto`}},
		{"soak -progress", "fcsoak", []string{"-progress", "-1s"}, []string{"-progress -1s: must be 0 or more"}},
		{"broker -max-data", "fcbroker", []string{"-max-data", "-1"}, []string{"-max-data -1: must be 0 to 1073741824"}},
		{"broker huge -max-data", "fcbroker", []string{"-max-data", "9223372036854775807"}, []string{"-max-data 9223372036854775807: must be 0 to 1073741824"}},
		{"broker -lease", "fcbroker", []string{"-lease", "0s"}, []string{"-lease 0s: must be more than 0"}},
		{"pub -wait", "fcpub", []string{"-t", "a", "-m", "x", "-wait", "-1s"}, []string{"-wait -1s: must be 0 or more"}},
		{"pub bad topic", "fcpub", []string{"-t", "a b", "-m", "x"}, []string{"bad topic", `"a b"`}},
		{"sub -queue", "fcsub", []string{"-t", "a", "-queue", "-1"}, []string{"-queue -1: must be 0 or more"}},
		{"sub -list with a pattern", "fcsub", []string{"-list", "-t", "a"}, []string{"-list takes no pattern"}},
		{"sub -list with -count", "fcsub", []string{"-list", "-count", "5"}, []string{"-count, -latest, -queue and -seq are for a subscription, not -list"}},
		{"sub -list with -latest", "fcsub", []string{"-list", "-latest"}, []string{"are for a subscription, not -list"}},
		{"sub -json without -list", "fcsub", []string{"-json", "a/b"}, []string{"-json is for -list"}},
		{"send -p with -timeout", "fcsend", []string{"-r", "SRV", "-p", "2", "-timeout", "1s"}, []string{"-timeout and -max-reply are for a send"}},
		{"send -p with -max-reply", "fcsend", []string{"-r", "SRV", "-p", "2", "-max-reply", "1"}, []string{"-timeout and -max-reply are for a send"}},
		{"locator no name", "fclocator", []string{"-locate"}, []string{"-locate: which name?", "usage: fclocator"}},
		{"locator two names", "fclocator", []string{"-locate", "A", "B"}, []string{`unexpected arguments ["A" "B"]`, "usage: fclocator"}},
		{"locator two patterns", "fclocator", []string{"-list", "A*", "B*"}, []string{`unexpected arguments ["A*" "B*"]`}},
		{"locator = and argument", "fclocator", []string{"-watch=A*", "B*"}, []string{`unexpected arguments ["A*" "B*"]`}},
		{"locator daemon argument", "fclocator", []string{"X"}, []string{`unexpected arguments ["X"]`}},
		{"locator two modes", "fclocator", []string{"-list", "-watch"}, []string{"-locate, -list and -watch exclude each other"}},
		{"locator bad pattern", "fclocator", []string{"-list", "["}, []string{`bad name: pattern "["`}},
		{"locator bad watch pattern", "fclocator", []string{"-watch", "-count", "1", "[x"}, []string{`bad name: pattern "[x"`}},
		{"locator bad name", "fclocator", []string{"-locate", "a/b"}, []string{"bad name", `"a/b"`}},
		{"locator missing", "fclocator", []string{"-locate", "NOSUCH"}, []string{"not found", `"NOSUCH"`}},
		{"locator -count", "fclocator", []string{"-watch", "-count", "-1"}, []string{"-count -1: must be 0 or more"}},
		{"locator -count without -watch", "fclocator", []string{"-list", "-count", "1"}, []string{"-count and -all are for -watch"}},
		{"locator -all without -watch", "fclocator", []string{"-all"}, []string{"-count and -all are for -watch"}},
		{"locator -json serving", "fclocator", []string{"-json"}, []string{"-json is for -locate, -list and -watch"}},
		{"locator unknown flag", "fclocator", []string{"-list", "-bogus"}, []string{"-bogus", "usage: fclocator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.run("x\n", tc.tool, tc.args...)
			r.failed(t, tc.tool, tc.want...)
			if r.stdout != "" {
				t.Errorf("%s printed %q on stdout", tc.tool, r.stdout)
			}
		})
	}
}

// TestNoFIFODirectory: a FIFO_PATH that does not exist, or is not a
// directory, is one line too, which names the variable to change.
func TestNoFIFODirectory(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []struct{ path, why string }{
		{filepath.Join(e.dir, "missing"), "no such directory"},
		{file, "not a directory"},
	} {
		for _, args := range [][]string{
			{"fcsend", "-r", "B", "-m", "x"},
			{"fcrecv", "-n", "A"},
			{"fcshow"},
			{"fcslay", "B"},
			{"fcbroker"},
			{"fcpub", "-t", "a", "-m", "x"},
			{"fcsub", "-t", "a"},
			{"fclocator"},
			{"fclocator", "-list"},
			{"fclocator", "-watch"},
		} {
			tool := args[0]
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			cmd := e.command(ctx, tool, args[1:]...)
			cmd.Env = append(cmd.Env, "FIFO_PATH="+dir.path)
			e.runCmd(ctx, cmd, "").failed(t, tool, "FIFO_PATH="+dir.path+": "+dir.why, "FIFO directory", "/var/tmp")
			cancel()
		}
	}
}

// TestHelp: every tool's -h prints its usage line, its flags without the
// internal ones, each default once, and the environment: FIFO_PATH and
// its default (or, for the tools that make a directory of their own, that
// it is not used).
func TestHelp(t *testing.T) {
	e := newEnv(t)
	for _, tool := range []string{"fcrecv", "fcsend", "fcshow", "fcslay", "fcbench", "fclocator", "fcsoak", "fcbroker", "fcpub", "fcsub"} {
		r := e.run("", tool, "-h")
		r.ok(t, tool+" -h")
		if !strings.HasPrefix(r.stdout, "usage: "+tool) {
			t.Errorf("%s -h starts %q, want its usage", tool, r.stdout)
		}
		want := []string{"\nflags:\n", "\nenvironment:\n", "  FIFO_PATH\n", "default /var/tmp; now " + e.dir + ")"}
		if tool == "fcbench" || tool == "fcsoak" {
			want = []string{"\nflags:\n", "\nenvironment:\n", "  FIFO_PATH\n", "not used"}
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s -h does not say %q:\n%s", tool, w, r.stdout)
			}
		}
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Count(line, "(default") > 1 || strings.Contains(line, "internal") {
				t.Errorf("%s -h: %q", tool, line)
			}
		}
	}
	for tool, hidden := range map[string][]string{"fcbench": {"-role"}, "fcsoak": {"-role", "-id", "-inject"}} {
		r := e.run("", tool, "-h")
		for _, f := range hidden {
			if strings.Contains(r.stdout, "  "+f+" ") {
				t.Errorf("%s -h shows the internal flag %s:\n%s", tool, f, r.stdout)
			}
		}
	}
	// Unset, FIFO_PATH is said to be.
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcrecv", "-h")
	cmd.Env = slices.DeleteFunc(cmd.Env, func(v string) bool { return strings.HasPrefix(v, "FIFO_PATH=") })
	r := e.runCmd(ctx, cmd, "")
	r.ok(t, "fcrecv -h, FIFO_PATH unset")
	if !strings.Contains(r.stdout, "(default /var/tmp; unset)") {
		t.Errorf("fcrecv -h with FIFO_PATH unset:\n%s", r.stdout)
	}
}

// TestNameInUse: a second fcrecv on a live name fails with one line and
// does not disturb the first.
func TestNameInUse(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV")
	e.run("", "fcrecv", "-n", "SRV").failed(t, "fcrecv", "in use", fmt.Sprintf("pid %d", srv.PID()))
	r := e.run("", "fcsend", "-r", "SRV", "-m", "still here")
	r.ok(t, "fcsend")
	if r.stdout != "still here\n" {
		t.Errorf("fcsend printed %q", r.stdout)
	}
	stop(t, srv, syscall.SIGHUP)
}

// TestReplyTooLarge: a reply longer than -max-reply fails the send with
// one line, and fcrecv reports that its reply failed.
func TestReplyTooLarge(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-reply", "0123456789")
	e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-max-reply", "4", "-m", "x").failed(t, "fcsend", "reply too large", "-max-reply 4 bytes", "give a larger -max-reply")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", e.lastPID()))
	if line := srv.ReadLine(lineTimeout); !strings.HasPrefix(line, "reply to CLI failed: ") || !strings.Contains(line, "reply too large") ||
		!strings.Contains(line, "10 bytes") || strings.Contains(line, "simpl:") {
		t.Errorf("fcrecv printed %q, want its reply to CLI reported failed", line)
	}
	// A reply that fits exactly is fine.
	r := e.run("", "fcsend", "-r", "SRV", "-max-reply", "10", "-m", "x")
	r.ok(t, "fcsend -max-reply 10")
	if r.stdout != "0123456789\n" {
		t.Errorf("fcsend printed %q", r.stdout)
	}
	stop(t, srv, syscall.SIGTERM)
}

// TestReceiverKilled: fcsend blocked on a receiver that is SIGKILLed exits
// 1 with one line, without -timeout: it notices that the receiver's process
// is gone. fcshow then lists the name as dead and -clean removes it.
//
// It runs with the default transport and with GOSIMPL_TRANSPORT=fifo: each
// transport notices the death by itself (over FIFOs, where a sender's reply
// FIFO is open read-write and never sees EOF, through the receiver's pidfd).
func TestReceiverKilled(t *testing.T) {
	for _, transport := range []string{"default", "fifo"} {
		t.Run(transport, func(t *testing.T) {
			if transport != "default" {
				t.Setenv("GOSIMPL_TRANSPORT", transport)
			}
			testReceiverKilled(t)
		})
	}
}

func testReceiverKilled(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-delay", "1h")
	cli := e.start("fcsend", "-n", "CLI", "-r", "SRV", "-m", "x")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", cli.PID()))
	kill(t, srv)
	if code := waitExit(t, cli); code != 1 {
		t.Errorf("fcsend exited %d when its receiver was killed, want 1", code)
	}
	t.Logf("fcsend: %s", strings.TrimSpace(cli.Stderr()))
	checkOneLine(t, "fcsend", cli.Stderr(), "peer gone", "SRV", fmt.Sprintf("pid %d", srv.PID()))
	// Only the dead receiver's FIFOs are left: fcsend removed its own.
	want := []string{fmt.Sprintf("SRV.%d", srv.PID()), fmt.Sprintf("YSRV.%d", srv.PID())}
	if got := e.fifos(); !slices.Equal(got, want) {
		t.Errorf("FIFO directory holds %v, want %v", got, want)
	}
	e.clean(2)
}

// TestTimeout: -timeout bounds the wait for a slow receiver.
func TestTimeout(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-delay", "1h")
	const timeout = 300 * time.Millisecond
	r := e.run("", "fcsend", "-r", "SRV", "-timeout", timeout.String(), "-m", "x")
	r.failed(t, "fcsend", "no reply within "+timeout.String(), `SRV`)
	if r.elapsed < timeout {
		t.Errorf("fcsend -timeout %v gave up after %v", timeout, r.elapsed)
	}
	srv.ReadLine(lineTimeout)
	// The receiver still holds the message; stopping it is clean.
	stop(t, srv, syscall.SIGTERM)
}

// TestShow: fcshow lists a live receiver with its pid as alive, and as
// dead after SIGKILL, with the user that attached it and when, as a
// table; -clean removes its FIFOs.
func TestShow(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "fcshow")
	r.ok(t, "fcshow")
	if r.stdout != "NAME  PID  STATE  UID  TRANSPORT  SINCE\n" {
		t.Errorf("fcshow on an empty directory printed %q", r.stdout)
	}

	before := time.Now().Truncate(time.Second)
	srv := e.startRecv("SRV")
	other := e.startRecv("ANOTHER_NAME")
	after := time.Now()
	uid := strconv.Itoa(os.Getuid())
	check := func(state, stdout string, rows ...string) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		var got []string
		for i, l := range lines {
			f := strings.Fields(l)
			if i > 0 && len(f) == 6 {
				// SINCE: when the name was attached, to the second.
				since, err := time.Parse(time.RFC3339, f[5])
				if err != nil || since.Before(before) || since.After(after) {
					t.Errorf("fcshow (%s): %q: since %v, want between %v and %v", state, l, f[5], before, after)
				}
				f = f[:5]
			}
			got = append(got, strings.Join(f, " "))
		}
		want := append([]string{"NAME PID STATE UID TRANSPORT SINCE"}, rows...)
		if !slices.Equal(got, want) {
			t.Errorf("fcshow (%s) printed\n%s\nwant rows %q", state, stdout, want)
		}
		// A table: every column starts where its title does.
		for _, title := range []string{"PID", "STATE", "UID", "TRANSPORT", "SINCE"} {
			col := strings.Index(lines[0], title)
			for _, l := range lines[1:] {
				if len(l) <= col || l[col] == ' ' || l[col-1] != ' ' {
					t.Errorf("fcshow (%s): %q: column %s does not start at %d", state, l, title, col)
				}
			}
		}
	}
	show := func(state string, rows ...string) {
		t.Helper()
		r := e.run("", "fcshow")
		r.ok(t, "fcshow")
		check(state, r.stdout, rows...)
	}
	show("both alive",
		fmt.Sprintf("ANOTHER_NAME %d alive %s shm", other.PID(), uid),
		fmt.Sprintf("SRV %d alive %s shm", srv.PID(), uid))

	// -json: the same, one object a line.
	r = e.run("", "fcshow", "-json")
	r.ok(t, "fcshow -json")
	var rows []string
	for _, l := range strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		var o struct {
			Name, State, Transport string
			PID, UID               int
			Since                  time.Time
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil || o.Since.Before(before) || o.Since.After(after) {
			t.Errorf("fcshow -json: %q: %v, since %v", l, err, o.Since)
		}
		rows = append(rows, fmt.Sprintf("%s %d %s %d %s", o.Name, o.PID, o.State, o.UID, o.Transport))
	}
	if want := []string{fmt.Sprintf("ANOTHER_NAME %d alive %s shm", other.PID(), uid), fmt.Sprintf("SRV %d alive %s shm", srv.PID(), uid)}; !slices.Equal(rows, want) {
		t.Errorf("fcshow -json printed\n%s\nwant %q", r.stdout, want)
	}

	kill(t, srv)
	show("SRV killed",
		fmt.Sprintf("ANOTHER_NAME %d alive %s shm", other.PID(), uid),
		fmt.Sprintf("SRV %d dead %s -", srv.PID(), uid))

	if r = e.run("", "fcshow", "-clean", "-json"); !strings.HasPrefix(r.stdout, `{"removed_fifos":2,"removed_segments":0}`+"\n") {
		t.Errorf("fcshow -clean -json printed %q first", r.stdout)
	}
	kill(t, e.startRecv("SRV")) // again, for -clean's table
	r = e.run("", "fcshow", "-clean")
	r.ok(t, "fcshow -clean")
	cleaned, rest, _ := strings.Cut(r.stdout, "\n")
	if cleaned != "removed 2 stale FIFOs" {
		t.Errorf("fcshow -clean printed %q first", cleaned)
	}
	check("-clean", rest, fmt.Sprintf("ANOTHER_NAME %d alive %s shm", other.PID(), uid))
	stop(t, other, syscall.SIGTERM)
	show("all gone")
}

// TestSlay: fcslay NAME makes fcrecv exit 0, detached; -s sends another
// signal, by name or number; a name whose owner is dead is explained.
func TestSlay(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ args, sig string }{
		{"", "SIGTERM"},
		{"-s HUP", "SIGHUP"},
		{"-s sigint", "SIGINT"},
		{"-s 15", "SIGTERM"},
	} {
		srv := e.startRecv("SRV")
		r := e.run("", "fcslay", append(strings.Fields(tc.args), "SRV")...)
		r.ok(t, "fcslay "+tc.args)
		if want := fmt.Sprintf("sent %s to SRV (pid %d)\n", tc.sig, srv.PID()); r.stdout != want {
			t.Errorf("fcslay %s printed %q, want %q", tc.args, r.stdout, want)
		}
		if code := waitExit(t, srv); code != 0 {
			t.Errorf("fcrecv exited %d after fcslay %s, want 0; stderr %q", code, tc.args, srv.Stderr())
		}
		if s := srv.Stderr(); s != "" {
			t.Errorf("fcrecv wrote %q on stderr", s)
		}
	}
	// Nothing left to slay.
	e.run("", "fcslay", "SRV").failed(t, "fcslay", "not found")

	// -s KILL: gone at once, its FIFOs left; then nobody to signal.
	srv := e.startRecv("SRV")
	r := e.run("", "fcslay", "-s", "KILL", "SRV")
	r.ok(t, "fcslay -s KILL")
	if want := fmt.Sprintf("sent SIGKILL to SRV (pid %d)\n", srv.PID()); r.stdout != want {
		t.Errorf("fcslay -s KILL printed %q, want %q", r.stdout, want)
	}
	srv.Wait(exitTimeout)
	e.run("", "fcslay", "SRV").failed(t, "fcslay",
		fmt.Sprintf("SRV: its owner (pid %d) is dead, nobody to signal; fcshow -clean removes the FIFOs it left", srv.PID()))
	e.clean(2)

	for _, bad := range []string{"BOGUS", "0", "65", ""} {
		e.run("", "fcslay", "-s", bad, "SRV").failed(t, "fcslay", "-s: signal")
	}
}

// TestSignals: SIGINT, SIGTERM and SIGHUP each detach fcrecv and exit 0,
// whether it is idle or has just answered someone.
func TestSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			idle := e.startRecv("IDLE")
			stop(t, idle, sig)

			busy := e.startRecv("BUSY")
			e.run("", "fcsend", "-r", "BUSY", "-m", "x").ok(t, "fcsend")
			busy.ReadLine(lineTimeout)
			stop(t, busy, sig)
		})
	}
}

// TestSenderSignalled: a signal ends fcsend with one line while it waits
// for a reply and while it waits for input, its FIFOs removed.
func TestSenderSignalled(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV", "-delay", "1h")

	blocked := e.start("fcsend", "-n", "CLI", "-r", "SRV", "-m", "x")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", blocked.PID()))
	blocked.Signal(syscall.SIGINT)
	if code := waitExit(t, blocked); code != 1 {
		t.Errorf("fcsend exited %d on SIGINT while blocked, want 1", code)
	}
	checkOneLine(t, "fcsend", blocked.Stderr(), "interrupt")

	// Standard input a pipe that stays open, and empty once its first
	// line is sent.
	echo := e.startRecv("ECHO")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := e.command(context.Background(), "fcsend", "-n", "IDLE", "-r", "ECHO")
	cmd.Stdin = pr
	reading := simpltest.StartCmd(t, cmd)
	e.addPID(reading.PID())
	pr.Close()
	// Waiting for input once it has printed the reply to the first line
	// (attached and located by then: the reply FIFO alone is there before
	// the Locate, which a signal would interrupt instead).
	if _, err := fmt.Fprintln(pw, "ping"); err != nil {
		t.Fatal(err)
	}
	expectLine(t, reading, "ping")
	reading.Signal(syscall.SIGTERM)
	if code := waitExit(t, reading); code != 1 {
		t.Errorf("fcsend exited %d on SIGTERM while reading input, want 1", code)
	}
	checkOneLine(t, "fcsend", reading.Stderr(), "interrupt")

	stop(t, echo, syscall.SIGTERM)
	stop(t, srv, syscall.SIGTERM)
}

// TestClosedStdout: a tool whose standard output is a pipe nobody reads
// (fcrecv | head) fails with one line and still removes its FIFOs, rather
// than dying of SIGPIPE with its name attached.
func TestClosedStdout(t *testing.T) {
	e := newEnv(t)
	closedPipe := func() *os.File {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pr.Close()
		t.Cleanup(func() { pw.Close() })
		return pw
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcrecv", "-n", "SRV")
	cmd.Stdout = closedPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	runClosed := func(cmd *exec.Cmd, stderr *bytes.Buffer) {
		t.Helper()
		cmd.WaitDelay = time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		e.addPID(cmd.Process.Pid)
		err := cmd.Wait()
		if ctx.Err() != nil {
			t.Fatalf("%q did not finish within %v", cmd.Args, runTimeout)
		}
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("%q with a closed stdout: %v, want exit 1", cmd.Args, err)
		}
		checkOneLine(t, filepath.Base(cmd.Args[0]), stderr.String(), "broken pipe")
	}
	runClosed(cmd, &stderr)

	srv := e.startRecv("SRV")
	cmd = e.command(ctx, "fcsend", "-r", "SRV", "-m", "x")
	cmd.Stdout = closedPipe()
	stderr.Reset()
	cmd.Stderr = &stderr
	runClosed(cmd, &stderr)
	srv.ReadLine(lineTimeout)
	stop(t, srv, syscall.SIGTERM)
}

// TestConcurrentSenders: senders running at once each get their own
// replies, in order, from one echoing receiver.
func TestConcurrentSenders(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("SRV")
	const senders, lines = 3, 20
	var wg sync.WaitGroup
	results := make([]result, senders)
	inputs := make([]string, senders)
	for i := range senders {
		var b strings.Builder
		for j := range lines {
			fmt.Fprintf(&b, "sender %d line %d\n", i, j)
		}
		inputs[i] = b.String()
	}
	// e.run may call Fatalf, which only the test goroutine may do: these
	// goroutines collect their results for it instead.
	errs := make([]error, senders)
	for i := range senders {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd := e.command(ctx, "fcsend", "-n", fmt.Sprintf("CLI%d", i), "-r", "SRV")
			var stdout, stderr bytes.Buffer
			cmd.Stdin = strings.NewReader(inputs[i])
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = time.Second
			if err := cmd.Start(); err != nil {
				errs[i] = err
				return
			}
			e.addPID(cmd.Process.Pid)
			errs[i] = cmd.Wait()
			if ctx.Err() != nil {
				errs[i] = fmt.Errorf("did not finish within %v", runTimeout)
			}
			results[i] = result{stdout: stdout.String(), stderr: stderr.String()}
		})
	}
	wg.Wait()
	for i := range senders {
		if errs[i] != nil || results[i].stderr != "" {
			t.Errorf("sender %d: %v; stderr %q", i, errs[i], results[i].stderr)
		}
		if results[i].stdout != inputs[i] {
			t.Errorf("sender %d got\n%s\nwant\n%s", i, results[i].stdout, inputs[i])
		}
	}
	// fcrecv printed every message once, each sender's in order.
	next := make([]int, senders)
	for range senders * lines {
		line := srv.ReadLine(lineTimeout)
		name, _, text, ok := parseFrom(line)
		var i, j int
		if !ok || !strings.HasPrefix(name, "CLI") {
			t.Fatalf("fcrecv printed %q", line)
		}
		if _, err := fmt.Sscanf(text, "sender %d line %d", &i, &j); err != nil || name != fmt.Sprintf("CLI%d", i) || i >= senders || j != next[i] {
			t.Fatalf("fcrecv printed %q out of order (next lines %v)", line, next)
		}
		next[i]++
	}
	stop(t, srv, syscall.SIGTERM)
}

// TestMaxPrint: fcrecv prints at most -max-print bytes of a message (256
// by default), then how many more there were; -max-print 0 prints it
// all. The sender still gets its whole message back.
func TestMaxPrint(t *testing.T) {
	e := newEnv(t)
	text := strings.Repeat("0123456789", 200) // 2000 bytes
	for _, tc := range []struct {
		args  []string
		shown string
	}{
		{nil, text[:256] + "… (1744 more bytes)"},
		{[]string{"-max-print", "10"}, "0123456789… (1990 more bytes)"},
		{[]string{"-max-print", "0"}, text},
		{[]string{"-max-print", "2000"}, text},
	} {
		srv := e.startRecv("SRV", tc.args...)
		r := e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-m", text)
		r.ok(t, "fcsend")
		if r.stdout != text+"\n" {
			t.Errorf("fcsend got %d bytes back, want the 2000 it sent", len(r.stdout)-1)
		}
		expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: %s", e.lastPID(), tc.shown))
		stop(t, srv, syscall.SIGTERM)
	}

	// Binary data is cut too, in hex.
	srv := e.startRecv("SRV", "-max-print", "3")
	e.run("\x00\x01\x02\x03\x04\n", "fcsend", "-n", "CLI", "-r", "SRV").ok(t, "fcsend binary")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: hex:000102… (2 more bytes)", e.lastPID()))
	stop(t, srv, syscall.SIGTERM)

	e.run("", "fcrecv", "-n", "SRV", "-max-print", "-1").failed(t, "fcrecv", "-max-print -1")
}

// TestOddNames: a name that holds a right-to-left override or a line
// separator (legal: only ASCII control bytes, space, '/', ':' and '#' are
// not) prints quoted in fcrecv's and fcshow's output, so that it cannot
// disguise itself or break the line.
func TestOddNames(t *testing.T) {
	e := newEnv(t)
	recv, send := "a\u202eb", "c\u2028d"
	srv := e.start("fcrecv", "-n", recv)
	expectLine(t, srv, fmt.Sprintf("attached %s pid %d", strconv.Quote(recv), srv.PID()))
	r := e.run("", "fcsend", "-n", send, "-r", recv, "-m", "x")
	r.ok(t, "fcsend")
	expectLine(t, srv, fmt.Sprintf("message from %s pid %d: x", strconv.Quote(send), e.lastPID()))
	r = e.run("", "fcshow")
	r.ok(t, "fcshow")
	if !strings.Contains(r.stdout, "\n"+strconv.Quote(recv)+" ") {
		t.Errorf("fcshow does not list %s quoted:\n%s", strconv.Quote(recv), r.stdout)
	}
	stop(t, srv, syscall.SIGTERM)
}
