package qnx_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleSink FLAGS: create a channel with FLAGS, print "chid N", and never
// receive on it (a server busy elsewhere) until killed.
func roleSink(args []string) error {
	flags, _ := strconv.Atoi(args[0])
	chid, err := qnx.ChannelCreate(flags)
	if err != nil {
		return err
	}
	fmt.Printf("chid %d\n", chid)
	simpltest.Ready()
	select {}
}

// startSink starts roleSink and returns it with its chid; it is killed,
// and its FIFOs reaped, when the test ends.
func startSink(t *testing.T, env []string, flags int) (*simpltest.Proc, int) {
	t.Helper()
	srv := simpltest.StartNoWait(t, "sink", env, strconv.Itoa(flags))
	line := srv.Expect("chid ", 10*time.Second)
	srv.Expect("ready", 10*time.Second)
	chid, _ := strconv.Atoi(strings.TrimPrefix(line, "chid "))
	t.Cleanup(func() {
		srv.Kill()
		srv.Wait(10 * time.Second)
		reap(t)
	})
	return srv, chid
}

// pollReceive is QNX's non-blocking receive (TimerTimeout for RECEIVE
// with a NULL ntime, then MsgReceive, or MsgReceivePulse if pulses is
// set), repeated until it gets something: the items a helper sends
// reach the channel's queue a moment after it sends them. It fails the
// test if nothing comes within 10 s (a non-blocking receive that never
// takes what is queued) or on an error other than ETIMEDOUT.
func pollReceive(t *testing.T, chid int, buf []byte, info *qnx.MessageInfo, pulses bool) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	deadline := time.Now().Add(10 * time.Second)
	for tries := 1; ; tries++ {
		if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		var rcvid int
		var err error
		if pulses {
			rcvid, err = qnx.MsgReceivePulse(context.Background(), chid, buf)
		} else {
			rcvid, err = qnx.MsgReceive(context.Background(), chid, buf, info)
		}
		switch {
		case err == nil:
			return rcvid
		case err != qnx.ETIMEDOUT:
			t.Fatalf("non-blocking receive: %v", err)
		case time.Now().After(deadline):
			t.Fatalf("non-blocking receive: still ETIMEDOUT after %d tries in 10 s, with a pulse or message queued", tries)
		}
		time.Sleep(time.Millisecond)
	}
}

// QNX's non-blocking receive (an expired TimerTimeout, then MsgReceive)
// takes what is queued, a pulse and then a message, and is ETIMEDOUT only
// when nothing is; so does MsgReceivePulse's. Before, an expired timeout
// was ETIMEDOUT before the call looked at the queue.
func TestNonBlockingReceiveTakesQueued(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "pulse:5:6", "send:queued", "pulse:7:8")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	if rcvid := pollReceive(t, chid, buf, &info, false); rcvid != 0 {
		t.Fatalf("rcvid %d, want the pulse sent first", rcvid)
	}
	if p, _ := qnx.DecodePulse(buf); p.Code != 5 || p.Value != 6 {
		t.Fatalf("pulse %+v, want code 5 value 6", p)
	}
	rcvid := pollReceive(t, chid, buf, &info, false)
	if rcvid <= 0 || string(buf[:info.Msglen]) != "queued" {
		t.Fatalf("rcvid %d %q, want the message", rcvid, buf[:max(info.Msglen, 0)])
	}
	if err := qnx.MsgReply(rcvid, 3, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	c.Expect("reply 3 ok", 10*time.Second)
	if rcvid := pollReceive(t, chid, buf, nil, true); rcvid != 0 {
		t.Fatalf("MsgReceivePulse: rcvid %d", rcvid)
	}
	if p, _ := qnx.DecodePulse(buf); p.Code != 7 || p.Value != 8 {
		t.Fatalf("MsgReceivePulse: pulse %+v, want code 7 value 8", p)
	}
	waitExit(t, c)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, nil, nil)
	if _, err := qnx.MsgReceive(context.Background(), chid, buf, nil); err != qnx.ETIMEDOUT {
		t.Fatalf("non-blocking MsgReceive with nothing queued: %v, want ETIMEDOUT", err)
	}
}

