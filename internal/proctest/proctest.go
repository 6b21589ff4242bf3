// Package proctest runs tests across real processes: it re-executes the
// test binary as a helper process playing a named role, and checks that
// nothing was left behind (FIFOs, System V segments, mappings). Every
// layer's tests use it; simpl/simpltest offers it to users' tests.
//
// A test package wires it up once in TestMain:
//
//	func TestMain(m *testing.M) {
//		proctest.Main(m, map[string]proctest.Role{
//			"echo": runEcho,
//		})
//	}
//
// and starts helpers with Start. Once the tests are done, Main checks that
// they left nothing behind in this process or its helpers (descriptors,
// files, FIFOs, segments, mappings, processes, goroutines; see
// internal/testmain). Nothing here is safe for use outside tests.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

const (
	roleEnv = "GOSIMPL_TEST_ROLE"
	argsEnv = "GOSIMPL_TEST_ARGS"
)

// Role is the body of a helper process. It prints "ready" on stdout (see
// Ready) when the test may go on, and returns nil on success; an error
// exits the helper with status 3 after printing it on stderr.
type Role func(args []string) error

// Option configures Main.
type Option func(*mainOptions)

type mainOptions struct{ lifetime time.Duration }

// WithLifetime makes a helper exit (status 5) after d, in case the test
// that started it forgot it.
func WithLifetime(d time.Duration) Option { return func(o *mainOptions) { o.lifetime = d } }

// Main runs the role named in the environment, if any, and exits;
// otherwise it runs the tests and then checks, once, that they left
// nothing behind (internal/testmain), and exits.
func Main(m *testing.M, roles map[string]Role, opts ...Option) {
	var o mainOptions
	for _, opt := range opts {
		opt(&o)
	}
	if name := os.Getenv(roleEnv); name != "" {
		role, ok := roles[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "proctest: no role %q\n", name)
			os.Exit(2)
		}
		var args []string
		if a := os.Getenv(argsEnv); a != "" {
			args = strings.Split(a, "\x1f")
		}
		if o.lifetime > 0 {
			time.AfterFunc(o.lifetime, func() {
				fmt.Fprintf(os.Stderr, "helper %s: lifetime over\n", name)
				os.Exit(5)
			})
		}
		if err := role(args); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(testmain.Run(m))
}

// Env is the environment that makes the test binary run role with args
// under Main, for tests that build the helper's command themselves.
func Env(role string, args ...string) []string {
	return []string{roleEnv + "=" + role, argsEnv + "=" + strings.Join(args, "\x1f")}
}

// Ready tells the test that started this helper that it may go on.
func Ready() { fmt.Println("ready") }

// Proc is a running helper process.
type Proc struct {
	t      testing.TB
	Cmd    *exec.Cmd
	Stdout *bufio.Reader
	stderr bytes.Buffer
	mu     sync.Mutex
	done   chan struct{}
	err    error
	killed bool
}

// Start runs the test binary as a helper in role with args and the
// environment extra (KEY=VALUE) added, and waits up to 10 s for it to print
// "ready". The helper is killed when the test ends if it is still running.
func Start(t testing.TB, role string, extra []string, args ...string) *Proc {
	t.Helper()
	p := StartNoWait(t, role, extra, args...)
	p.Expect("ready", 10*time.Second)
	return p
}

// StartNoWait is Start without waiting for "ready".
func StartNoWait(t testing.TB, role string, extra []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), Env(role, args...)...)
	cmd.Env = append(cmd.Env, extra...)
	return StartCmd(t, cmd)
}

