package qnx_test

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// A MsgSend or MsgReceive that fails before it could block (an unknown
// coid or chid) still disarms the thread's TimerTimeout, as QNX's kernel
// calls do: it must not fire on a later, untimed, call. Before, it stayed
// armed (helper-40).
func TestFailedCallDisarms(t *testing.T) {
	setup(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ns := uint64(time.Millisecond)
	armed := func(states int) {
		t.Helper()
		if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, states, nil, &ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	left := func(what string) {
		t.Helper()
		prev, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, 0, nil, nil, nil)
		if err != nil || prev != 0 {
			t.Errorf("after %s: TimerTimeout finds %#x still armed (%v), want none", what, prev, err)
		}
	}
	armed(qnx.NTO_TIMEOUT_SEND | qnx.NTO_TIMEOUT_REPLY)
	if _, err := qnx.MsgSend(context.Background(), 12345, []byte("x"), nil); !errors.Is(err, qnx.EBADF) {
		t.Fatalf("MsgSend on an unknown coid: %v, want EBADF", err)
	}
	left("MsgSend on an unknown coid")
	armed(qnx.NTO_TIMEOUT_RECEIVE)
	if _, err := qnx.MsgReceive(context.Background(), 999, make([]byte, 64), nil); !errors.Is(err, qnx.ESRCH) {
		t.Fatalf("MsgReceive on an unknown chid: %v, want ESRCH", err)
	}
	left("MsgReceive on an unknown chid")
	armed(qnx.NTO_TIMEOUT_RECEIVE)
	if _, err := qnx.MsgReceivePulse(context.Background(), 999, make([]byte, 64)); !errors.Is(err, qnx.ESRCH) {
		t.Fatalf("MsgReceivePulse on an unknown chid: %v, want ESRCH", err)
	}
	left("MsgReceivePulse on an unknown chid")
}

// A TimerTimeout of ~0 ns, "practically forever" to a C caller, does not
// wrap to a deadline in the past: a MsgReceive armed with it takes the
// pulse that waits. Before, it failed at once with ETIMEDOUT.
func TestTimerTimeoutForever(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	coid, err := qnx.ConnectAttach(0, os.Getpid(), chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	if err := qnx.MsgSendPulse(coid, -1, 5, 6); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	forever := uint64(math.MaxUint64)
	if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, &forever, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rcvid, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil); rcvid != 0 || err != nil {
		t.Fatalf("MsgReceive armed for ~0 ns with a pulse waiting: %d, %v; want the pulse", rcvid, err)
	}
}
