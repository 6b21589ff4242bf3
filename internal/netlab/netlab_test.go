package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]proctest.Role{
		"listen": runListen,
		"dial":   runDial,
		"env":    runEnv,
		"spawn":  runSpawn,
		"sleep":  runSleep,
	}, proctest.WithLifetime(2*time.Minute))
}

// runListen listens on TCP (any address, a port of the kernel's choice),
// prints "ready PORT", and answers every connection with "hello from
// $HOSTNAME".
func runListen([]string) error {
	ln, err := net.Listen("tcp4", ":0")
	if err != nil {
		return err
	}
	fmt.Printf("ready %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "hello from %s\n", os.Getenv("HOSTNAME"))
		c.Close()
	}
}

// runDial connects to args[0] within args[1] and prints "ok LINE" with
// the line the server sent, or "err ERROR".
func runDial(args []string) error {
	d, err := time.ParseDuration(args[1])
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp4", args[0], d)
	if err != nil {
		fmt.Printf("err %v\n", err)
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Printf("err reading: %v\n", err)
		return nil
	}
	fmt.Printf("ok %s", line)
	return nil
}

// runEnv prints what the host looks like from inside.
func runEnv([]string) error {
	b, err := os.ReadFile("/etc/hostname")
	if err != nil {
		return err
	}
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	fmt.Printf("HOSTNAME=%s\nFIFO_PATH=%s\netc-hostname=%s\nhostname=%s\n", os.Getenv("HOSTNAME"), os.Getenv("FIFO_PATH"), strings.TrimSpace(string(b)), host)
	return nil
}

// runSpawn starts a "sleep" helper in a session of its own that nobody
// waits for (a daemon the lab must still kill), prints "pids SELF
// DAEMON" and "ready", and waits to be killed.
func runSpawn([]string) error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env("sleep")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	fmt.Printf("pids %d %d\n", os.Getpid(), cmd.Process.Pid)
	proctest.Ready()
	select {}
}

func runSleep([]string) error {
	proctest.Ready()
	select {}
}