// StartCmd starts any command as a helper: its stdout can be read with
// Expect, its stderr is kept for failure messages.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	// A race-detector build sleeps 1 s at exit by default; helpers exit
	// often and the test waits for each.
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	if !slices.ContainsFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "GORACE=") }) {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	p := &Proc{t: t, Cmd: cmd, done: make(chan struct{})}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	testmain.Track(cmd.Process.Pid)
	p.Stdout = bufio.NewReader(out)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			p.Wait(5 * time.Second)
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// Stderr is what the helper wrote on stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// PID is the helper's process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Expect reads stdout lines until one contains want, failing the test
// after d.
func (p *Proc) Expect(want string, d time.Duration) string {
	p.t.Helper()
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			line, err := p.Stdout.ReadString('\n')
			if err != nil || strings.Contains(line, want) {
				ch <- res{strings.TrimRight(line, "\n"), err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			p.t.Fatalf("helper %v: stdout ended before %q: %v; stderr: %s", p.Cmd.Args, want, r.err, p.Stderr())
		}
		return r.line
	case <-time.After(d):
		p.Cmd.Process.Kill()
		p.t.Fatalf("helper %v: no %q within %v; stderr: %s", p.Cmd.Args, want, d, p.Stderr())
	}
	return ""
}

// ReadLine reads one line of stdout, failing the test after d.
func (p *Proc) ReadLine(d time.Duration) string {
	p.t.Helper()
	return p.Expect("", d)
}

// Wait waits up to d for the helper to exit and returns its error (nil for
// status 0). It fails the test (killing the helper) on time-out.
func (p *Proc) Wait(d time.Duration) error {
	p.t.Helper()
	if p.Cmd.ProcessState != nil {
		return p.err
	}
	ch := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, p.Stdout)
		ch <- p.Cmd.Wait()
	}()
	select {
	case err := <-ch:
		p.err = err
		close(p.done)
		if err != nil {
			return fmt.Errorf("%w; stderr: %s", err, p.Stderr())
		}
		return nil
	case <-time.After(d):
		p.Cmd.Process.Kill()
		<-ch
		p.t.Errorf("helper %v did not exit within %v; stderr: %s", p.Cmd.Args, d, p.Stderr())
		return fmt.Errorf("time-out")
	}
}

// Kill kills the helper with SIGKILL and returns once it is gone (reaped),
// failing the test if it does not go within 10 s.
func (p *Proc) Kill() {
	p.t.Helper()
	p.killed = true
	if p.Cmd.ProcessState != nil {
		return
	}
	p.Cmd.Process.Kill()
	p.Wait(10 * time.Second)
}

// Killed reports whether Kill was called.
func (p *Proc) Killed() bool { return p.killed }

// Signal sends sig to the helper.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal helper: %v", err)
	}
}

// Dir makes an empty FIFO directory for one test and, when the test ends,
// fails it if anything is left in it or if this process still has a System
// V segment mapped or created. Call it first in a test, so that its check
// runs after every other cleanup.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gosimpl-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		CheckDirEmpty(t, dir)
		CheckNoSegments(t)
		os.RemoveAll(dir)
	})
	return dir
}

// CheckDirEmpty fails the test if dir holds anything.
func CheckDirEmpty(t testing.TB, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("read %s: %v", dir, err)
		return
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if len(names) > 0 {
		t.Errorf("left behind in %s: %v", dir, names)
	}
}

// Segment is one System V shared memory segment as /proc reports it.
type Segment = testmain.Segment

// Segments returns the System V segments created by any of pids.
func Segments(t testing.TB, pids ...int) []Segment {
	t.Helper()
	segs, err := testmain.Segments(pids...)
	if err != nil {
		t.Fatalf("System V segments: %v", err)
	}
	return segs
}

// AttachedHere counts the System V segments this process has mapped.
func AttachedHere(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "/SYSV")
}

// CheckNoSegments fails the test if this process still maps a segment or
// any segment created by this process or pids still exists. It retries
// for up to 2 s, since an exiting helper detaches asynchronously.
func CheckNoSegments(t testing.TB, pids ...int) {
	t.Helper()
	pids = append(pids, os.Getpid())
	deadline := time.Now().Add(2 * time.Second)
	for {
		segs, here := Segments(t, pids...), AttachedHere(t)
		if len(segs) == 0 && here == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("System V segments left: %+v; mapped in this process: %d", segs, here)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Context is a context that ends at the test's deadline or after d,
// whichever is first, and is cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
