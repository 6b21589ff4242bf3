package qnx_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A client process's pulses and messages arrive in the order it sent
// them; MsgReceive reports the message's sender, sizes and connection;
// the reply's status and data come back; detaching the last connection
// brings a DISCONNECT pulse naming the same server connection.
func TestPulsesAndMessagesInOrder(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_DISCONNECT)
	c := startClient(t, env, chid, "pulse:1:10", "send:hello", "pulse:2:20", "pulse:3:-30", "send:bye", "detach")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	wantPulse := func(code, value int) int {
		t.Helper()
		p := receivePulse(t, chid)
		if p.Code != code || p.Value != value {
			t.Fatalf("pulse %+v, want code %d value %d", p, code, value)
		}
		return p.Scoid
	}
	wantMsg := func(text, reply string, status int) int {
		t.Helper()
		rcvid := receive(t, chid, buf, &info)
		if rcvid <= 0 || string(buf[:info.Msglen]) != text {
			t.Fatalf("rcvid %d %q, want a message %q", rcvid, buf[:info.Msglen], text)
		}
		if info.Pid != c.PID() || info.Chid != chid || info.Srcmsglen != len(text) || info.Dstmsglen != 64 || info.Coid&qnx.NTO_SIDE_CHANNEL == 0 {
			t.Fatalf("info %+v", info)
		}
		if err := qnx.MsgReply(rcvid, status, []byte(reply)); err != nil {
			t.Fatalf("MsgReply: %v", err)
		}
		if err := qnx.MsgReply(rcvid, status, nil); err != qnx.ESRCH {
			t.Fatalf("second MsgReply: %v, want ESRCH", err)
		}
		c.Expect("reply "+strconv.Itoa(status)+" "+reply, 10*time.Second)
		return info.Scoid
	}
	scoid := wantPulse(1, 10)
	if s := wantMsg("hello", "HELLO", 7); s != scoid {
		t.Fatalf("message scoid %#x, pulse's %#x", s, scoid)
	}
	wantPulse(2, 20)
	wantPulse(3, -30)
	wantMsg("bye", "BYE", 0)
	if p := receivePulse(t, chid); p.Code != qnx.PULSE_CODE_DISCONNECT || p.Scoid != scoid {
		t.Fatalf("pulse %+v, want DISCONNECT for scoid %#x", p, scoid)
	}
	if err := qnx.ConnectDetach(scoid); err != nil {
		t.Fatalf("ConnectDetach(scoid): %v", err)
	}
	waitExit(t, c)
}

// A 1 MiB message: MsgReceive takes the first KiB, MsgRead fetches the
// rest at offsets (and 0 past the end); the reply is written in two
// parts with MsgWrite, out of order, then MsgReply with no data sends it.
func TestMsgReadWriteMiB(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "big")
	const size = 1 << 20
	buf := make([]byte, 1024)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if info.Msglen != 1024 || info.Srcmsglen != size || info.Dstmsglen != size {
		t.Fatalf("info %+v", info)
	}
	got := append([]byte(nil), buf...)
	chunk := make([]byte, 100000) // not a divisor of the size
	for off := len(got); off < size; {
		n, err := qnx.MsgRead(rcvid, chunk, off)
		if err != nil || n == 0 {
			t.Fatalf("MsgRead at %d: %d, %v", off, n, err)
		}
		got = append(got, chunk[:n]...)
		off += n
	}
	if !bytes.Equal(got, pattern(size, 1)) {
		t.Fatal("message read back differs")
	}
	if n, err := qnx.MsgRead(rcvid, chunk, size); n != 0 || err != nil {
		t.Fatalf("MsgRead past the end: %d, %v", n, err)
	}
	want := pattern(size, 2)
	if n, err := qnx.MsgWrite(rcvid, want[size/2:], size/2); n != size/2 || err != nil {
		t.Fatalf("MsgWrite second half: %d, %v", n, err)
	}
	if n, err := qnx.MsgWrite(rcvid, want[:size/2], 0); n != size/2 || err != nil {
		t.Fatalf("MsgWrite first half: %d, %v", n, err)
	}
	if n, err := qnx.MsgWrite(rcvid, want, size-10); n != 10 || err != nil {
		t.Fatalf("MsgWrite clipped at the end of the reply buffer: %d, %v", n, err)
	}
	copy(want[size-10:], want[:10])
	// The client checks the reply is pattern(size, 2): restore the tail.
	if _, err := qnx.MsgWrite(rcvid, pattern(size, 2)[size-10:], size-10); err != nil {
		t.Fatal(err)
	}
	if err := qnx.MsgReply(rcvid, 9, nil); err != nil {
		t.Fatalf("MsgReply: %v", err)
	}
	c.Expect("big ok", 20*time.Second)
	if n, err := qnx.MsgRead(rcvid, chunk, 0); err != qnx.ESRCH {
		t.Fatalf("MsgRead after the reply: %d, %v, want ESRCH", n, err)
	}
	waitExit(t, c)
}