// noLeftovers fails t, once it has ended, if a lab of this process is
// still there. Register it before New: cleanups run last first.
func noLeftovers(t *testing.T) {
	t.Cleanup(func() {
		if left := Leftovers(os.Getpid()); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// dial connects from host h to target within d and returns what the
// dialer printed: "ok hello from HOST" or "err ...".
func dial(t *testing.T, h *Host, target string, d time.Duration) string {
	t.Helper()
	p := h.StartNoWait(t, "dial", target, d.String())
	line := p.ReadLine(d + 10*time.Second)
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("dial %s from %s: %v", target, h.Name(), err)
	}
	return line
}

func TestThreeHosts(t *testing.T) {
	noLeftovers(t)
	start := time.Now()
	lab := New(t, "a", "b", "c")
	t.Logf("3-host lab built in %v", time.Since(start).Round(time.Microsecond))
	a, b, c := lab.Host("a"), lab.Host("b"), lab.Host("c")

	srv := a.StartNoWait(t, "listen")
	port := strings.TrimPrefix(srv.Expect("ready", 10*time.Second), "ready ")
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("listener said %q", port)
	}

	for _, tc := range []struct {
		from   *Host
		target string
	}{
		{b, "a:" + port},
		{b, a.Addr() + ":" + port},
		{c, "a:" + port},
		{a, "a:" + port}, // its own name, on its own address
	} {
		if got := dial(t, tc.from, tc.target, 5*time.Second); got != "ok hello from a" {
			t.Errorf("from %s to %s: %q, want %q", tc.from.Name(), tc.target, got, "ok hello from a")
		}
	}

	// The machine's own namespace has no way to the lab.
	if conn, err := net.DialTimeout("tcp4", a.Addr()+":"+port, 300*time.Millisecond); err == nil {
		conn.Close()
		t.Errorf("reached host a (%s:%s) from the root namespace", a.Addr(), port)
	}

	dirs := map[string]bool{}
	for _, h := range lab.Hosts() {
		p := h.StartNoWait(t, "env")
		want := []string{"HOSTNAME=" + h.Name(), "FIFO_PATH=" + h.FIFOPath(), "etc-hostname=" + h.Name(), "hostname=" + h.Name()}
		for _, w := range want {
			if got := p.ReadLine(10 * time.Second); got != w {
				t.Errorf("host %s: %q, want %q", h.Name(), got, w)
			}
		}
		if err := p.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(h.FIFOPath()); err != nil || !st.IsDir() {
			t.Errorf("host %s: FIFO_PATH %s: %v", h.Name(), h.FIFOPath(), err)
		}
		dirs[h.FIFOPath()] = true
	}
	if len(dirs) != 3 {
		t.Errorf("FIFO_PATH directories %v: want one per host", dirs)
	}
	if pids, err := b.PIDs(); err != nil || len(pids) != 0 {
		t.Errorf("host b runs %v (%v), want nothing", pids, err)
	}
	if pids, err := a.PIDs(); err != nil || !slices.Equal(pids, []int{srv.PID()}) {
		t.Errorf("host a runs %v (%v), want the listener %d", pids, err, srv.PID())
	}
}

func TestCutHeal(t *testing.T) {
	noLeftovers(t)
	lab := New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	srv := a.StartNoWait(t, "listen")
	port := strings.TrimPrefix(srv.Expect("ready", 10*time.Second), "ready ")
	target := "a:" + port

	if got := dial(t, b, target, 5*time.Second); got != "ok hello from a" {
		t.Fatalf("before the cut: %q", got)
	}
	if err := lab.Cut("a"); err != nil {
		t.Fatal(err)
	}
	if got := dial(t, b, target, 500*time.Millisecond); !strings.HasPrefix(got, "err ") || !strings.Contains(got, "timeout") {
		t.Errorf("b to a while a is cut: %q, want a time-out", got)
	}
	if got := dial(t, a, "b:1", 500*time.Millisecond); !strings.HasPrefix(got, "err ") || !strings.Contains(got, "timeout") {
		t.Errorf("a to b while a is cut: %q, want a time-out (not refused: nothing reaches b)", got)
	}
	if got := dial(t, a, target, 2*time.Second); got != "ok hello from a" {
		t.Errorf("a to itself while cut: %q", got)
	}
	if err := lab.Heal("a"); err != nil {
		t.Fatal(err)
	}
	if got := dial(t, b, target, 5*time.Second); got != "ok hello from a" {
		t.Errorf("after healing: %q", got)
	}
	if got := dial(t, a, "b:1", 5*time.Second); !strings.Contains(got, "refused") {
		t.Errorf("a to a closed port of b after healing: %q, want refused", got)
	}
}

func TestKill(t *testing.T) {
	noLeftovers(t)
	lab := New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	srv := a.StartNoWait(t, "listen")
	port := strings.TrimPrefix(srv.Expect("ready", 10*time.Second), "ready ")
	sp := a.StartNoWait(t, "spawn")
	daemon := pidsLine(t, sp)[1]
	sp.Expect("ready", 10*time.Second)
	other := b.Start(t, "sleep")

	if err := lab.Kill("a"); err != nil {
		t.Fatal(err)
	}
	if pids, err := a.PIDs(); err != nil || len(pids) != 0 {
		t.Errorf("host a still runs %v (%v)", pids, err)
	}
	if alive(daemon) {
		t.Errorf("daemon %d on host a alive after Kill", daemon)
	}
	for _, p := range []*proctest.Proc{srv, sp} {
		err := p.Wait(10 * time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("helper %d: %v, want killed by SIGKILL", p.PID(), err)
		}
	}
	if pids, err := b.PIDs(); err != nil || !slices.Equal(pids, []int{other.PID()}) {
		t.Errorf("host b runs %v (%v), want its helper %d untouched", pids, err, other.PID())
	}
	if got := dial(t, b, "a:"+port, 5*time.Second); !strings.Contains(got, "refused") {
		t.Errorf("b to a's port after Kill: %q, want refused", got)
	}
}

func pidsLine(t *testing.T, p *proctest.Proc) []int {
	t.Helper()
	f := strings.Fields(p.Expect("pids ", 10*time.Second))
	if len(f) != 3 {
		t.Fatalf("helper said %q", f)
	}
	var out []int
	for _, s := range f[1:] {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("helper said %q", f)
		}
		out = append(out, n)
	}
	return out
}