// ConnectAttach after this process's last ConnectDetach to a live server
// that is not receiving returns at once, as QNX's never blocks (before,
// it waited up to 10 s for the server to take the disconnect, then
// failed ESRCH). The server still sees the disconnect first: a
// DISCONNECT pulse for the first connection, then the message on the
// new one, from a new scoid.
func TestReattachDoesNotWaitForDisconnect(t *testing.T) {
	env := setup(t)
	srv, schid := startSink(t, env, 0)
	coid, err := qnx.ConnectAttach(0, srv.PID(), schid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := qnx.ConnectDetach(coid); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	coid, err = qnx.ConnectAttach(0, srv.PID(), schid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatalf("ConnectAttach again to a server that is not receiving: %v after %v", err, time.Since(start))
	}
	if err := qnx.ConnectDetach(coid); err != nil {
		t.Fatal(err)
	}

	// The order the server sees, with this process as the server.
	chid := channel(t, qnx.NTO_CHF_DISCONNECT)
	c := startClient(t, env, chid, "send:a", "detach", "reattach", "send:b")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	first := info.Scoid
	if err := qnx.MsgReply(rcvid, 1, nil); err != nil {
		t.Fatal(err)
	}
	c.Expect("reply 1", 10*time.Second)
	c.Expect("detached", 10*time.Second)
	// Not receiving: the client's disconnect waits in its outbox.
	c.Expect("reattached", 10*time.Second)
	p := receivePulse(t, chid)
	if p.Code != qnx.PULSE_CODE_DISCONNECT || p.Scoid != first {
		t.Fatalf("pulse %+v, want DISCONNECT of scoid %#x", p, first)
	}
	if err := qnx.ConnectDetach(p.Scoid); err != nil {
		t.Fatal(err)
	}
	rcvid = receive(t, chid, buf, &info)
	if string(buf[:info.Msglen]) != "b" || info.Scoid == first {
		t.Fatalf("message %q from scoid %#x, want b from a new scoid (not %#x)", buf[:info.Msglen], info.Scoid, first)
	}
	if err := qnx.MsgReply(rcvid, 2, nil); err != nil {
		t.Fatal(err)
	}
	c.Expect("reply 2", 10*time.Second)
	waitExit(t, c)
}

// A coid to a channel of this process that was destroyed is EBADF for
// MsgSend and MsgSendPulse, also once a new channel has its chid; and a
// new ConnectAttach to that new channel works from its first MsgSend.
// Before, the old coid's shared connection was reused: ESRCH, a pulse
// "sent" to nowhere, and the new coid's first MsgSend ESRCH.
func TestDestroyedChannelCoids(t *testing.T) {
	setup(t)
	chid, err := qnx.ChannelCreate(0)
	if err != nil {
		t.Fatal(err)
	}
	old, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(old)
	if err := qnx.ChannelDestroy(chid); err != nil {
		t.Fatal(err)
	}
	ctx := simpltest.Context(t, 10*time.Second)
	if _, err := qnx.MsgSend(ctx, old, []byte("x"), nil); err != qnx.EBADF {
		t.Fatalf("MsgSend on a coid whose channel was destroyed: %v, want EBADF", err)
	}
	chid2 := channel(t, 0)
	if chid2 != chid {
		t.Fatalf("new chid %d, want the lowest free, %d", chid2, chid)
	}
	if _, err := qnx.MsgSend(ctx, old, []byte("x"), nil); err != qnx.EBADF {
		t.Fatalf("MsgSend on the old coid, a new channel with its chid: %v, want EBADF", err)
	}
	if err := qnx.MsgSendPulse(old, -1, 1, 1); err != qnx.EBADF {
		t.Fatalf("MsgSendPulse on the old coid: %v, want EBADF", err)
	}
	coid, err := qnx.ConnectAttach(0, 0, chid2, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		st, err := qnx.MsgSend(ctx, coid, []byte("new"), nil)
		res <- result{st, err}
	}()
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid2, buf, &info)
	if rcvid <= 0 || string(buf[:info.Msglen]) != "new" {
		t.Fatalf("rcvid %d %q, want the new coid's message (no pulse from the old one)", rcvid, buf[:max(info.Msglen, 0)])
	}
	qnx.MsgReply(rcvid, 7, nil)
	if r := <-res; r.err != nil || r.status != 7 {
		t.Fatalf("MsgSend on a new coid to the new channel: %d, %v", r.status, r.err)
	}
}