// A REPLY-blocked client whose timeout expires on an UNBLOCK channel
// stays blocked; the server gets an UNBLOCK pulse carrying the rcvid,
// MsgInfo shows the request, and the client takes the server's reply.
func TestUnblockPulse(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_UNBLOCK)
	c := startClient(t, env, chid, "timeout:50:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":slow", "send:after")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	p := receivePulse(t, chid) // arrives once the client's 50 ms are up
	if p.Code != qnx.PULSE_CODE_UNBLOCK || p.Value != rcvid {
		t.Fatalf("pulse %+v, want UNBLOCK for rcvid %d", p, rcvid)
	}
	var info qnx.MessageInfo
	if err := qnx.MsgInfo(rcvid, &info); err != nil || info.Flags&qnx.NTO_MI_UNBLOCK_REQ == 0 {
		t.Fatalf("MsgInfo: %+v, %v", info, err)
	}
	// Had the client left, it would print "err 110" and not this reply.
	if err := qnx.MsgReply(rcvid, 5, []byte("late")); err != nil {
		t.Fatalf("MsgReply: %v", err)
	}
	c.Expect("reply 5 late", 10*time.Second)
	rcvid = receive(t, chid, buf, nil)
	if err := qnx.MsgError(rcvid, int(qnx.ETIMEDOUT)); err != nil {
		t.Fatalf("MsgError(%d) after %q: %v", rcvid, buf, err)
	}
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	waitExit(t, c)
}

// Without NTO_CHF_UNBLOCK a timed out client leaves at once with
// ETIMEDOUT while the server holds its message, and the server's late
// MsgReply is ESRCH.
func TestTimeoutLeaves(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "timeout:50:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":held")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	// Through shared memory (the transport between two gosimpl
	// processes) the answer finds the client gone. Through FIFOs the C
	// SIMPL wire cannot say: the answer succeeds and is discarded, or is
	// ESRCH if the client has exited by then.
	err := qnx.MsgReply(rcvid, 0, nil)
	if err != qnx.ESRCH && !(overFIFO() && err == nil) {
		t.Fatalf("late MsgReply: %v, want ESRCH", err)
	}
	waitExit(t, c)
}

// A REPLY-only timeout on a channel without UNBLOCK is decided by the
// server's next MsgReceive: the client leaves, the rcvid is void.
func TestReplyTimeoutDecidedByServer(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "timeout:30:"+strconv.Itoa(qnx.NTO_TIMEOUT_REPLY)+":held")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := qnx.MsgReceive(ctx, chid, buf, nil)
		errc <- err
	}()
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	if err := qnx.MsgReply(rcvid, 0, nil); err != qnx.ESRCH {
		t.Fatalf("MsgReply on the left client's rcvid: %v, want ESRCH", err)
	}
	cancel()
	if err := <-errc; err != qnx.EINTR {
		t.Fatalf("cancelled MsgReceive: %v, want EINTR", err)
	}
	waitExit(t, c)
}

