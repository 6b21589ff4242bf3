package qnx_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// waitReceivers polls, up to 10 s, until channel chid's MsgReceive calls,
// MsgReceivePulse calls and held messages satisfy ok.
func waitReceivers(t *testing.T, chid int, what string, ok func(rx, prx, held int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rx, prx, held := qnx.Receivers(chid)
		if ok(rx, prx, held) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s (MsgReceive %d, MsgReceivePulse %d, held %d)", what, rx, prx, held)
		}
		time.Sleep(time.Millisecond)
	}
}

// pulseLoop runs MsgReceivePulse on chid until ctx ends or a DISCONNECT
// pulse arrives, sending each pulse to the returned channel, then the
// error that ended it (nil after DISCONNECT) to errc.
func pulseLoop(ctx context.Context, chid int, errc chan<- error) <-chan qnx.Pulse {
	pulses := make(chan qnx.Pulse, 16)
	go func() {
		buf := make([]byte, qnx.PulseSize)
		for {
			rcvid, err := qnx.MsgReceivePulse(ctx, chid, buf)
			if err != nil {
				errc <- err
				return
			}
			if rcvid != 0 {
				errc <- fmt.Errorf("MsgReceivePulse returned rcvid %d", rcvid)
				return
			}
			p, _ := qnx.DecodePulse(buf)
			pulses <- p
			if p.Code == qnx.PULSE_CODE_DISCONNECT {
				errc <- nil
				return
			}
		}
	}()
	return pulses
}

func nextPulse(t *testing.T, pulses <-chan qnx.Pulse) qnx.Pulse {
	t.Helper()
	select {
	case p := <-pulses:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no pulse within 10 s")
	}
	return qnx.Pulse{}
}

// One goroutine in MsgReceivePulse and one in MsgReceive on the same
// channel, a client process alternating pulses and messages: the first
// gets exactly the pulses, in order, ending with the DISCONNECT pulse,
// the second exactly the messages, which it answers.
//
// Which waiting receiver a pulse goes to is decided while both wait:
// here, MsgReceivePulse. So that each pulse finds it waiting (and not
// between two calls, when the MsgReceive would take it, as on QNX), the
// message after each pulse is answered only once the pulse has arrived
// and MsgReceivePulse is waiting again.
func TestReceivePulseBesideReceive(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_DISCONNECT)
	ctx := simpltest.Context(t, 30*time.Second)
	perr := make(chan error, 1)
	pulses := pulseLoop(ctx, chid, perr)

	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	type got struct {
		rcvid int
		text  string
		err   error
	}
	msgs := make(chan got, 1)
	receiveOne := func() {
		buf := make([]byte, 64)
		var info qnx.MessageInfo
		rcvid, err := qnx.MsgReceive(rctx, chid, buf, &info)
		if rcvid == 0 && err == nil {
			p, _ := qnx.DecodePulse(buf)
			err = fmt.Errorf("MsgReceive took pulse %+v", p)
		}
		msgs <- got{rcvid, string(buf[:max(info.Msglen, 0)]), err}
	}
	go receiveOne()
	waitReceivers(t, chid, "both receivers waiting", func(rx, prx, _ int) bool { return rx == 1 && prx == 1 })

	c := startClient(t, env, chid, "pulse:1:10", "send:m1", "pulse:2:20", "send:m2", "pulse:3:-30", "send:m3", "detach")
	for k, value := range []int{10, 20, -30} {
		code := k + 1
		if p := nextPulse(t, pulses); p.Code != code || p.Value != value {
			t.Fatalf("pulse %+v, want code %d value %d", p, code, value)
		}
		var g got
		select {
		case g = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatal("no message within 10 s")
		}
		want := fmt.Sprintf("m%d", code)
		if g.err != nil || g.rcvid <= 0 || g.text != want {
			t.Fatalf("MsgReceive: rcvid %d %q, %v; want message %q", g.rcvid, g.text, g.err, want)
		}
		waitReceivers(t, chid, "MsgReceivePulse waiting again", func(_, prx, _ int) bool { return prx == 1 })
		go receiveOne() // waits beside MsgReceivePulse for the next message
		if err := qnx.MsgReply(g.rcvid, code, bytes.ToUpper([]byte(g.text))); err != nil {
			t.Fatalf("MsgReply: %v", err)
		}
		c.Expect(fmt.Sprintf("reply %d M%d", code, code), 10*time.Second)
	}
	if p := nextPulse(t, pulses); p.Code != qnx.PULSE_CODE_DISCONNECT {
		t.Fatalf("pulse %+v, want DISCONNECT", p)
	}
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	rcancel()
	if g := <-msgs; g.err != qnx.EINTR {
		t.Fatalf("last MsgReceive: rcvid %d %q, %v; want EINTR (nothing but pulses came)", g.rcvid, g.text, g.err)
	}
	waitExit(t, c)
}