// MsgError(rcvid, -1) passes the client's unblock reason (QNX 7.0.1):
// here its REPLY-state timeout's ETIMEDOUT, once the UNBLOCK pulse told
// the server. Before the client asked to unblock, -1 is EINVAL, as are
// other negative values and values past an int32, and the client stays
// blocked. Before, the client got errno -1.
func TestMsgErrorMinusOne(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_UNBLOCK)
	c := startClient(t, env, chid, "timeout:1:"+strconv.Itoa(qnx.NTO_TIMEOUT_REPLY)+":late")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	for _, e := range []int{-1, -5, math.MinInt32} {
		if err := qnx.MsgError(rcvid, e); err != qnx.EINVAL {
			t.Fatalf("MsgError(rcvid, %d) with no unblock request: %v, want EINVAL", e, err)
		}
	}
	if strconv.IntSize == 64 {
		max32 := int64(math.MaxInt32) // a variable: the sum compiles where int is 32 bits (and is not run there)
		big := int(max32 + 1)
		if err := qnx.MsgError(rcvid, big); err != qnx.EINVAL {
			t.Fatalf("MsgError(rcvid, %d): %v, want EINVAL", big, err)
		}
	}
	p := receivePulse(t, chid)
	if p.Code != qnx.PULSE_CODE_UNBLOCK || p.Value != rcvid {
		t.Fatalf("pulse %+v, want UNBLOCK of rcvid %d", p, rcvid)
	}
	if err := qnx.MsgError(rcvid, -1); err != nil {
		t.Fatalf("MsgError(rcvid, -1) after the unblock request: %v", err)
	}
	c.Expect(fmt.Sprintf("err %d", int(qnx.ETIMEDOUT)), 10*time.Second)
	waitExit(t, c)
}

// MsgReceivev's Msglen (and MsgInfo's) is the bytes its parts received,
// also when they add up to less than a struct _pulse; Srcmsglen is what
// the client sent. Before, Msglen was up to PulseSize.
func TestReceivevMsglenSmallParts(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "send:0123456789")
	a, b := make([]byte, 2), make([]byte, 2)
	var info qnx.MessageInfo
	ctx := simpltest.Context(t, 10*time.Second)
	rcvid, err := qnx.MsgReceivev(ctx, chid, [][]byte{a, b}, &info)
	if err != nil {
		t.Fatal(err)
	}
	if string(a)+string(b) != "0123" || info.Msglen != 4 || info.Srcmsglen != 10 {
		t.Fatalf("parts %q %q, Msglen %d Srcmsglen %d; want 0123, 4, 10", a, b, info.Msglen, info.Srcmsglen)
	}
	var again qnx.MessageInfo
	if err := qnx.MsgInfo(rcvid, &again); err != nil || again.Msglen != 4 {
		t.Fatalf("MsgInfo: Msglen %d, %v; want 4", again.Msglen, err)
	}
	qnx.MsgReply(rcvid, 0, []byte("r"))
	c.Expect("reply 0 r", 10*time.Second)
	waitExit(t, c)
}