// SIGKILL of a client brings a DISCONNECT pulse, and the rcvid of the
// message it left unanswered is ESRCH.
func TestDisconnectOnKill(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_DISCONNECT)
	c := startClient(t, env, chid, "send:x")
	var info qnx.MessageInfo
	rcvid := receive(t, chid, make([]byte, 8), &info)
	c.Kill()
	c.Wait(10 * time.Second)
	reap(t)
	p := receivePulse(t, chid)
	if p.Code != qnx.PULSE_CODE_DISCONNECT || p.Scoid != info.Scoid {
		t.Fatalf("pulse %+v, want DISCONNECT for scoid %#x", p, info.Scoid)
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != qnx.ESRCH {
		t.Fatalf("MsgReply to the dead client: %v, want ESRCH", err)
	}
	if err := qnx.ConnectDetach(info.Scoid); err != nil {
		t.Fatalf("ConnectDetach(scoid): %v", err)
	}
	if err := qnx.ConnectDetach(info.Scoid); err != qnx.EINVAL {
		t.Fatalf("second ConnectDetach(scoid): %v, want EINVAL", err)
	}
}

// Several goroutines receive on one channel; messages from several
// client processes are each received once and answered by whichever
// goroutine got them.
func TestSeveralReceivers(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	const receivers = 3
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			var info qnx.MessageInfo
			for {
				rcvid, err := qnx.MsgReceive(ctx, chid, buf, &info)
				if err != nil {
					return
				}
				mu.Lock()
				seen[string(buf[:info.Msglen])]++
				mu.Unlock()
				qnx.MsgReply(rcvid, 1, bytes.ToUpper(buf[:info.Msglen]))
			}
		}()
	}
	var procs []*simpltest.Proc
	for i := range 4 {
		var steps []string
		for j := range 5 {
			steps = append(steps, fmt.Sprintf("send:c%dm%d", i, j))
		}
		procs = append(procs, startClient(t, env, chid, steps...))
	}
	for i, p := range procs {
		for j := range 5 {
			p.Expect(fmt.Sprintf("reply 1 C%dM%d", i, j), 10*time.Second)
		}
		waitExit(t, p)
	}
	cancel()
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("%d distinct messages received, want 20", len(seen))
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("%q received %d times", m, n)
		}
	}
}

