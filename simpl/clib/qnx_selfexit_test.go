package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// A C program with a coid to its own channel, never sent on, exits at
// once: its atexit Shutdown sends no disconnect to the channel nobody
// will receive on (it waited 5 s: helper-66).
func TestQNXSelfConnExit(t *testing.T) {
	builtQNX(t)
	if out, err := exec.Command("cc", "-Wall", "-Werror", "-I", "include", filepath.Join("testdata", "qnx_selfexit.c"), "-L", binDir, "-lsimpl", "-lpthread", "-o", filepath.Join(binDir, "qnx_selfexit")).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	dir := proctest.Dir(t)
	t0 := time.Now()
	p := start(t, dir, nil, "qnx_selfexit")
	out := p.output(t, qwait)
	p.exits(t, 0)
	d := time.Since(t0)
	t.Logf("output %q, exited after %v", out, d)
	if d > 2*time.Second {
		t.Errorf("a C program with a coid to its own channel took %v to exit", d)
	}
}

// timer_create, timer_settime and timer_delete (the pulse timers'
// wrappers) clear the thread's TimerTimeout, as every call of the API
// does (helper-66).
func TestQNXTimerClears(t *testing.T) {
	builtQNX(t)
	if out, err := exec.Command("cc", "-Wall", "-Werror", "-I", "include", filepath.Join("testdata", "qnx_timerclear.c"), "-L", binDir, "-lsimpl", "-lpthread", "-o", filepath.Join(binDir, "qnx_timerclear")).CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	dir := proctest.Dir(t)
	p := start(t, dir, nil, "qnx_timerclear")
	out := p.output(t, qwait)
	for _, call := range []string{"timer_create 0", "timer_settime 0", "timer_delete 0", "MsgSendPulse 0"} {
		if !strings.Contains(string(out), call+": armed after it 0\n") {
			t.Errorf("%s did not clear the TimerTimeout:\n%s", call, out)
		}
	}
}