// Messages that arrive while only MsgReceivePulse waits stay with their
// senders blocked; MsgReceivePulse goes on getting pulses; a later
// MsgReceive gets them in the order they came, data intact (1 MiB, with
// MsgRead), and answers them.
func TestMessagesWaitForReceive(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx := simpltest.Context(t, 30*time.Second)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	perr := make(chan error, 1)
	pulses := pulseLoop(pctx, chid, perr)
	waitReceivers(t, chid, "MsgReceivePulse waiting", func(_, prx, _ int) bool { return prx == 1 })

	big := startClient(t, env, chid, "big")
	waitReceivers(t, chid, "the 1 MiB message held", func(_, _, held int) bool { return held == 1 })
	small := startClient(t, env, chid, "send:second")
	waitReceivers(t, chid, "both messages held", func(_, _, held int) bool { return held == 2 })
	self, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(self)
	if err := qnx.MsgSendPulse(self, -1, 4, 44); err != nil {
		t.Fatal(err)
	}
	if p := nextPulse(t, pulses); p.Code != 4 || p.Value != 44 {
		t.Fatalf("pulse %+v, want code 4 value 44", p)
	}
	if _, _, held := qnx.Receivers(chid); held != 2 {
		t.Fatalf("%d messages held after the pulse, want 2", held)
	}
	pcancel()
	if err := <-perr; err != qnx.EINTR {
		t.Fatalf("cancelled MsgReceivePulse: %v, want EINTR", err)
	}

	buf := make([]byte, 1024)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if rcvid <= 0 || info.Pid != big.PID() || info.Srcmsglen != 1<<20 || info.Msglen != len(buf) {
		t.Fatalf("first MsgReceive: rcvid %d, info %+v; want the 1 MiB message of pid %d", rcvid, info, big.PID())
	}
	whole := make([]byte, 1<<20)
	if n, err := qnx.MsgRead(rcvid, whole, 0); err != nil || n != len(whole) || !bytes.Equal(whole, pattern(1<<20, 1)) || !bytes.Equal(buf, whole[:len(buf)]) {
		t.Fatalf("MsgRead: %d, %v, or the data differs", n, err)
	}
	if err := qnx.MsgReply(rcvid, 9, pattern(1<<20, 2)); err != nil {
		t.Fatalf("MsgReply: %v", err)
	}
	big.Expect("big ok", 10*time.Second)
	rcvid = receive(t, chid, buf, &info)
	if rcvid <= 0 || info.Pid != small.PID() || string(buf[:info.Msglen]) != "second" {
		t.Fatalf("second MsgReceive: rcvid %d %q, info %+v", rcvid, buf[:info.Msglen], info)
	}
	if err := qnx.MsgReply(rcvid, 0, []byte("SECOND")); err != nil {
		t.Fatalf("MsgReply: %v", err)
	}
	small.Expect("reply 0 SECOND", 10*time.Second)
	if err := qnx.MsgReply(rcvid, 0, nil); err != qnx.ESRCH {
		t.Fatalf("second MsgReply: %v, want ESRCH (answered once)", err)
	}
	waitExit(t, big)
	waitExit(t, small)
}

