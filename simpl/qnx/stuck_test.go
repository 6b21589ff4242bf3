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
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A MsgSend waits for the pulses sent before it on its coid, but no
// longer than its context or its thread's TimerTimeout for the SEND
// state: behind a pulse that a stopped server does not take, it gives up
// with ETIMEDOUT (EINTR when cancelled) as a MsgSend that waits on the
// server does. Before, it waited for the pulse regardless.
func TestSendBehindStuckPulse(t *testing.T) {
	env := setup(t)
	srv, coid := echoServer(t, env)
	stop(t, srv)
	if err := qnx.MsgSendPulse(coid, -1, 1, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	sendWithin(t, srv, coid, "deadline", qnx.ETIMEDOUT, ctx, 0)
	cctx, ccancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, ccancel)
	sendWithin(t, srv, coid, "cancelled", qnx.EINTR, cctx, 0)
	sendWithin(t, srv, coid, "TimerTimeout", qnx.ETIMEDOUT, context.Background(), qnx.NTO_TIMEOUT_SEND)
	srv.Signal(syscall.SIGCONT)
	qnx.ConnectDetach(coid)
	srv.Kill()
	srv.Wait(10 * time.Second)
	reap(t)
}

// A message queued to a stopped server is SEND-blocked: a TimerTimeout
// armed for that state, or a cancellation, ends the MsgSend at once with
// the message withdrawn, as the QNX kernel withdraws it, whatever the
// channel's flags and whether or not REPLY is armed too. Before, a
// client with only SEND armed, or on an UNBLOCK channel, asked the
// server and waited for it to run. Through FIFOs the transport cannot
// tell a queued message from a received one, and the client still asks
// (doc.go).
func TestSendTimeoutQueued(t *testing.T) {
	if overFIFO() {
		t.Skip("through FIFOs a queued message cannot be withdrawn (doc.go)")
	}
	for _, c := range []struct {
		name  string
		flags int // the channel's
		armed int // TimerTimeout's; 0: a cancellation
		want  error
	}{
		{"send", 0, qnx.NTO_TIMEOUT_SEND, qnx.ETIMEDOUT},
		{"unblock-send", qnx.NTO_CHF_UNBLOCK, qnx.NTO_TIMEOUT_SEND, qnx.ETIMEDOUT},
		{"unblock-send-reply", qnx.NTO_CHF_UNBLOCK, qnx.NTO_TIMEOUT_SEND | qnx.NTO_TIMEOUT_REPLY, qnx.ETIMEDOUT},
		{"unblock-cancelled", qnx.NTO_CHF_UNBLOCK, 0, qnx.EINTR},
		// A reply buffer larger than the connection's first lane: the
		// Send waits for a new lane, which a stopped server cannot set
		// up; the SEND state's end ends that wait too.
		{"send-new-lane", 0, qnx.NTO_TIMEOUT_SEND, qnx.ETIMEDOUT},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := setup(t)
			srv, coid := echoServer(t, env, c.flags)
			stop(t, srv)
			ctx := context.Background()
			if c.armed == 0 {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(100*time.Millisecond, cancel)
				ctx = cctx
			}
			replySize := 8
			if c.name == "send-new-lane" {
				replySize = 64 << 10
			}
			sendWithin(t, srv, coid, c.name, c.want, ctx, c.armed, replySize)
			// Withdrawn, not delivered: the server, let go, answers the
			// next message, and nothing else comes back.
			srv.Signal(syscall.SIGCONT)
			reply := make([]byte, 16)
			n, err := qnx.MsgSend(context.Background(), coid, []byte("next"), reply)
			if err != nil || string(reply[:n]) != "next" {
				t.Fatalf("MsgSend after the withdrawn one: %q, %v", reply[:n], err)
			}
			qnx.ConnectDetach(coid)
			srv.Kill()
			srv.Wait(10 * time.Second)
			reap(t)
		})
	}
}

// stop stops srv (SIGSTOP) and waits until it is, continuing it when
// the test ends whatever happens.
func stop(t *testing.T, srv *simpltest.Proc) {
	t.Helper()
	srv.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(srv.PID(), syscall.SIGCONT) })
	deadline := time.Now().Add(10 * time.Second)
	for !stopped(srv.PID()) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not stop within 10s")
		}
		time.Sleep(time.Millisecond) // polling its state
	}
}

// sendWithin makes a MsgSend of "x" on coid, with a 100 ms TimerTimeout
// for the states armed (none if 0) and a reply buffer of replySize bytes
// (8 if not given), on a thread of its own, and checks that it fails
// with want within 5 s.
func sendWithin(t *testing.T, srv *simpltest.Proc, coid int, what string, want error, ctx context.Context, armed int, replySize ...int) {
	size := 8
	if len(replySize) > 0 {
		size = replySize[0]
	}
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if armed != 0 {
			ns := uint64(100 * time.Millisecond)
			if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, armed, nil, &ns, nil); err != nil {
				errc <- err
				return
			}
		}
		_, err := qnx.MsgSend(ctx, coid, []byte("x"), make([]byte, size))
		errc <- err
	}()
	select {
	case err := <-errc:
		if err != want {
			t.Errorf("%s: MsgSend to a stopped server: %v, want %v", what, err, want)
		}
	case <-time.After(5 * time.Second):
		srv.Signal(syscall.SIGCONT) // lets it end, so that the test ends
		t.Fatalf("%s: MsgSend to a stopped server still waiting after 5s", what)
	}
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