// childEnv selects what TestChildLab does in a child test process.
const childEnv = "GOSIMPL_NETLAB_CHILD"

// TestChildLab is run by TestCleanupOnFailure and TestSweep in a child
// test process: it builds a lab, starts a helper with a daemon on it,
// says "child PID HELPER DAEMON GUARD", and then fails, panics or hangs.
func TestChildLab(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run in a child process by TestCleanupOnFailure and TestSweep")
	}
	lab := New(t, "a", "b")
	sp := lab.Host("a").StartNoWait(t, "spawn")
	pids := pidsLine(t, sp)
	sp.Expect("ready", 10*time.Second)
	fmt.Printf("child %d %d %d %d\n", os.Getpid(), pids[0], pids[1], lab.guard.Process.Pid)
	switch mode {
	case "fail":
		t.Fatal("failing on purpose")
	case "panic":
		panic("panicking on purpose")
	case "hang":
		fmt.Println("ready")
		select {}
	}
}

// startChild runs TestChildLab in mode in a child test process and
// returns it with the pids it said (its own, its helper's, its daemon's,
// its lab's guard's) and the $TMPDIR it was given.
func startChild(t *testing.T, mode string) (p *proctest.Proc, pids []int, tmp string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildLab$", "-test.count=1")
	// A child that dies leaves its test directory: put it in ours.
	tmp = t.TempDir()
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "TMPDIR="+tmp)
	p = proctest.StartCmd(t, cmd)
	f := strings.Fields(p.Expect("child ", 60*time.Second))
	for _, s := range f[1:] {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("child said %q", f)
		}
		pids = append(pids, n)
	}
	if len(pids) != 4 {
		t.Fatalf("child said %q", f)
	}
	return p, pids, tmp
}

func TestCleanupOnFailure(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"fail", "panic"} {
		t.Run(mode, func(t *testing.T) {
			p, pids, tmp := startChild(t, mode)
			err := p.Wait(60 * time.Second)
			if err == nil {
				t.Fatalf("the child test passed, want it to %s", mode)
			}
			t.Logf("child %v: %s", pids, strings.SplitN(err.Error(), "\n", 2)[0])
			if left := Leftovers(pids[0]); len(left) > 0 {
				t.Errorf("the child's lab left %v", left)
			}
			for _, pid := range pids[1:] {
				if alive(pid) {
					t.Errorf("process %d of the child's lab alive", pid)
				}
			}
			noFIFODirs(t, tmp)
		})
	}
}