// name_attach / name_open / name_close, as in QNX's example: the server
// answers the IO_CONNECT message, then the client's messages, then gets
// the DISCONNECT pulse.
func TestNames(t *testing.T) {
	env := setup(t)
	na, err := qnx.NameAttach("myname", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.NameDetach(na, 0)
	if _, err := qnx.NameAttach("myname", 0); err != qnx.EBUSY {
		t.Fatalf("second NameAttach: %v, want EBUSY", err)
	}
	for _, bad := range []string{"", "/abs", "a/../b", "a:b", strings.Repeat("x", 40)} {
		if _, err := qnx.NameAttach(bad, 0); err != qnx.EINVAL {
			t.Fatalf("NameAttach(%q): %v, want EINVAL", bad, err)
		}
	}
	if _, err := qnx.NameOpen(context.Background(), "nobody", 0); err != qnx.ENOENT {
		t.Fatalf("NameOpen of a missing name: %v, want ENOENT", err)
	}
	c := simpltest.Start(t, "named", env, "myname", "3")
	buf := make([]byte, 128)
	var info qnx.MessageInfo
	rcvid := receive(t, na.Chid, buf, &info)
	le := binary.NativeEndian
	if le.Uint16(buf) != qnx.IO_CONNECT || le.Uint16(buf[2:]) != qnx.IO_CONNECT_OPEN || le.Uint32(buf[4:]) != qnx.FTYPE_NAME || string(buf[40:46]) != "myname" {
		t.Fatalf("IO_CONNECT message %x", buf[:info.Msglen])
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rcvid := receive(t, na.Chid, buf, &info)
		if string(buf[:info.Msglen]) != fmt.Sprintf("m%d", i) {
			t.Fatalf("message %q", buf[:info.Msglen])
		}
		qnx.MsgReply(rcvid, 0, nil)
	}
	if p := receivePulse(t, na.Chid); p.Code != qnx.PULSE_CODE_DISCONNECT {
		t.Fatalf("pulse %+v, want DISCONNECT", p)
	}
	c.Expect("closed", 10*time.Second)
	waitExit(t, c)
}

// MsgDeliverEvent: the server keeps the client's event, answers at once,
// and delivers the pulse later to the client's own channel.
func TestDeliverEvent(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "event:12:345")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	ev, ok := qnx.DecodeEvent(buf[1:info.Msglen])
	if buf[0] != 'E' || !ok || ev.Notify != qnx.SIGEV_PULSE {
		t.Fatalf("request %x", buf[:info.Msglen])
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := qnx.MsgDeliverEvent(rcvid, &ev); err != nil {
		t.Fatalf("MsgDeliverEvent: %v", err)
	}
	c.Expect("event 12 345", 10*time.Second)
	waitExit(t, c)
	if err := qnx.MsgDeliverEvent(rcvid, &qnx.SigEvent{Notify: qnx.SIGEV_SIGNAL}); err != qnx.EINVAL {
		t.Fatalf("a signal event: %v, want EINVAL", err)
	}
	if err := qnx.MsgDeliverEvent(rcvid, nil); err != qnx.EFAULT {
		t.Fatalf("nil event: %v, want EFAULT", err)
	}
}

// The vector forms gather and scatter as one byte stream; MsgError with
// EOK is a plain success; MsgError with an errno fails the client's
// MsgSend with it.
func TestVectorsAndErrors(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "sendv:abc:defgh", "send:eok", "send:enosys")
	h1, h2 := make([]byte, 2), make([]byte, 10)
	var info qnx.MessageInfo
	ctx := simpltest.Context(t, 10*time.Second)
	rcvid, err := qnx.MsgReceivev(ctx, chid, [][]byte{h1, h2}, &info)
	if err != nil || string(h1) != "ab" || string(h2[:6]) != "cdefgh" || info.Msglen != 8 {
		t.Fatalf("MsgReceivev: %d %v %q %q %+v", rcvid, err, h1, h2, info)
	}
	p1, p2 := make([]byte, 3), make([]byte, 10)
	if n, err := qnx.MsgReadv(rcvid, [][]byte{p1, p2}, 2); n != 6 || err != nil || string(p1) != "cde" || string(p2[:3]) != "fgh" {
		t.Fatalf("MsgReadv: %d %v %q %q", n, err, p1, p2)
	}
	if n, err := qnx.MsgWritev(rcvid, [][]byte{[]byte("WX"), []byte("YZ")}, 8); n != 4 || err != nil {
		t.Fatalf("MsgWritev: %d %v", n, err)
	}
	if err := qnx.MsgReplyv(rcvid, 3, [][]byte{[]byte("RS"), []byte("TUVW")}); err != nil {
		t.Fatal(err)
	}
	c.Expect("replyv 3 RSTU|VW\x00\x00WXYZ", 10*time.Second)
	buf := make([]byte, 16)
	rcvid = receive(t, chid, buf, nil)
	if err := qnx.MsgError(rcvid, 0); err != nil {
		t.Fatal(err)
	}
	c.Expect("reply 0", 10*time.Second)
	rcvid = receive(t, chid, buf, nil)
	if err := qnx.MsgError(rcvid, int(qnx.ENOSYS)); err != nil {
		t.Fatal(err)
	}
	if err := qnx.MsgError(rcvid, int(qnx.ENOSYS)); err != qnx.ESRCH {
		t.Fatalf("second MsgError: %v, want ESRCH", err)
	}
	c.Expect("err "+strconv.Itoa(int(qnx.ENOSYS)), 10*time.Second)
	waitExit(t, c)
}

