package qnx_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// ConnectDetach releases the other threads blocked in MsgSend on the
// coid with EBADF, as QNX's kernel does, whatever the way the MsgSend
// waits: on the server (a stopped one), under a context or a
// TimerTimeout (with an UNBLOCK channel, which would otherwise ask the
// server), or behind a pulse the server has not taken. A MsgSend on
// another coid to the same server goes on and is answered. Before, a
// detached coid's MsgSend waited for the server.
func TestConnectDetachReleases(t *testing.T) {
	for _, c := range []struct {
		name   string
		flags  int  // the channel's
		cancel bool // a cancellable context
		armed  int  // a TimerTimeout of a minute for these states
		pulse  bool // a pulse first, which the stopped server does not take
		alone  bool // no other coid: the detach is the last one
	}{
		{name: "plain"},
		{name: "alone", alone: true},
		{name: "cancellable", cancel: true},
		{name: "unblock-armed", flags: qnx.NTO_CHF_UNBLOCK, armed: qnx.NTO_TIMEOUT_SEND | qnx.NTO_TIMEOUT_REPLY},
		{name: "behind-pulse", pulse: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := setup(t)
			srv, chid := startEcho(t, env, c.flags)
			coid, err := qnx.ConnectAttach(0, srv.PID(), chid, qnx.NTO_SIDE_CHANNEL, 0)
			if err != nil {
				t.Fatal(err)
			}
			other := -1
			if !c.alone {
				if other, err = qnx.ConnectAttach(0, srv.PID(), chid, qnx.NTO_SIDE_CHANNEL, 0); err != nil {
					t.Fatal(err)
				}
			}
			stop(t, srv)
			if c.pulse {
				if err := qnx.MsgSendPulse(coid, -1, 1, 2); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			if c.cancel {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ctx = cctx
			}
			detached := sendOnThread(ctx, coid, "one", c.armed)
			var answered chan sendResult
			if other >= 0 {
				answered = sendOnThread(context.Background(), other, "two", 0)
			}
			waitInMsgSend(t, map[bool]int{true: 1, false: 2}[c.alone])
			if err := qnx.ConnectDetach(coid); err != nil {
				t.Fatalf("ConnectDetach: %v", err)
			}
			select {
			case r := <-detached:
				if !errors.Is(r.err, qnx.EBADF) {
					t.Errorf("MsgSend on the detached coid: %q, %v; want EBADF", r.reply, r.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("MsgSend on the detached coid still blocked 5 s after ConnectDetach")
			}
			srv.Signal(syscall.SIGCONT)
			if other >= 0 {
				select {
				case r := <-answered:
					if r.err != nil || r.reply != "two" {
						t.Errorf("MsgSend on the other coid: %q, %v; want its echo", r.reply, r.err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("MsgSend on the other coid not answered within 10 s of the server's continuing")
				}
				qnx.ConnectDetach(other)
			}
			if _, err := qnx.MsgSend(context.Background(), coid, []byte("x"), nil); !errors.Is(err, qnx.EBADF) {
				t.Errorf("MsgSend after ConnectDetach: %v, want EBADF", err)
			}
			srv.Kill()
			srv.Wait(10 * time.Second)
			reap(t)
		})
	}
}

type sendResult struct {
	reply string
	err   error
}

// sendOnThread makes a MsgSend of msg on coid from a thread of its own,
// with a TimerTimeout of a minute for the states armed (none if 0).
func sendOnThread(ctx context.Context, coid int, msg string, armed int) chan sendResult {
	res := make(chan sendResult, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if armed != 0 {
			ns := uint64(time.Minute)
			if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, armed, nil, &ns, nil); err != nil {
				res <- sendResult{err: err}
				return
			}
		}
		reply := make([]byte, 16)
		n, err := qnx.MsgSend(ctx, coid, []byte(msg), reply)
		res <- sendResult{string(bytes.TrimRight(reply[:max(n, 0)], "\x00")), err}
	}()
	return res
}

// waitInMsgSend waits until n goroutines are inside MsgSend's wait (the
// drain of earlier pulses, or the Send itself), read from their stacks.
func waitInMsgSend(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := len(proctest.GoroutinesWith("qnx.(*peer).send(")) + len(proctest.GoroutinesWith("qnx.(*peer).drainSend("))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d MsgSends waiting after 10 s", got, n)
		}
		time.Sleep(time.Millisecond) // polling the goroutines' state
	}
}
