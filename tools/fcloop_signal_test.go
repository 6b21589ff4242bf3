package tools_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A signal ends fcloop at once whatever it waits for, not only during
// the loop: here a cyclictest that does not end with the loop (a script
// that sleeps), which fcloop would otherwise wait for 30 s past the
// loop's end. It exits 1, "interrupted", with the stand-in stopped.
func TestFcloopSignalAfterLoop(t *testing.T) {
	e := newEnv(t)
	script := filepath.Join(t.TempDir(), "cyclictest")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := e.command(context.Background(), "fcloop", "-d", "100ms", "-cyclictest", script)
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	p := simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	// The loop is over when the stand-in is fcloop's only child left
	// (the loop's processes have exited).
	sleeper := 0
	deadline := time.Now().Add(runTimeout)
	for sleeper == 0 {
		kids := childrenOf(p.PID())
		if len(kids) == 1 && isProcess(kids[0], sleepPath(t)) {
			sleeper = kids[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fcloop's loop did not end within %v: children %v", runTimeout, kids)
		}
		time.Sleep(10 * time.Millisecond) // polling its children
	}
	fds := pidfdsOf(t, []int{sleeper})
	p.Signal(syscall.SIGINT)
	p.Wait(exitTimeout) // fails the test if fcloop still runs then
	if code := p.Cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("fcloop after SIGINT: %v, want exit 1", p.Cmd.ProcessState)
	}
	checkOneLine(t, "fcloop", p.Stderr(), "interrupted")
	waitGone(t, "fcloop's cyclictest stand-in", []int{sleeper}, fds)
}

// sleepPath is the program sleep runs as (/proc/PID/exe).
func sleepPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// fcloop killed with SIGKILL while cyclictest runs: cyclictest is told
// to stop (SIGINT, PR_SET_PDEATHSIG) and ends by itself, removing its
// shared memory object, /dev/shm/cyclictestPID, which it leaves when
// killed (and when it dies of SIGPIPE writing to a pipe nobody reads).
func TestFcloopKilledCyclictest(t *testing.T) {
	p, _, ctPID := startFcloopCyclictest(t)
	fds := pidfdsOf(t, []int{ctPID})
	p.Signal(syscall.SIGKILL)
	p.Wait(exitTimeout)
	waitGone(t, "the cyclictest of a killed fcloop", []int{ctPID}, fds)
	shm := fmt.Sprintf("/dev/shm/cyclictest%d", ctPID)
	if _, err := os.Stat(shm); err == nil {
		os.Remove(shm)
		t.Errorf("%s left behind by the cyclictest of a killed fcloop", shm)
	}
}