func TestSweep(t *testing.T) {
	needRoot(t)
	p, pids, _ := startChild(t, "hang")
	p.Expect("ready", 10*time.Second)
	// Kill the guard, then the test binary, as -test.timeout or a CI
	// runner would: no cleanup runs, nothing removes the lab.
	if err := syscall.Kill(pids[3], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pids[3], "the guard, killed")
	p.Kill()
	if left := Leftovers(pids[0]); len(left) == 0 {
		t.Fatal("the killed child's lab left nothing to sweep")
	}
	// The helper dies with the test binary (PR_SET_PDEATHSIG); the daemon,
	// in a session of its own, is still there for Sweep to kill.
	waitDead(t, pids[1], "the helper, whose test binary was killed")
	if !alive(pids[2]) {
		t.Fatalf("daemon %d gone before the sweep", pids[2])
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(pids[0]); len(left) > 0 {
		t.Errorf("after Sweep: %v", left)
	}
	if alive(pids[2]) {
		t.Errorf("daemon %d alive after Sweep", pids[2])
	}
	// Sweep does not know where a dead test kept its FIFO directories (in
	// its $TMPDIR, which its test runner removes, as t.TempDir does here).
}

func TestGuard(t *testing.T) {
	needRoot(t)
	p, pids, tmp := startChild(t, "hang")
	p.Expect("ready", 10*time.Second)
	p.Kill() // the lab's guard sees its test binary die
	for _, pid := range pids[1:] {
		waitDead(t, pid, "the child's helper, daemon and guard")
	}
	if left := Leftovers(pids[0]); len(left) > 0 {
		t.Errorf("once the guard is done: %v", left)
	}
	noFIFODirs(t, tmp)
}

// noFIFODirs fails t if a lab's FIFO directory is left under dir.
func noFIFODirs(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "gsl-") {
			t.Errorf("FIFO directory %s left", path)
			return filepath.SkipDir
		}
		return nil
	})
}

// waitDead waits up to 10 s for process pid to be gone (or a zombie).
func waitDead(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: process %d alive after 10 s", what, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// needRoot skips (or under CI fails) a test that New would skip.
func needRoot(t *testing.T) {
	t.Helper()
	if err := privileged(); err != nil {
		cannotRun(t, "%v", err)
	}
	if err := tools(); err != nil {
		cannotRun(t, "%v", err)
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{
		"gsl123-1":       123,
		"gsl123-1-a":     123,
		"gsl123-12-a-b":  123,
		"gsl123":         0,
		"gsl-1-a":        0,
		"gslx-1":         0,
		"gsl123-x":       0,
		"other":          0,
		"gsl0-1":         0,
		"gsl99999999-3":  99999999,
		"gsl12a-1-host":  0,
		"xgsl123-1-host": 0,
	} {
		if got := ownerPID(name); got != want {
			t.Errorf("ownerPID(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestCheckNames(t *testing.T) {
	for _, bad := range [][]string{
		nil, {""}, {"a", "a"}, {"a", "A"}, {"-a"}, {"a b"}, {"a/b"}, {"localhost"}, {"a.b"},
		{strings.Repeat("x", 52)},
	} {
		if err := checkNames(bad); err == nil {
			t.Errorf("checkNames(%q) accepted", bad)
		}
	}
	if err := checkNames([]string{"a", "host-2", strings.Repeat("x", 51)}); err != nil {
		t.Error(err)
	}
}

func TestCommandContext(t *testing.T) {
	noLeftovers(t)
	lab := New(t, "a")
	a := lab.Host("a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := a.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(cmd.Env, proctest.Env("sleep")...)
	p := proctest.StartCmd(t, cmd)
	p.Expect("ready", 10*time.Second)
	if pids, err := a.PIDs(); err != nil || !slices.Equal(pids, []int{p.PID()}) {
		t.Fatalf("host a runs %v (%v), want the helper %d itself (ip and nsenter execute it in place)", pids, err, p.PID())
	}
	if pgid, err := syscall.Getpgid(p.PID()); err != nil || pgid != p.PID() {
		t.Errorf("helper %d in process group %d (%v), want its own", p.PID(), pgid, err)
	}
	cancel()
	err := p.Wait(10 * time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("after cancel: %v, want killed by SIGKILL", err)
	}
}

func TestCommandAs(t *testing.T) {
	noLeftovers(t)
	lab := New(t, "a", "b")
	ctx := proctest.Context(t, 10*time.Second)
	out, err := lab.Host("b").CommandAs(ctx, 65534, 65534, "sh", "-c", "id -u; id -G; hostname; echo $HOSTNAME").Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got, want := string(out), "65534\n65534\nb\nb\n"; got != want {
		t.Errorf("as nobody on b: %q, want %q", got, want)
	}
}
