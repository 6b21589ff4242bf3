package tools_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"golang.org/x/sys/unix"
)

// fixChildren lists the processes whose parent is pid.
func fixChildren(t *testing.T, pid int) []int {
	t.Helper()
	des, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []int
	for _, de := range des {
		k, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + de.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold anything.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, k)
		}
	}
	return kids
}

// fixExited tells whether the process a pidfd refers to has exited.
func fixExited(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n == 1
}

// A signal that ends a soak run early, SIGHUP (a closed terminal) as
// SIGINT (^C) and SIGTERM do, ends it in order, as its time running out
// would: the children stopped and reaped, the leak checks run, the
// summary printed with nothing leaked, its FIFO directory removed. But
// an interrupted run is not a pass: the summary says it was interrupted
// and how long of the time asked it ran, and fcsoak exits 1 with the one
// line "interrupted after X of Y". (Before, it exited 0 with a summary
// like any other; and before that, SIGHUP killed fcsoak outright: its
// FIFO directory and its children's FIFOs stayed, its children ran on.)
func TestFcsoakSignalEndsRun(t *testing.T) {
	progress := regexp.MustCompile(`^fcsoak: [0-9.]+[mµn]?s of 10m0s: sent [0-9]+, verified ([0-9]+), corrupt 0, crossed 0, failed [0-9]+, kills 0$`)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			tmp := t.TempDir() // fcsoak makes its FIFO directory here
			cmd := e.command(context.Background(), "fcsoak", "-duration", "10m", "-senders", "1", "-kill-every", "0",
				"-max-size", "1024", "-seed", "3", "-progress", "100ms")
			cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
			p := simpltest.StartCmd(t, cmd)
			e.addPID(p.PID())
			out := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(p.Stdout)
				out <- b
			}()

			// Under way: a reply verified, so that the run passes.
			deadline := time.Now().Add(soakTimeout)
			for verified := false; !verified; {
				for _, l := range strings.Split(p.Stderr(), "\n") {
					if m := progress.FindStringSubmatch(l); m != nil && m[1] != "0" {
						verified = true
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("fcsoak verified no reply within %v; stderr %q", soakTimeout, p.Stderr())
				}
				time.Sleep(20 * time.Millisecond)
			}
			kids := fixChildren(t, p.PID())
			if len(kids) != 2 {
				t.Fatalf("fcsoak (pid %d) has children %v, want 2: its receiver and its sender", p.PID(), kids)
			}
			var pidfds []int
			for _, k := range kids {
				fd, err := unix.PidfdOpen(k, 0)
				if err != nil {
					t.Fatalf("pidfd_open %d: %v", k, err)
				}
				defer unix.Close(fd)
				pidfds = append(pidfds, fd)
			}

			p.Signal(sig)
			var stdout string
			select {
			case b := <-out:
				stdout = string(b)
			case <-time.After(soakTimeout):
				t.Fatalf("fcsoak did not end within %v of %v", soakTimeout, sig)
			}
			p.Wait(exitTimeout)
			ps := p.Cmd.ProcessState
			if !ps.Exited() || ps.ExitCode() != 1 {
				t.Errorf("fcsoak after %v: %v, want exit 1; stdout %q, stderr %q", sig, ps, stdout, p.Stderr())
			}
			for i, fd := range pidfds {
				if !fixExited(fd) {
					t.Errorf("fcsoak's child %d runs on after fcsoak ended on %v", kids[i], sig)
					unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
					for end := time.Now().Add(exitTimeout); !fixExited(fd) && time.Now().Before(end); {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}
			if !regexp.MustCompile(`^soak of [0-9.]+[mµn]?s \(interrupted, of 10m0s asked\): `).MatchString(stdout) ||
				!regexp.MustCompile(`(?m)^leaked +0  FIFOs 0, /dev/shm 0, System V 0, processes 0$`).MatchString(stdout) {
				t.Errorf("fcsoak after %v printed %q, want the summary marked interrupted, with nothing leaked", sig, stdout)
			}
			lines := strings.Split(strings.TrimSuffix(p.Stderr(), "\n"), "\n")
			if last := lines[len(lines)-1]; !regexp.MustCompile(`^fcsoak: interrupted after [0-9.]+[mµn]?s of 10m0s$`).MatchString(last) {
				t.Errorf("fcsoak after %v ended stderr with %q, want the one line \"fcsoak: interrupted after X of 10m0s\"", sig, last)
			}
			for _, l := range lines[1 : len(lines)-1] {
				if !progress.MatchString(l) {
					t.Errorf("fcsoak after %v wrote %q on stderr, not a progress line", sig, l)
				}
			}
			var left []string
			des, err := os.ReadDir(tmp)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			for _, de := range des {
				sub, _ := os.ReadDir(tmp + "/" + de.Name())
				for _, s := range sub {
					left = append(left, de.Name()+"/"+s.Name())
				}
				if len(sub) == 0 {
					left = append(left, de.Name())
				}
			}
			if len(left) > 0 {
				t.Errorf("fcsoak after %v left %v in its TMPDIR", sig, left)
			}
		})
	}
}