// MsgDeliverEvent to a client that does not take its pulses stops with
// EAGAIN at the same limit as MsgSendPulse (QNX's pulse pool), and
// delivers again once the client has received them. Before, the server's
// outbox grew without end.
func TestDeliverEventLimit(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "eventsink")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	ev, ok := qnx.DecodeEvent(buf[1:info.Msglen])
	if buf[0] != 'E' || !ok {
		t.Fatalf("request %x", buf[:info.Msglen])
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != nil {
		t.Fatal(err)
	}
	c.Expect("waiting", 10*time.Second)
	n := 0
	for n < 2000 {
		ev.Value = n + 1
		err := qnx.MsgDeliverEvent(rcvid, &ev)
		if err == qnx.EAGAIN {
			break
		}
		if err != nil {
			t.Fatalf("MsgDeliverEvent #%d: %v", n+1, err)
		}
		n++
	}
	if n == 2000 || n < 200 {
		t.Fatalf("%d deliveries before EAGAIN to a client that does not receive, want about 256", n)
	}
	c.Signal(syscall.SIGUSR1)
	for i := 1; i <= n; i++ {
		if line := c.ReadLine(10 * time.Second); line != fmt.Sprintf("pulse %d", i) {
			t.Fatalf("client: %q, want pulse %d", line, i)
		}
	}
	ev.Value = -1
	if err := qnx.MsgDeliverEvent(rcvid, &ev); err != nil {
		t.Fatalf("MsgDeliverEvent after the client received: %v", err)
	}
	if line := c.ReadLine(10 * time.Second); line != "pulse -1" {
		t.Fatalf("client: %q, want pulse -1", line)
	}
	c.Kill()
	c.Wait(10 * time.Second)
	reap(t)
}

// Every call of the API clears the thread's TimerTimeout, as every QNX
// kernel call does: TimerTimeout's result (the flags armed before) is 0
// after each. Before, only MsgSend* and MsgReceive* cleared it.
func TestTimeoutClearedByEveryCall(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	var ev qnx.SigEvent
	qnx.SigevPulseInit(&ev, coid, 10, 1, 1)
	var info qnx.MessageInfo
	calls := []struct {
		name string
		call func()
	}{
		{"ChannelCreate", func() { c, _ := qnx.ChannelCreate(0); qnx.ChannelDestroy(c) }},
		{"ChannelDestroy", func() { qnx.ChannelDestroy(12345) }},
		{"ConnectAttach", func() { qnx.ConnectAttach(0, 0, 12345, 0, 0) }},
		{"ConnectDetach", func() { qnx.ConnectDetach(12345) }},
		{"MsgSendPulse", func() { qnx.MsgSendPulse(12345, -1, 1, 1) }},
		{"MsgReply", func() { qnx.MsgReply(12345, 0, nil) }},
		{"MsgReplyv", func() { qnx.MsgReplyv(12345, 0, nil) }},
		{"MsgError", func() { qnx.MsgError(12345, 1) }},
		{"MsgRead", func() { qnx.MsgRead(12345, nil, 0) }},
		{"MsgReadv", func() { qnx.MsgReadv(12345, [][]byte{nil}, 0) }},
		{"MsgWrite", func() { qnx.MsgWrite(12345, nil, 0) }},
		{"MsgWritev", func() { qnx.MsgWritev(12345, nil, 0) }},
		{"MsgInfo", func() { qnx.MsgInfo(12345, &info) }},
		{"MsgDeliverEvent", func() { qnx.MsgDeliverEvent(12345, &ev) }},
		{"NameAttach", func() { qnx.NameAttach("", 0) }},
		{"NameDetach", func() { qnx.NameDetach(nil, 0) }},
		{"NameOpen", func() { qnx.NameOpen(context.Background(), "", 0) }},
		{"NameClose", func() { qnx.NameClose(12345) }},
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	arm := func() int {
		ns := uint64(time.Hour)
		prev, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY, nil, &ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		return prev
	}
	defer qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, 0, nil, nil, nil)
	arm()
	if prev := arm(); prev != qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY {
		t.Fatalf("TimerTimeout returned %#x, want the flags armed before", prev)
	}
	for _, c := range calls {
		c.call()
		if prev := arm(); prev != 0 {
			t.Errorf("after %s the timeout is still armed (%#x)", c.name, prev)
		}
	}
}