// ChannelDestroy releases a client REPLY-blocked on the channel with
// ESRCH, a receiver blocked on it with ESRCH; later sends on the dead
// connection are EBADF.
func TestChannelDestroy(t *testing.T) {
	env := setup(t)
	chid, err := qnx.ChannelCreate(0)
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, env, chid, "send:held", "send:again")
	receive(t, chid, make([]byte, 8), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := qnx.MsgReceive(simpltest.Context(t, 10*time.Second), chid, make([]byte, 64), nil)
		errc <- err
	}()
	if err := qnx.ChannelDestroy(chid); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != qnx.ESRCH {
		t.Fatalf("receiver on the destroyed channel: %v, want ESRCH", err)
	}
	c.Expect("err "+strconv.Itoa(int(qnx.ESRCH)), 10*time.Second)
	c.Expect("err "+strconv.Itoa(int(qnx.EBADF)), 10*time.Second)
	if err := qnx.ChannelDestroy(chid); err != qnx.EINVAL {
		t.Fatalf("second ChannelDestroy: %v, want EINVAL", err)
	}
	waitExit(t, c)
}

// Bad input gets QNX's errno, never a panic.
func TestBadInput(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	ctx := simpltest.Context(t, 10*time.Second)
	checks := []struct {
		what string
		err  error
		want error
	}{}
	add := func(what string, err, want error) {
		checks = append(checks, struct {
			what      string
			err, want error
		}{what, err, want})
	}
	_, err := qnx.ChannelCreate(qnx.NTO_CHF_THREAD_DEATH)
	add("ChannelCreate(THREAD_DEATH)", err, qnx.ENOTSUP)
	add("ChannelDestroy(unknown)", qnx.ChannelDestroy(9999), qnx.EINVAL)
	_, err = qnx.ConnectAttach(1, 0, chid, 0, 0)
	add("ConnectAttach(remote nd)", err, qnx.ENOREMOTE)
	_, err = qnx.ConnectAttach(0, 0, 0, 0, 0)
	add("ConnectAttach(chid 0)", err, qnx.EINVAL)
	_, err = qnx.ConnectAttach(0, -1, chid, 0, 0)
	add("ConnectAttach(pid -1)", err, qnx.EINVAL)
	_, err = qnx.ConnectAttach(0, 0, chid, -1, 0)
	add("ConnectAttach(index -1)", err, qnx.EINVAL)
	_, err = qnx.ConnectAttach(0, 0, chid, 0, 0x8000)
	add("ConnectAttach(bad flags)", err, qnx.EINVAL)
	_, err = qnx.ConnectAttach(0, 0, 9999, 0, 0)
	add("ConnectAttach(unknown chid)", err, qnx.ESRCH)
	_, err = qnx.ConnectAttach(0, 0x3FFFFFFF, chid, 0, 0)
	add("ConnectAttach(unknown pid)", err, qnx.ESRCH)
	add("ConnectDetach(unknown)", qnx.ConnectDetach(12345), qnx.EINVAL)
	_, err = qnx.MsgSend(ctx, 12345, []byte("x"), nil)
	add("MsgSend(unknown coid)", err, qnx.EBADF)
	_, err = qnx.MsgSend(ctx, -1, nil, nil)
	add("MsgSend(coid -1, nil buffers)", err, qnx.EBADF)
	add("MsgSendPulse(unknown coid)", qnx.MsgSendPulse(12345, -1, 1, 1), qnx.EBADF)
	add("MsgSendPulse(code 200)", qnx.MsgSendPulse(12345, -1, 200, 1), qnx.EINVAL)
	_, err = qnx.MsgReceive(ctx, 9999, nil, nil)
	add("MsgReceive(unknown chid)", err, qnx.ESRCH)
	for _, rcvid := range []int{0, -1, 1, 0x7FFF0001, 12345} {
		add(fmt.Sprintf("MsgReply(%d)", rcvid), qnx.MsgReply(rcvid, 0, nil), qnx.ESRCH)
		add(fmt.Sprintf("MsgError(%d)", rcvid), qnx.MsgError(rcvid, 1), qnx.ESRCH)
		_, err = qnx.MsgRead(rcvid, nil, 0)
		add(fmt.Sprintf("MsgRead(%d)", rcvid), err, qnx.ESRCH)
		_, err = qnx.MsgWrite(rcvid, nil, 0)
		add(fmt.Sprintf("MsgWrite(%d)", rcvid), err, qnx.ESRCH)
		add(fmt.Sprintf("MsgInfo(%d)", rcvid), qnx.MsgInfo(rcvid, &qnx.MessageInfo{}), qnx.ESRCH)
		add(fmt.Sprintf("MsgDeliverEvent(%d)", rcvid), qnx.MsgDeliverEvent(rcvid, &qnx.SigEvent{Notify: qnx.SIGEV_PULSE, Coid: qnx.NTO_SIDE_CHANNEL | 0x20010001}), qnx.ESRCH)
	}
	_, err = qnx.MsgRead(1, nil, -1)
	add("MsgRead(offset -1)", err, qnx.EINVAL)
	_, err = qnx.MsgWrite(1, nil, -5)
	add("MsgWrite(offset -5)", err, qnx.EINVAL)
	add("MsgInfo(nil)", qnx.MsgInfo(1, nil), qnx.EFAULT)
	_, err = qnx.TimerTimeout(77, qnx.NTO_TIMEOUT_SEND, nil, nil, nil)
	add("TimerTimeout(bad clock)", err, qnx.EINVAL)
	_, err = qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_SEND, &qnx.SigEvent{Notify: qnx.SIGEV_PULSE}, nil, nil)
	add("TimerTimeout(pulse notify)", err, qnx.EINVAL)
	_, err = qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, 1<<12, nil, nil, nil)
	add("TimerTimeout(NANOSLEEP)", err, qnx.ENOTSUP)
	add("NameDetach(nil)", qnx.NameDetach(nil, 0), qnx.EINVAL)
	_, err = qnx.NameOpen(ctx, "", 0)
	add("NameOpen(\"\")", err, qnx.EINVAL)
	for _, c := range checks {
		if c.err != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
}

