//go:build !race

package qnx_test

import (
	"context"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// In steady state MsgSend allocates nothing in the client, and
// MsgReceive plus MsgReply allocate nothing in the server.
func TestSteadyStateAllocs(t *testing.T) {
	env := setup(t)
	srv, chid := startEcho(t, env)
	coid, err := qnx.ConnectAttach(0, srv.PID(), chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req, reply := make([]byte, 64), make([]byte, 64)
	send := func() {
		if st, err := qnx.MsgSend(ctx, coid, req, reply); err != nil || st != 64 {
			t.Fatalf("MsgSend: %d, %v", st, err)
		}
	}
	for range 100 {
		send()
	}
	if a := testing.AllocsPerRun(1000, send); a != 0 {
		t.Errorf("client: %v allocations per MsgSend, want 0", a)
	}
	// Taking turns between two coids to the server (each Send runs under
	// its coid's context: the transport keeps a registration for both).
	coid2, err := qnx.ConnectAttach(0, srv.PID(), chid, qnx.NTO_SIDE_CHANNEL, 0)
	if err != nil {
		t.Fatal(err)
	}
	both := func() {
		send()
		if st, err := qnx.MsgSend(ctx, coid2, req, reply); err != nil || st != 64 {
			t.Fatalf("MsgSend on the second coid: %d, %v", st, err)
		}
	}
	for range 100 {
		both()
	}
	if a := testing.AllocsPerRun(1000, both); a != 0 {
		t.Errorf("client, taking turns between two coids: %v allocations per two MsgSends, want 0", a)
	}
	qnx.ConnectDetach(coid2)
	qnx.ConnectDetach(coid)
	srv.Kill()
	srv.Wait(10 * time.Second)
	reap(t)

	// Server side: this process receives, a helper pumps.
	me := channel(t, 0)
	pump := startClient(t, env, me, "pump")
	buf := make([]byte, 64)
	var info qnx.MessageInfo
	rctx := simpltest.Context(t, time.Minute)
	serve := func() {
		rcvid, err := qnx.MsgReceive(rctx, me, buf, &info)
		if err != nil || rcvid <= 0 {
			t.Fatalf("MsgReceive: %d, %v", rcvid, err)
		}
		if err := qnx.MsgReply(rcvid, 0, buf[:info.Msglen]); err != nil {
			t.Fatalf("MsgReply: %v", err)
		}
	}
	for range 100 {
		serve()
	}
	switch a := testing.AllocsPerRun(1000, serve); {
	case overFIFO():
		// The FIFO transport copies each request into memory of its own.
		t.Logf("server, through FIFOs: %v allocations per MsgReceive+MsgReply", a)
	case a != 0:
		t.Errorf("server: %v allocations per MsgReceive+MsgReply, want 0", a)
	}
	pump.Kill()
	pump.Wait(10 * time.Second)
	reap(t)
}
