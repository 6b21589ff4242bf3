package qnx_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// An unblock request that reaches the server after its message was
// answered (the client's timeout and the answer crossed) leaves nothing
// behind: the server remembers the client's last answers and tells it
// to stay for its answer. Before, the request was taken for one about a
// message still to come: with SEND timed the message was noted
// withdrawn, with REPLY only the request was held for it, each kept
// until the client process exited (helper-43).
func TestUnblockAfterAnswer(t *testing.T) {
	for _, c := range []struct {
		name   string
		states int
	}{
		{"reply", qnx.NTO_TIMEOUT_REPLY},
		{"send-reply", qnx.NTO_TIMEOUT_SEND | qnx.NTO_TIMEOUT_REPLY},
		{"send", qnx.NTO_TIMEOUT_SEND},
	} {
		t.Run(c.name, func(t *testing.T) {
			setup(t)
			chid := channel(t, 0)
			coid, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer qnx.ConnectDetach(coid)
			ctx := simpltest.Context(t, 10*time.Second)
			out := threadSends(ctx, coid, "one")
			buf := make([]byte, 64)
			var info qnx.MessageInfo
			rcvid := receive(t, chid, buf, &info)
			pid, id, ok := qnx.SendKey(rcvid)
			if !ok || pid != os.Getpid() {
				t.Fatalf("SendKey(%#x): pid %d id %d %v", rcvid, pid, id, ok)
			}
			if err := qnx.MsgReply(rcvid, 1, []byte("1")); err != nil {
				t.Fatal(err)
			}
			if got := outcome(t, ctx, out); got != "reply 1 1" {
				t.Fatalf("MsgSend: %s", got)
			}
			if !qnx.Unblock(chid, pid, id, c.states, int(qnx.ETIMEDOUT)) {
				t.Fatal("Unblock: no channel")
			}
			if w, d := qnx.UnblockState(chid); w != 0 || d != 0 {
				t.Errorf("after an unblock request for an answered message: %d requests held, %d messages noted withdrawn; want none", w, d)
			}
		})
	}
}

// ChannelDestroy voids the rcvids of the channel's clients, answered
// ones too: MsgDeliverEvent with one is ESRCH. Before, the client stayed
// live in the rcvid table, the event was delivered, and the slot was
// kept for it (helper-43).
func TestDeliverEventAfterDestroy(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	cli := startClient(t, env, chid, "event:3:4")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rcvid := receive(t, chid, buf, &info)
	ev, ok := qnx.DecodeEvent(buf[1:info.Msglen])
	if buf[0] != 'E' || !ok {
		t.Fatalf("the client's request: %q", buf[:info.Msglen])
	}
	if err := qnx.MsgReply(rcvid, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := qnx.ChannelDestroy(chid); err != nil {
		t.Fatal(err)
	}
	if err := qnx.MsgDeliverEvent(rcvid, &ev); !errors.Is(err, qnx.ESRCH) {
		t.Errorf("MsgDeliverEvent with an rcvid of a destroyed channel: %v, want ESRCH", err)
	}
	cli.Kill()
	cli.Wait(10 * time.Second)
	reap(t)
}