// TimerTimeout on the RECEIVE state: nil ntime fails at once (QNX's
// non-blocking MsgReceive), a time fails after it; each arms one call.
func TestReceiveTimeout(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx := simpltest.Context(t, 10*time.Second)
	if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil); err != qnx.ETIMEDOUT {
		t.Fatalf("immediate timeout: %v, want ETIMEDOUT", err)
	}
	ns := uint64(20 * time.Millisecond)
	prev, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, &ns, nil)
	if err != nil || prev != 0 {
		t.Fatalf("TimerTimeout: %d, %v (the last call disarmed the previous one)", prev, err)
	}
	t0 := time.Now()
	if _, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil); err != qnx.ETIMEDOUT {
		t.Fatalf("20 ms timeout: %v, want ETIMEDOUT", err)
	}
	if d := time.Since(t0); d < 20*time.Millisecond {
		t.Fatalf("timed out after %v, before 20 ms", d)
	}
	// A pulse waiting in the channel does not wait: the timeout is not
	// used (and is disarmed by the call).
	coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	if err := qnx.MsgSendPulse(coid, -1, 5, 6); err != nil {
		t.Fatal(err)
	}
	if p := receivePulse(t, chid); p.Code != 5 || p.Value != 6 {
		t.Fatalf("pulse to self %+v", p)
	}
	// A buffer too small for a pulse is EFAULT, and the pulse is lost.
	if err := qnx.MsgSendPulse(coid, -1, 7, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.MsgReceive(ctx, chid, nil, nil); err != qnx.EFAULT {
		t.Fatalf("pulse into a nil buffer: %v, want EFAULT", err)
	}
	if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil); err != qnx.ETIMEDOUT {
		t.Fatalf("after the lost pulse: %v, want ETIMEDOUT (nothing queued)", err)
	}
}

