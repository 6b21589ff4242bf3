package tools_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fcrecv whose output nobody reads (a pipe to a stopped pager, say)
// still ends on SIGTERM, exiting 0 and removing its FIFOs: the write it
// is stuck in does not hold it. Before, the signal was caught and the
// tool waited in its write for good (helper-46).
func TestSignalWhileOutputBlocked(t *testing.T) {
	e := newEnv(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.command(ctx, "fcrecv", "-n", "BLK", "-max-print", "0")
	cmd.Stdout = pw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pid := cmd.Process.Pid
	e.addPID(pid)
	defer cmd.Process.Kill()
	// Its first line, then nothing more is read.
	var line []byte
	for b := make([]byte, 1); !strings.HasSuffix(string(line), "\n"); line = append(line, b[0]) {
		if _, err := pr.Read(b); err != nil {
			t.Fatalf("fcrecv's first line: %q, %v", line, err)
		}
	}
	if want := fmt.Sprintf("attached BLK pid %d\n", pid); string(line) != want {
		t.Fatalf("fcrecv printed %q, want %q", line, want)
	}
	big := strings.Repeat("x", 60<<10)
	if r := e.run("", "fcsend", "-r", "BLK", "-m", big); r.code != 0 {
		t.Fatalf("first fcsend: %d %s", r.code, r.stderr)
	}
	second := e.start("fcsend", "-r", "BLK", "-m", big) // its line does not fit: fcrecv blocks
	deadline := time.Now().Add(lineTimeout)
	for !inPipeWrite(pid) {
		if time.Now().After(deadline) {
			t.Fatal("fcrecv not blocked writing its output within 10 s")
		}
		time.Sleep(time.Millisecond) // polling its state
	}
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("fcrecv after SIGTERM: %v, stderr %q; want exit 0", err, stderr.String())
		}
		t.Logf("fcrecv ended %v after SIGTERM", time.Since(t0).Round(time.Millisecond))
	case <-time.After(lineTimeout):
		t.Fatal("fcrecv still running 10 s after SIGTERM, stuck writing its output")
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "*BLK.*")); len(left) > 0 {
		t.Errorf("fcrecv left %v", left)
	}
	// Answered (fcrecv replies whatever its output does) or failed: it
	// ends either way.
	second.Wait(lineTimeout)
}

// inPipeWrite tells whether a thread of process pid sleeps writing to a
// pipe.
func inPipeWrite(pid int) bool {
	ws, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	for _, w := range ws {
		if b, err := os.ReadFile(w); err == nil && strings.Contains(string(b), "pipe_write") {
			return true
		}
	}
	return false
}

// fcsub signalled while it waits for its broker (-wait) detaches and
// exits 0, as its documentation says of a signal; before, it exited 1,
// "interrupted while waiting" (helper-46).
func TestSubSignalledWaiting(t *testing.T) {
	e := newEnv(t)
	p := e.start("fcsub", "-wait", "1m", "a")
	e.waitFile(fmt.Sprintf("fcsub_%d.%d", p.PID(), p.PID())) // attached, now waiting
	stop(t, p, syscall.SIGTERM)
}

// fcsend whose stdout and stderr are one pipe nobody reads (2>&1 | a
// stopped reader) ends on SIGTERM: neither the reply it was printing
// nor the report of the signal holds it. Before, its report of the
// interrupted write waited on the same full pipe (helper-50).
func TestSignalWhileOutputAndErrorsBlocked(t *testing.T) {
	e := newEnv(t)
	srv := e.startRecv("ECHO", "-max-print", "1") // short lines: a few hundred fit its pipe
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	in, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := e.command(ctx, "fcsend", "-r", "ECHO")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	pw.Close()
	pid := cmd.Process.Pid
	e.addPID(pid)
	defer cmd.Process.Kill()
	go func() { // lines, until fcsend stops reading them
		line := []byte(strings.Repeat("y", 5000) + "\n") // over PIPE_BUF: written in parts, it fills the pipe to the last byte
		for {
			if _, err := feed.Write(line); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(lineTimeout)
	for !inPipeWrite(pid) {
		if time.Now().After(deadline) {
			t.Fatal("fcsend not blocked writing its output within 10 s")
		}
		time.Sleep(time.Millisecond) // polling its state
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case <-errc: // exit 1, the interrupted write reported if the pipe took it
	case <-time.After(lineTimeout):
		t.Fatal("fcsend still running 10 s after SIGTERM, its output and errors stuck")
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "*fcsend_*")); len(left) > 0 {
		t.Errorf("fcsend left %v", left)
	}
	stop(t, srv, syscall.SIGTERM)
}

// fcsub whose broker is stopped (SIGSTOP: alive, answering nothing) ends
// on SIGTERM within a second or two, exit 0, instead of waiting 5 s for
// its unsubscription; the broker, once it runs again, drops the
// subscription of the process that went.
func TestSubBrokerStopped(t *testing.T) {
	e := newEnv(t)
	broker, _ := e.startBroker()
	sub := e.startSub("a/#")
	broker.Signal(syscall.SIGSTOP)
	t0 := time.Now()
	stop(t, sub, syscall.SIGTERM)
	if d := time.Since(t0); d >= 4*time.Second {
		t.Errorf("fcsub took %v to exit with its broker stopped, want about a second", d)
	}
	broker.Signal(syscall.SIGCONT)
	deadline := time.Now().Add(lineTimeout)
	for {
		r := e.run("", "fcsub", "-list", "-json")
		r.ok(t, "fcsub -list -json")
		if r.stdout == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker still lists the gone subscriber's subscription:\n%s", r.stdout)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker's state, which has no event to wait on
	}
	stop(t, broker, syscall.SIGTERM)
}
