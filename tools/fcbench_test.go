package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"golang.org/x/sys/unix"
)

// fcbench starts its own receiver and senders and prints a table, a row
// per configuration, fifo and shm side by side per size; -json prints
// the same figures as JSON.
func TestFcbench(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "fcbench", "-size", "64", "-n", "300")
	r.ok(t, "fcbench -size 64")
	out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	header := regexp.MustCompile(`^SIZE +TRANSPORT +SPIN +N +MEDIAN µs +P99 µs +MEAN µs +MSGS/S +CPU µs/MSG +CPU % +VS FIFO$`)
	rows := []*regexp.Regexp{
		regexp.MustCompile(`^64 B +fifo +- +300 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+$`),
		regexp.MustCompile(`^64 B +shm +on +300 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+x$`),
	}
	if len(out) != 3 || !header.MatchString(out[0]) {
		t.Fatalf("fcbench printed\n%s\nwant a header and a row per transport", r.stdout)
	}
	for i, re := range rows {
		if !re.MatchString(out[i+1]) {
			t.Errorf("row %d: %q, want %v", i+1, out[i+1], re)
		}
	}
	// The columns line up: each header title ends where its cells end
	// (numbers are aligned right).
	for _, title := range []string{"N", "MEDIAN µs", "MSGS/S", "CPU %"} {
		end := len([]rune(out[0][:strings.Index(out[0], "  "+title+" ")+2])) + len([]rune(title))
		for _, row := range out[1:] {
			if rr := []rune(row); len(rr) < end || rr[end-1] == ' ' || (len(rr) > end && rr[end] != ' ') {
				t.Errorf("column %q does not end at %d in %q", title, end, row)
			}
		}
	}

	// -json: spin only for shm, slowest_pct with several senders (0 is
	// a value).
	r = e.run("", "fcbench", "-size", "64", "-n", "200", "-json")
	r.ok(t, "fcbench -json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], `"spin"`) || !strings.Contains(lines[1], `"spin":true`) ||
		strings.Contains(r.stdout, "slowest_pct") {
		t.Errorf("fcbench -json printed %q; want spin for shm only, and no slowest_pct with one sender", r.stdout)
	}
	r = e.run("", "fcbench", "-transport", "shm", "-spin=false", "-senders", "3", "-size", "1000", "-n", "2000", "-json")
	r.ok(t, "fcbench -json")
	var got struct {
		Transport  string
		Spin       *bool
		Senders    int
		Size       int
		N          int
		MedianUS   float64  `json:"median_us"`
		MsgsPerS   float64  `json:"msgs_per_s"`
		SlowestPct *float64 `json:"slowest_pct"`
		CPUPerMsg  float64  `json:"cpu_us_per_msg"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("fcbench -json: %v: %q", err, r.stdout)
	}
	if got.Transport != "shm" || got.Spin == nil || *got.Spin || got.Senders != 3 || got.Size != 1000 || got.N != 2000 ||
		got.MedianUS <= 0 || got.MsgsPerS <= 0 || got.SlowestPct == nil || got.CPUPerMsg <= 0 {
		t.Errorf("fcbench -json: %+v", got)
	}

	// Several senders: a SLOWEST % column, and the spin setting in SPIN.
	r = e.run("", "fcbench", "-transport", "shm", "-spin=false", "-senders", "2", "-size", "4096", "-n", "200")
	r.ok(t, "fcbench -senders 2")
	out = strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(out) != 2 || !strings.Contains(out[0], " SLOWEST % ") ||
		!regexp.MustCompile(`^4 KiB +shm +off +200 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9]+$`).MatchString(out[1]) {
		t.Errorf("fcbench -senders 2 printed\n%s", r.stdout)
	}

	r = e.run("", "fcbench", "-transport", "tcp")
	r.failed(t, "fcbench", "-transport")
	r = e.run("", "fcbench", "-senders", "0")
	r.failed(t, "fcbench", "-senders 0")
}

// fcbench -plot draws the latencies into an image; a file type it cannot
// draw is refused before anything is measured.
func TestFcbenchPlot(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "lat.png")
	r := e.run("", "fcbench", "-size", "64", "-n", "200", "-plot", file)
	r.ok(t, "fcbench -plot")
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("fcbench -plot made no %s: %v", file, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("%s is %v", file, b)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("fcbench -plot left %d files in %s, want the plot only", len(des), dir)
	}
	for _, bad := range []string{filepath.Join(dir, "lat.txt"), filepath.Join(dir, "no", "lat.png")} {
		r := e.run("", "fcbench", "-plot", bad)
		r.failed(t, "fcbench", "-plot "+bad)
		if r.stdout != "" {
			t.Errorf("fcbench -plot %s measured: %q", bad, r.stdout)
		}
	}
}

// fcbench -progress says on stderr which configuration it measures, and
// every D how far it is; without -progress (stderr not a terminal) it
// says nothing.
func TestFcbenchProgress(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "fcbench", "-size", "64", "-n", "3000", "-progress", "1ms")
	if r.code != 0 {
		t.Fatalf("fcbench -progress: exit %d, stderr %q", r.code, r.stderr)
	}
	starts := []string{"fcbench: 1 of 2: fifo, 64 B, 3000 round trips per sender", "fcbench: 2 of 2: shm, 64 B, 3000 round trips per sender"}
	running := regexp.MustCompile(`^fcbench: (fifo|shm), 64 B: [0-9]+ of 3000 round trips in [0-9.]+m?s$`)
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if strings.Contains(line, " of 2: ") {
			got = append(got, line)
		} else if !running.MatchString(line) {
			t.Errorf("fcbench -progress wrote %q", line)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(starts) {
		t.Errorf("fcbench -progress announced %q, want %q", got, starts)
	}
	if n := len(strings.Split(strings.TrimSpace(r.stdout), "\n")); n != 3 {
		t.Errorf("fcbench -progress printed %d lines on stdout, want the table's 3", n)
	}
}

// The plotting library is the tools' alone (fcbench, fcloop): nothing a library user
// imports depends on it.
func TestPlotOutOfCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "./simpl/...", "./transport/...", "./naming/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "gonum.org/") || strings.HasPrefix(pkg, "github.com/gosimpl/gosimpl/tools") {
			t.Errorf("the library depends on %s", pkg)
		}
	}
}

// fcbenchRun starts fcbench with args and TMPDIR tmp (where it makes its
// FIFO directory) and waits until it has both its children, the
// receiver and the sender, whose pids it returns.
func fcbenchRun(t *testing.T, e *env, tmp string, args ...string) (*simpltest.Proc, []int) {
	t.Helper()
	cmd := e.command(context.Background(), "fcbench", args...)
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	p := simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	deadline := time.Now().Add(lineTimeout)
	for {
		kids := fixChildren(t, p.PID())
		if len(kids) == 2 {
			return p, kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("fcbench has children %v after %v, want its receiver and sender", kids, lineTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling its children
	}
}

// waitGone waits, up to exitTimeout, until the processes of pidfds have
// exited; those still running then are killed and reported.
func waitGone(t *testing.T, what string, pids, pidfds []int) {
	t.Helper()
	deadline := time.Now().Add(exitTimeout)
	for i, fd := range pidfds {
		for !fixExited(fd) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling for its end
		}
		if !fixExited(fd) {
			t.Errorf("%s: process %d still runs after %v", what, pids[i], exitTimeout)
			unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		}
	}
}

func pidfdsOf(t *testing.T, pids []int) []int {
	t.Helper()
	var fds []int
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatalf("pidfd_open %d: %v", pid, err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		fds = append(fds, fd)
	}
	return fds
}

// fcbench killed with SIGKILL takes its receiver and sender with it
// (PR_SET_PDEATHSIG): neither runs on. The FIFO directory it could not
// remove, the next fcbench removes.
func TestFcbenchKilled(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	p, kids := fcbenchRun(t, e, tmp, "-transport", "shm", "-size", "64", "-n", "3000000")
	fds := pidfdsOf(t, kids)
	p.Signal(syscall.SIGKILL)
	// The children first: running on, they would hold the test's end of
	// fcbench's stderr open, and p.Wait with it.
	waitGone(t, "the children of a killed fcbench", kids, fds)
	p.Wait(exitTimeout)
	if left, _ := filepath.Glob(filepath.Join(tmp, "fcbench-*")); len(left) != 1 {
		t.Fatalf("a killed fcbench left %v in its TMPDIR, want its FIFO directory", left)
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcbench", "-transport", "shm", "-size", "64", "-n", "10")
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	e.runCmd(ctx, cmd, "").ok(t, "fcbench after a killed one")
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		t.Errorf("the next fcbench left %d entries in TMPDIR, want the killed one's directory removed: %v", len(des), des)
	}
}

// A failed run is one line: a receiver killed during the run is named
// with what the sender saw (not two lines, the child's and fcbench's);
// a run interrupted (SIGINT, SIGTERM) says so. Either way the children
// are gone when fcbench has exited.
func TestFcbenchFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		sig  syscall.Signal
		want string
	}{{"receiver killed", 0, "receiver"}, {"SIGINT", syscall.SIGINT, "interrupted"}, {"SIGTERM", syscall.SIGTERM, "interrupted"}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p, kids := fcbenchRun(t, e, t.TempDir(), "-transport", "fifo", "-size", "64", "-n", "3000000")
			fds := pidfdsOf(t, kids)
			if c.sig == 0 {
				recv := 0
				for _, k := range kids {
					if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k)); strings.Contains(string(b), "-role\x00recv\x00") {
						recv = k
					}
				}
				if recv == 0 {
					t.Fatalf("no receiver among fcbench's children %v", kids)
				}
				syscall.Kill(recv, syscall.SIGKILL)
			} else {
				p.Signal(c.sig)
			}
			p.Wait(exitTimeout)
			if code := p.Cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("fcbench: %v, want exit 1; stderr %q", p.Cmd.ProcessState, p.Stderr())
			}
			checkOneLine(t, "fcbench", p.Stderr(), c.want)
			waitGone(t, "fcbench's children", kids, fds)
		})
	}
}

// The CPU figures add the two processes' CPU time over the same window,
// the measured round trips: two processes cannot keep more CPUs busy
// than the machine has (before, the receiver's was counted from its start
// to its end, warm-up and idle time included, and the sum reached 300%
// of 2 CPUs in short runs).
func TestFcbenchCPU(t *testing.T) {
	e := newEnv(t)
	limit := 100 * float64(len(allowedCPUs(t)))
	for range 6 {
		r := e.run("", "fcbench", "-transport", "shm", "-size", "64", "-n", "300", "-senders", "2", "-json")
		r.ok(t, "fcbench -json")
		var got struct {
			CPUPct float64 `json:"cpu_pct"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("fcbench -json: %v: %q", err, r.stdout)
		}
		if got.CPUPct <= 0 || got.CPUPct > 1.1*limit {
			t.Errorf("cpu_pct %.0f: want more than 0 and at most %.0f (100 per CPU, 10%% over for the reads' own spacing)", got.CPUPct, limit)
		}
	}
}