// Without NTO_CHF_UNBLOCK, a client that times out while its message is
// still queued (the server is not receiving) leaves at once, and the
// message is withdrawn: the server's next MsgReceive gets the client's
// next message instead.
func TestSendTimeoutWithdraws(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "timeout:30:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":withdrawn", "send:next")
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	if overFIFO() {
		// Through FIFOs a message cannot be withdrawn: it is delivered,
		// and its answer discarded by the client.
		if got := string(buf[:info.Msglen]); got != "withdrawn" {
			t.Fatalf("received %q, want the timed-out message", got)
		}
		qnx.MsgReply(rcvid, 0, nil)
		rcvid = receive(t, chid, buf, &info)
	}
	if got := string(buf[:info.Msglen]); got != "next" {
		t.Fatalf("received %q, want the message after the withdrawn one", got)
	}
	qnx.MsgReply(rcvid, 0, nil)
	c.Expect("reply 0", 10*time.Second)
	waitExit(t, c)
}

// A TimerTimeout belongs to the OS thread that armed it: a call on
// another thread neither uses nor disarms it.
func TestTimerTimeoutPerThread(t *testing.T) {
	setup(t)
	chid := channel(t, 0)
	coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.ConnectDetach(coid)
	if err := qnx.MsgSendPulse(coid, -1, 1, 2); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := qnx.TimerTimeout(qnx.CLOCK_MONOTONIC, qnx.NTO_TIMEOUT_RECEIVE, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx := simpltest.Context(t, 10*time.Second)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // another thread than the test's, locked above
		defer runtime.UnlockOSThread()
		rcvid, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil)
		if err == nil && rcvid != 0 {
			err = fmt.Errorf("rcvid %d, want the pulse", rcvid)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("the other thread's MsgReceive: %v (it took this thread's timeout?)", err)
	}
	if _, err := qnx.MsgReceive(ctx, chid, make([]byte, 64), nil); err != qnx.ETIMEDOUT {
		t.Fatalf("this thread's MsgReceive: %v, want ETIMEDOUT from its own timeout", err)
	}
}

// On an UNBLOCK channel a client whose 1 ms timeout expires while its
// message is queued or already received (the test does not control
// which: the transports cannot tell the client) stays blocked either
// way: the server gets the message, then the UNBLOCK pulse, and its
// MsgError releases the client.
func TestUnblockWhileQueued(t *testing.T) {
	env := setup(t)
	chid := channel(t, qnx.NTO_CHF_UNBLOCK)
	c := startClient(t, env, chid, "timeout:1:"+strconv.Itoa(qnx.NTO_TIMEOUT_SEND|qnx.NTO_TIMEOUT_REPLY)+":queued")
	buf := make([]byte, 64)
	rcvid := receive(t, chid, buf, nil)
	p := receivePulse(t, chid)
	if p.Code != qnx.PULSE_CODE_UNBLOCK || p.Value != rcvid {
		t.Fatalf("pulse %+v, want UNBLOCK for rcvid %d", p, rcvid)
	}
	if err := qnx.MsgError(rcvid, int(qnx.ETIMEDOUT)); err != nil {
		t.Fatal(err)
	}
	c.Expect("err "+strconv.Itoa(int(qnx.ETIMEDOUT)), 10*time.Second)
	waitExit(t, c)
}
