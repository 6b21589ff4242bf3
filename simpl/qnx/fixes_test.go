package qnx_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// threadSends sends msgs on coid in turn from one OS thread (so that
// the server sees one client thread, and gives each message the same
// rcvid), each with a 64-byte reply buffer; it reports each outcome:
// "reply STATUS TEXT" or "err ERROR".
func threadSends(ctx context.Context, coid int, msgs ...string) <-chan string {
	out := make(chan string, len(msgs))
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for _, m := range msgs {
			reply := make([]byte, 64)
			status, err := qnx.MsgSend(ctx, coid, []byte(m), reply)
			if err != nil {
				out <- "err " + err.Error()
				continue
			}
			out <- fmt.Sprintf("reply %d %s", status, trimZero(reply))
		}
	}()
	return out
}

func trimZero(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// outcome takes threadSends' next outcome, within ctx.
func outcome(t *testing.T, ctx context.Context, out <-chan string) string {
	t.Helper()
	select {
	case s := <-out:
		return s
	case <-ctx.Done():
		t.Fatal("MsgSend still blocked after 10s")
		return ""
	}
}

// An unblock request that found its message's rcvid, and went on only
// after the message was answered and the same client thread's next one
// received (under the same rcvid: rcvid.go), acts on nothing: the next
// message is neither answered with the first one's ETIMEDOUT (a channel
// without NTO_CHF_UNBLOCK) nor flagged NTO_MI_UNBLOCK_REQ with an
// UNBLOCK pulse (a channel with it). Before, the late unblock acted on
// whatever message the rcvid held (helper-41, d81838c).
func TestLateUnblockSparesNextMessage(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags int
	}{
		{"leave", 0},
		{"unblock-pulse", qnx.NTO_CHF_UNBLOCK},
	} {
		t.Run(c.name, func(t *testing.T) {
			setup(t)
			chid := channel(t, c.flags)
			coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer qnx.ConnectDetach(coid)
			ctx := simpltest.Context(t, 10*time.Second)
			out := threadSends(ctx, coid, "one", "two")
			buf := make([]byte, 64)
			var info qnx.MessageInfo
			first := receive(t, chid, buf, &info)
			if got := string(buf[:info.Msglen]); got != "one" {
				t.Fatalf("first message %q", got)
			}
			pid, id, ok := qnx.SendKey(first)
			if !ok || pid != os.Getpid() {
				t.Fatalf("SendKey(%#x): pid %d id %d %v", first, pid, id, ok)
			}
			if err := qnx.MsgReply(first, 1, []byte("1")); err != nil {
				t.Fatal(err)
			}
			if got := outcome(t, ctx, out); got != "reply 1 1" {
				t.Fatalf("first MsgSend: %s", got)
			}
			second := receive(t, chid, buf, &info)
			if got := string(buf[:info.Msglen]); got != "two" {
				t.Fatalf("second message %q", got)
			}
			if second != first {
				t.Fatalf("the thread's next message has rcvid %#x, not its first's %#x: nothing for a late unblock to mistake", second, first)
			}
			if !qnx.LateUnblock(chid, first, pid, id, int(qnx.ETIMEDOUT)) {
				t.Fatal("LateUnblock: no channel")
			}
			if err := qnx.MsgInfo(second, &info); err != nil {
				t.Errorf("MsgInfo of the next message after the first's late unblock: %v (answered by it?)", err)
			} else if info.Flags&qnx.NTO_MI_UNBLOCK_REQ != 0 {
				t.Errorf("the next message is flagged NTO_MI_UNBLOCK_REQ by the first's late unblock")
			}
			if n := qnx.LocalPulses(chid); n != 0 {
				t.Errorf("%d pulses raised by the first message's late unblock, want none", n)
			}
			if err := qnx.MsgReply(second, 2, []byte("2")); err != nil {
				t.Errorf("MsgReply to the next message: %v", err)
			}
			if got := outcome(t, ctx, out); got != "reply 2 2" {
				t.Errorf("second MsgSend: %s, want reply 2 2", got)
			}
		})
	}
}

// A client that sends each request from a new thread does not grow the
// rcvid table to its limit: at most MaxFreeKept answered slots are kept
// for their threads, and the oldest goes to the next new thread. Before,
// every new thread got a new slot while the table had room (65535
// slots, each keeping its MsgWrite buffer of up to 64 KiB), the answered
// ones never used again while their client lived (helper-41, d81838c).
func TestThreadPerRequestBoundsRcvids(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	ctx := simpltest.Context(t, simpltest.Scale(60*time.Second))
	slots0, _ := qnx.RcvidTable()
	n := qnx.MaxFreeKept + 512
	tids := make(map[int]bool)
	buf := make([]byte, 64)
	for i := range n {
		errc := make(chan error, 1)
		go func() {
			// Never unlocked: the thread ends with the goroutine, so
			// that no two requests come from one thread.
			runtime.LockOSThread()
			_, err := qnx.MsgSend(ctx, coid, []byte(strconv.Itoa(i)), nil)
			errc <- err
		}()
		var info qnx.MessageInfo
		rcvid, err := qnx.MsgReceive(ctx, chid, buf, &info)
		if err != nil {
			t.Fatalf("MsgReceive %d: %v", i, err)
		}
		tids[info.Tid] = true
		if err := qnx.MsgReply(rcvid, 0, nil); err != nil {
			t.Fatalf("MsgReply %d: %v", i, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("MsgSend %d: %v", i, err)
		}
	}
	if len(tids) <= qnx.MaxFreeKept+2 {
		t.Fatalf("%d requests came from only %d threads: too few to fill the kept slots", n, len(tids))
	}
	slots, free := qnx.RcvidTable()
	t.Logf("%d requests from %d threads: the table grew from %d to %d slots, %d free", n, len(tids), slots0, slots, free)
	if free > qnx.MaxFreeKept+1 {
		t.Errorf("%d answered slots kept, want at most %d", free, qnx.MaxFreeKept+1)
	}
	if slots-slots0 > qnx.MaxFreeKept+2 {
		t.Errorf("the rcvid table grew by %d slots for %d one-request threads, want at most %d", slots-slots0, n, qnx.MaxFreeKept+2)
	}
}

// Shutdown closes every connection, also one to a server that died and
// was started again under its name, which a coid still open holds while
// a later name_open got a new connection (getPeer). Before, Shutdown
// looked only at the connections in the name table: the old one was
// never closed, nor the process's sending identity it held, whose FIFOs
// stayed in FIFO_PATH (helper-41, d81838c).
func TestShutdownClosesDeadPeers(t *testing.T) {
	env := setup(t)
	dir := os.Getenv("FIFO_PATH")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old, _, again := restarted(t, ctx, env)
	// Both coids left open, for Shutdown to close.
	if err := qnx.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := sendHi(ctx, old); err != qnx.EBADF {
		t.Errorf("MsgSend on the old coid after Shutdown: %v, want EBADF", err)
	}
	again.Kill()
	again.Wait(10 * time.Second)
	reap(t) // the servers' names: what is left is this process's
	simpltest.CheckDirEmpty(t, dir)
}