// startSoak starts a 10-minute fcsoak with args and TMPDIR tmp, and waits
// until it has n children.
func startSoak(t *testing.T, e *env, tmp string, n int, args ...string) (*simpltest.Proc, []int) {
	t.Helper()
	cmd := e.command(context.Background(), "fcsoak", append([]string{"-duration", "10m", "-kill-every", "0", "-max-size", "1024"}, args...)...)
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	p := simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	deadline := time.Now().Add(soakTimeout)
	for {
		kids := fixChildren(t, p.PID())
		if len(kids) == n {
			return p, kids
		}
		if time.Now().After(deadline) {
			t.Fatalf("fcsoak has children %v after %v, want %d", kids, soakTimeout, n)
		}
		time.Sleep(20 * time.Millisecond) // polling its children
	}
}

// After the first signal, which ends the run in order, a second one ends
// fcsoak at once (its default effect): here the run's end waits for a
// sender that does not stop (stopped with SIGSTOP), which fcsoak would
// wait 30 s for; ^C again ends it without that wait.
func TestFcsoakSecondSignal(t *testing.T) {
	e := newEnv(t)
	p, kids := startSoak(t, e, t.TempDir(), 2, "-senders", "1")
	fds := pidfdsOf(t, kids)
	sender := 0
	for _, k := range kids {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(k) + "/cmdline"); strings.Contains(string(b), "-role\x00send\x00") {
			sender = k
		}
	}
	if sender == 0 {
		t.Fatalf("no sender among fcsoak's children %v", kids)
	}
	syscall.Kill(sender, syscall.SIGSTOP)
	defer syscall.Kill(sender, syscall.SIGKILL)
	p.Signal(syscall.SIGINT)
	// Again, until it ends: the second may come before fcsoak has seen
	// the first.
	done := make(chan struct{})
	go func() { p.Wait(exitTimeout); close(done) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	end := time.After(exitTimeout)
	for ended := false; !ended; {
		select {
		case <-done:
			ended = true
		case <-tick.C:
			p.Signal(syscall.SIGINT)
		case <-end:
			t.Fatalf("fcsoak still runs %v after a second SIGINT", exitTimeout)
		}
	}
	<-done
	ws, _ := p.Cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("fcsoak after a second SIGINT: %v, want killed by it", p.Cmd.ProcessState)
	}
	syscall.Kill(sender, syscall.SIGKILL)
	waitGone(t, "the children of fcsoak killed by a second SIGINT", kids, fds)
}

// fcsoak killed with SIGKILL takes its children with it
// (PR_SET_PDEATHSIG), and the next fcsoak removes the FIFO directory
// and, as root with an attack (run as nobody), the copy of its binary
// that the killed one left.
func TestFcsoakKilled(t *testing.T) {
	e := newEnv(t)
	// A TMPDIR nobody can reach, for the attacker's copy of fcsoak.
	tmp, err := os.MkdirTemp("", "gosimpl-fcsoak-killed-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	args, n, dirs := []string{"-senders", "2"}, 3, 1
	if os.Geteuid() == 0 {
		args, n, dirs = append(args, "-squat"), 4, 2 // and fcsoak-bin-*
	}
	p, kids := startSoak(t, e, tmp, n, args...)
	fds := pidfdsOf(t, kids)
	p.Signal(syscall.SIGKILL)
	waitGone(t, "the children of a killed fcsoak", kids, fds)
	p.Wait(exitTimeout)
	if left, _ := filepath.Glob(filepath.Join(tmp, "fcsoak-*")); len(left) != dirs {
		t.Fatalf("a killed fcsoak left %v in its TMPDIR, want %d directories", left, dirs)
	}

	ctx, cancel := context.WithTimeout(context.Background(), soakTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcsoak", "-duration", "300ms", "-senders", "1", "-kill-every", "0")
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	e.runCmd(ctx, cmd, "").ok(t, "fcsoak after a killed one")
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("the next fcsoak left %v in TMPDIR, want the killed one's directories removed", names)
	}
}
