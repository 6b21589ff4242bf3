package qnx_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// A MsgSend waits for the pulses sent before it on its coid, but no
// longer than its context or its thread's TimerTimeout for the SEND
// state: behind a pulse that a stopped server does not take, it gives up
// with ETIMEDOUT (EINTR when cancelled) as a MsgSend that waits on the
// server does. Before, it waited for the pulse regardless.
func TestSendBehindStuckPulse(t *testing.T) {
	env := setup(t)
	srv, coid := echoServer(t, env)
	srv.Signal(syscall.SIGSTOP)
	defer syscall.Kill(srv.PID(), syscall.SIGCONT) // whatever happens: not left stopped
	// Stopped before the pulse goes, or it may be taken first.
	deadline := time.Now().Add(10 * time.Second)
	for !stopped(srv.PID()) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not stop within 10s")
		}
		time.Sleep(time.Millisecond) // polling its state
	}
	if err := qnx.MsgSendPulse(coid, -1, 1, 2); err != nil {
		t.Fatal(err)
	}
	sendWithin := func(what string, want error, ctx context.Context, armSend bool) {
		t.Helper()
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			if armSend {
				ns := uint64(100 * time.Millisecond)
				if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_SEND, nil, &ns, nil); err != nil {
					errc <- err
					return
				}
			}
			_, err := qnx.MsgSend(ctx, coid, []byte("x"), make([]byte, 8))
			errc <- err
		}()
		select {
		case err := <-errc:
			if err != want {
				t.Errorf("%s: MsgSend behind a stuck pulse: %v, want %v", what, err, want)
			}
		case <-time.After(5 * time.Second):
			srv.Signal(syscall.SIGCONT) // lets it end, so that the test ends
			t.Fatalf("%s: MsgSend behind a stuck pulse still waiting after 5s", what)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	sendWithin("deadline", qnx.ETIMEDOUT, ctx, false)
	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, ccancel)
	sendWithin("cancelled", qnx.EINTR, cctx, false)
	sendWithin("TimerTimeout", qnx.ETIMEDOUT, context.Background(), true)
	srv.Signal(syscall.SIGCONT)
	qnx.ConnectDetach(coid)
	srv.Kill()
	srv.Wait(10 * time.Second)
	reap(t)
}

// stopped reports whether process pid is stopped (state T in
// /proc/PID/stat).
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] == "T"
}