// MsgReceivePulse's errors and timeouts, as MsgReceive's: ESRCH for an
// unknown channel; a TimerTimeout for the RECEIVE state bounds it
// (a held message does not end the wait); a buffer too small for the
// pulse is EFAULT and the pulse is lost; ctx's end is EINTR or
// ETIMEDOUT; MsgReceivePulsev scatters the pulse over its parts.
func TestReceivePulseTimeoutAndErrors(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx := simpltest.Context(t, 20*time.Second)
	buf := make([]byte, qnx.PulseSize)
	if _, err := qnx.MsgReceivePulse(ctx, chid+100, buf); err != qnx.ESRCH {
		t.Fatalf("unknown chid: %v, want ESRCH", err)
	}
	arm := func(ns *uint64) {
		t.Helper()
		if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, ns, nil); err != nil {
			t.Fatal(err)
		}
	}
	arm(nil)
	if _, err := qnx.MsgReceivePulse(ctx, chid, buf); err != qnx.ETIMEDOUT {
		t.Fatalf("immediate timeout: %v, want ETIMEDOUT", err)
	}

	c := startClient(t, env, chid, "send:waits")
	ns := uint64(20 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Until the message has come (and been held), and once more.
		_, _, held := qnx.Receivers(chid)
		arm(&ns)
		t0 := time.Now()
		if rcvid, err := qnx.MsgReceivePulse(ctx, chid, buf); err != qnx.ETIMEDOUT {
			t.Fatalf("20 ms timeout: %d, %v; want ETIMEDOUT", rcvid, err)
		}
		if d := time.Since(t0); d < 20*time.Millisecond {
			t.Fatalf("timed out after %v, before 20 ms", d)
		}
		if held == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the message was not held within 10 s")
		}
	}
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if rcvid <= 0 || string(buf[:info.Msglen]) != "waits" {
		t.Fatalf("MsgReceive: %d %q", rcvid, buf[:info.Msglen])
	}
	if err := qnx.MsgReply(rcvid, 3, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	c.Expect("reply 3 ok", 10*time.Second)
	waitExit(t, c)

	self, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(self)
	if err := qnx.MsgSendPulse(self, -1, 7, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.MsgReceivePulse(ctx, chid, buf[:qnx.PulseSize-1]); err != qnx.EFAULT {
		t.Fatalf("pulse into a short buffer: %v, want EFAULT", err)
	}
	arm(nil)
	if _, err := qnx.MsgReceivePulse(ctx, chid, buf); err != qnx.ETIMEDOUT {
		t.Fatalf("after the lost pulse: %v, want ETIMEDOUT (nothing queued)", err)
	}

	if err := qnx.MsgSendPulse(self, -1, 6, 66); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{make([]byte, 5), make([]byte, qnx.PulseSize)}
	if rcvid, err := qnx.MsgReceivePulsev(ctx, chid, parts); rcvid != 0 || err != nil {
		t.Fatalf("MsgReceivePulsev: %d, %v", rcvid, err)
	}
	if p, _ := qnx.DecodePulse(append(parts[0], parts[1]...)); p.Code != 6 || p.Value != 66 {
		t.Fatalf("MsgReceivePulsev: pulse %+v, want code 6 value 66", p)
	}
	if err := qnx.MsgSendPulse(self, -1, 9, 99); err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.MsgReceivePulsev(ctx, chid, [][]byte{make([]byte, 4), make([]byte, 4)}); err != qnx.EFAULT {
		t.Fatalf("MsgReceivePulsev into 8 bytes: %v, want EFAULT", err)
	}

	dctx, dcancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer dcancel()
	if _, err := qnx.MsgReceivePulse(dctx, chid, buf); err != qnx.ETIMEDOUT {
		t.Fatalf("ctx deadline: %v, want ETIMEDOUT", err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if _, err := qnx.MsgReceivePulse(cctx, chid, buf); err != qnx.EINTR {
		t.Fatalf("cancelled ctx: %v, want EINTR", err)
	}
}

// ChannelDestroy with messages held for MsgReceive: the waiting
// MsgReceivePulse and the messages' senders get ESRCH.
func TestChannelDestroyWithHeld(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx := simpltest.Context(t, 20*time.Second)
	perr := make(chan error, 1)
	pulseLoop(ctx, chid, perr)
	waitReceivers(t, chid, "MsgReceivePulse waiting", func(_, prx, _ int) bool { return prx == 1 })
	c1 := startClient(t, env, chid, "send:one")
	c2 := startClient(t, env, chid, "send:two")
	waitReceivers(t, chid, "both messages held", func(_, _, held int) bool { return held == 2 })
	if err := qnx.ChannelDestroy(chid); err != nil {
		t.Fatal(err)
	}
	if err := <-perr; err != qnx.ESRCH {
		t.Fatalf("MsgReceivePulse on the destroyed channel: %v, want ESRCH", err)
	}
	for _, c := range []*simpltest.Proc{c1, c2} {
		c.Expect("err "+strconv.Itoa(int(qnx.ESRCH)), 10*time.Second)
		waitExit(t, c)
	}
}

// The pulses a channel's flags ask for are pulses: MsgReceivePulse gets
// the UNBLOCK pulse of a message MsgReceive got, and the DISCONNECT.
func TestReceivePulseKernelPulses(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_UNBLOCK|qnx.NTO_CHF_DISCONNECT)
	ctx := simpltest.Context(t, 20*time.Second)
	perr := make(chan error, 1)
	pulses := pulseLoop(ctx, chid, perr)
	waitReceivers(t, chid, "MsgReceivePulse waiting", func(_, prx, _ int) bool { return prx == 1 })
	c := startClient(t, env, chid, "timeout:30:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":slow", "detach")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	if p := nextPulse(t, pulses); p.Code != qnx.PULSE_CODE_UNBLOCK || p.Value != rcvid {
		t.Fatalf("pulse %+v, want UNBLOCK for rcvid %d", p, rcvid)
	}
	if err := qnx.MsgError(rcvid, int(qnx.ETIMEDOUT)); err != nil {
		t.Fatal(err)
	}
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	if p := nextPulse(t, pulses); p.Code != qnx.PULSE_CODE_DISCONNECT {
		t.Fatalf("pulse %+v, want DISCONNECT", p)
	}
	if err := <-perr; err != nil {
		t.Fatal(err)
	}
	waitExit(t, c)
}

// A held message is SEND-blocked: its client's SEND-state timeout
// withdraws it at once (nothing is left held), and a later MsgReceive
// gets the next message instead.
func TestHeldWithdrawn(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx := simpltest.Context(t, 20*time.Second)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	perr := make(chan error, 1)
	pulseLoop(pctx, chid, perr)
	waitReceivers(t, chid, "MsgReceivePulse waiting", func(_, prx, _ int) bool { return prx == 1 })
	gone := startClient(t, env, chid, "timeout:30:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND)+":gone", "hang")
	gone.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	gone.Expect("hanging", 10*time.Second)
	waitReceivers(t, chid, "the withdrawn message let go", func(_, _, held int) bool { return held == 0 })
	next := startClient(t, env, chid, "send:next")
	waitReceivers(t, chid, "the next message held", func(_, _, held int) bool { return held == 1 })
	pcancel()
	if err := <-perr; err != qnx.EINTR {
		t.Fatalf("cancelled MsgReceivePulse: %v, want EINTR", err)
	}
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if got := string(buf[:info.Msglen]); got != "next" {
		t.Fatalf("received %q, want the message after the withdrawn one", got)
	}
	qnx.MsgReply(rcvid, 0, []byte("NEXT"))
	next.Expect("reply 0 NEXT", 10*time.Second)
	waitExit(t, next)
	gone.Kill()
	gone.Wait(10 * time.Second)
	reap(t)
}

// A held message's client that dies is dropped with it; one that left
// at once after a timeout (SEND and REPLY armed, no UNBLOCK) cannot be
// seen leaving, so its message still reaches MsgReceive, and MsgReply to
// it is ESRCH (through FIFOs it succeeds and is discarded, as when the
// message had been received).
func TestHeldClientGone(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx := simpltest.Context(t, 20*time.Second)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	perr := make(chan error, 1)
	pulseLoop(pctx, chid, perr)
	waitReceivers(t, chid, "MsgReceivePulse waiting", func(_, prx, _ int) bool { return prx == 1 })

	dies := startClient(t, env, chid, "send:dies")
	waitReceivers(t, chid, "the message held", func(_, _, held int) bool { return held == 1 })
	dies.Kill()
	dies.Wait(10 * time.Second)
	reap(t)
	waitReceivers(t, chid, "the dead client's message dropped", func(_, _, held int) bool { return held == 0 })

	// It stays alive (hang), or its exit would drop the message.
	left := startClient(t, env, chid, "timeout:30:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":left", "hang")
	left.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	left.Expect("hanging", 10*time.Second)
	waitReceivers(t, chid, "the left client's message held", func(_, _, held int) bool { return held == 1 })
	pcancel()
	if err := <-perr; err != qnx.EINTR {
		t.Fatalf("cancelled MsgReceivePulse: %v, want EINTR", err)
	}
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if got := string(buf[:info.Msglen]); got != "left" {
		t.Fatalf("received %q, want the left client's message", got)
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != qnx.ESRCH && !(overFIFO() && err == nil) {
		t.Fatalf("MsgReply to the left client: %v, want ESRCH", err)
	}
	left.Kill()
	left.Wait(10 * time.Second)
	reap(t)
}

// Two goroutines in MsgReceivePulse and two in MsgReceive on one
// channel, three client processes each alternating pulses and messages:
// every pulse arrives once (at either kind of receiver: one that comes
// while both MsgReceivePulse calls are between calls may go to
// MsgReceive), every message once, at MsgReceive, and is answered.
func TestReceivePulseMany(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx, cancel := context.WithCancel(simpltest.Context(t, 30*time.Second))
	defer cancel()
	var mu sync.Mutex
	pulses, msgs := map[int]int{}, map[string]int{}
	var wg sync.WaitGroup
	fail := make(chan error, 4)
	for range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, qnx.PulseSize)
			for {
				rcvid, err := qnx.MsgReceivePulse(ctx, chid, buf)
				if err != nil {
					if err != qnx.EINTR {
						fail <- fmt.Errorf("MsgReceivePulse: %v", err)
					}
					return
				}
				p, _ := qnx.DecodePulse(buf)
				mu.Lock()
				pulses[p.Value]++
				mu.Unlock()
				if rcvid != 0 {
					fail <- fmt.Errorf("MsgReceivePulse returned rcvid %d", rcvid)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			var info qnx.MessageInfo
			for {
				rcvid, err := qnx.MsgReceive(ctx, chid, buf, &info)
				if err != nil {
					if err != qnx.EINTR {
						fail <- fmt.Errorf("MsgReceive: %v", err)
					}
					return
				}
				mu.Lock()
				if rcvid == 0 {
					p, _ := qnx.DecodePulse(buf)
					pulses[p.Value]++
				} else {
					msgs[string(buf[:info.Msglen])]++
				}
				mu.Unlock()
				if rcvid > 0 {
					qnx.MsgReply(rcvid, 1, bytes.ToUpper(buf[:info.Msglen]))
				}
			}
		}()
	}
	const clients, rounds = 3, 100
	var procs []*simpltest.Proc
	for i := range clients {
		var steps []string
		for j := range rounds {
			steps = append(steps, fmt.Sprintf("pulse:1:%d", i*1000+j), fmt.Sprintf("send:c%dm%d", i, j))
		}
		procs = append(procs, startClient(t, env, chid, steps...))
	}
	for i, p := range procs {
		for j := range rounds {
			p.Expect("pulsed", 10*time.Second)
			p.Expect(fmt.Sprintf("reply 1 C%dM%d", i, j), 10*time.Second)
		}
		waitExit(t, p)
	}
	// Every message was answered, so every pulse sent before one was
	// taken; poll for the last pulses to be counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(pulses)
		mu.Unlock()
		if n == clients*rounds || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	select {
	case err := <-fail:
		t.Fatal(err)
	default:
	}
	if len(pulses) != clients*rounds || len(msgs) != clients*rounds {
		t.Fatalf("%d distinct pulses and %d distinct messages, want %d each", len(pulses), len(msgs), clients*rounds)
	}
	for v, n := range pulses {
		if n != 1 {
			t.Fatalf("pulse %d received %d times", v, n)
		}
	}
	for m, n := range msgs {
		if n != 1 {
			t.Fatalf("%q received %d times", m, n)
		}
	}
}