// A client that connected and left without sending anything still makes
// a DISCONNECT pulse (QNX's ConnectAttach made a server connection), with
// a scoid the server releases; also when it exits: the server has no
// record of it to watch, so its Shutdown waits (within its ctx) for the
// server to take the disconnect instead of dropping it (what Shutdown
// has not got out when its ctx ends is dropped then:
// TestShutdownLeavesNoSender). Before, the server never heard of it.
func TestDisconnectSilentClient(t *testing.T) {
	for _, exit := range []bool{false, true} {
		t.Run(map[bool]string{false: "stays", true: "exits"}[exit], func(t *testing.T) {
			env := setup(t)
			chid := channel(t, qnx.NTO_CHF_DISCONNECT)
			steps := []string{"detach", "waitsig"}
			if exit {
				steps = []string{"detach", "shutdown:10000"}
			}
			c := startClient(t, env, chid, steps...)
			c.Expect("detached", 10*time.Second)
			if exit {
				// Not received yet (this server is not receiving):
				// the client's Shutdown waits for it.
				c.Expect("shutting down", 10*time.Second)
			}
			p := receivePulse(t, chid)
			if exit {
				if got, want := c.ReadLine(10*time.Second), "shutdown <nil>"; got != want {
					t.Fatalf("client: %q, want %q (its Shutdown waited for the disconnect the server took)", got, want)
				}
			}
			if p.Code != qnx.PULSE_CODE_DISCONNECT || p.Scoid == 0 {
				t.Fatalf("pulse %+v, want a DISCONNECT with a scoid", p)
			}
			if err := qnx.ConnectDetach(p.Scoid); err != nil {
				t.Fatalf("ConnectDetach(scoid): %v", err)
			}
			if err := qnx.ConnectDetach(p.Scoid); err != qnx.EINVAL {
				t.Fatalf("ConnectDetach(scoid) again: %v, want EINVAL", err)
			}
			if !exit {
				c.Expect("waiting", 10*time.Second)
				c.Signal(syscall.SIGUSR1)
			}
			waitExit(t, c)
		})
	}
}

// name_attach refuses a ".." path component, not a name with ".." inside
// it (before, "a..b" was EINVAL).
func TestNameDotDot(t *testing.T) {
	setup(t)
	a, err := qnx.NameAttach("a..b", 0)
	if err != nil {
		t.Fatalf(`NameAttach("a..b"): %v`, err)
	}
	if err := qnx.NameDetach(a, 0); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", "../a", "a/..", "a/../b"} {
		if _, err := qnx.NameAttach(name, 0); err != qnx.EINVAL {
			t.Errorf("NameAttach(%q): %v, want EINVAL", name, err)
		}
		if _, err := qnx.NameOpen(context.Background(), name, 0); err != qnx.EINVAL {
			t.Errorf("NameOpen(%q): %v, want EINVAL", name, err)
		}
	}
}

// MsgWrite at an offset past what was written, then a shorter MsgReply:
// the client's reply buffer keeps its own bytes in the gap, as on QNX,
// through MsgSend and MsgSendv (before, the gap was zeroed). Past
// maxRuns (8) separate runs, the smallest gaps are zeroed.
func TestMsgWriteGapKeepsClientBytes(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "fill:16:a", "fillv:16:b", "fill:24:c")
	buf := make([]byte, 64)
	for _, step := range []string{"a", "b"} {
		rcvid := receive(t, chid, buf, nil)
		if n, err := qnx.MsgWrite(rcvid, []byte("WW"), 10); n != 2 || err != nil {
			t.Fatalf("MsgWrite: %d, %v", n, err)
		}
		if err := qnx.MsgReply(rcvid, 3, []byte("ab")); err != nil {
			t.Fatal(err)
		}
		if got, want := c.ReadLine(10*time.Second), `filled 3 "ab........WW...."`; got != want {
			t.Fatalf("step %s: %s, want %s", step, got, want)
		}
	}
	rcvid := receive(t, chid, buf, nil)
	for off := 1; off < 20; off += 2 {
		qnx.MsgWrite(rcvid, []byte("W"), off)
	}
	if err := qnx.MsgReply(rcvid, 4, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := c.ReadLine(10*time.Second), `filled 4 ".W\x00W\x00W.W.W.W.W.W.W.W...."`; got != want {
		t.Fatalf("ten runs: %s, want %s", got, want)
	}
	waitExit(t, c)
}
