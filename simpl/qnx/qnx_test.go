package qnx_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
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
	if err := c.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
