package qnx_test

import (
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// The spec's pattern: the server keeps a client's rcvid and event,
// answers at once, and delivers later, while the same client sends it
// more (here, a message it holds unanswered, the client REPLY-blocked on
// it). The kept rcvid still names the client, and each delivery returns
// at once. Before, the client's next message reused the rcvid's slot
// under a new generation, so MsgDeliverEvent was ESRCH; and a second
// delivery waited up to 10 s for the client to take the first pulse,
// then failed with EBADF (helper-40).
func TestDeliverEventLater(t *testing.T) {
	env := setup(t)
	chid := channel(t, 0)
	c := startClient(t, env, chid, "events:7:8:3")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	kept := receive(t, chid, buf, &info)
	ev, ok := qnx.DecodeEvent(buf[1:info.Msglen])
	if buf[0] != 'E' || !ok {
		t.Fatalf("request %x", buf[:info.Msglen])
	}
	if err := qnx.MsgReply(kept, 0, nil); err != nil {
		t.Fatal(err)
	}
	held := receive(t, chid, buf, &info)
	if string(buf[:info.Msglen]) != "after" {
		t.Fatalf("second message %q", buf[:info.Msglen])
	}
	done := make(chan error, 1)
	go func() {
		for range 3 {
			if err := qnx.MsgDeliverEvent(kept, &ev); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("MsgDeliverEvent with the kept rcvid, its client sending again: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("three MsgDeliverEvents to a REPLY-blocked client still going after 5s")
	}
	if err := qnx.MsgReply(held, 0, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Expect("event 7 8", 10*time.Second)
	}
	waitExit(t, c)
}
