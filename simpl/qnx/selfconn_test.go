package qnx_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// A process holding a side-channel coid to a channel of its own (QNX's
// MsgDeliverEvent pattern: the coid goes into a SIGEV_PULSE event, and
// this process never sends on it) shuts down at once: nobody receives on
// its own channel while it exits, so no disconnect is sent there. Before,
// Shutdown waited its whole ctx for one (helper-66).
func TestShutdownSelfConn(t *testing.T) {
	setup(t)
	chid, err := qnx.ChannelCreate(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qnx.ConnectAttach(0, 0, chid, qnx.NTO_SIDE_CHANNEL, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err = qnx.Shutdown(ctx)
	d := time.Since(start)
	t.Logf("Shutdown: %v after %v", err, d)
	if d > time.Second {
		t.Errorf("Shutdown waited %v (its whole ctx) for a disconnect to this process's own channel", d)
	}
}

// When Shutdown's ctx ends before a live server that is not receiving
// took a disconnect, the disconnect stops being sent as Shutdown returns:
// no goroutine of the connection keeps sending after. Before, it went on
// under context.Background (helper-66).
func TestShutdownLeavesNoSender(t *testing.T) {
	env := setup(t)
	srv, schid := startSink(t, env, 0)
	if _, err := qnx.ConnectAttach(0, srv.PID(), schid, qnx.NTO_SIDE_CHANNEL, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := qnx.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown returned nil: the server took the disconnect, which it does not receive")
	}
	outboxes := func() int {
		b := make([]byte, 1<<20)
		return strings.Count(string(b[:runtime.Stack(b, true)]), "qnx.(*peer).run")
	}
	for deadline := time.Now().Add(5 * time.Second); outboxes() > 0; {
		if time.Now().After(deadline) {
			t.Fatal("an outbox goroutine still sends 5 s after Shutdown returned")
		}
		time.Sleep(10 * time.Millisecond) // polling the goroutines
	}
}

// name_open, two pulses (the server not receiving), name_close, name_open
// again: the second name_open's _IO_CONNECT reaches the server after the
// first connection's pulses and disconnect, as a MsgSend would. Before,
// it went straight out, overtook them, and the disconnect then ended the
// server's record of the new connection (helper-66).
func TestNameOpenAfterDisconnect(t *testing.T) {
	setup(t)
	a, err := qnx.NameAttach("revx", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer qnx.NameDetach(a, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	open := func() <-chan int {
		ch := make(chan int, 1)
		go func() {
			coid, err := qnx.NameOpen(ctx, "revx", 0)
			if err != nil {
				t.Errorf("NameOpen: %v", err)
			}
			ch <- coid
		}()
		return ch
	}
	buf := make([]byte, 256)
	var info qnx.MessageInfo
	var seq []string
	next := func() {
		rcvid, err := qnx.MsgReceive(ctx, a.Chid, buf, &info)
		if err != nil {
			t.Fatalf("MsgReceive: %v (so far %v)", err, seq)
		}
		if rcvid == 0 {
			p, _ := qnx.DecodePulse(buf)
			seq = append(seq, fmt.Sprintf("pulse(code %d value %d scoid %#x)", p.Code, p.Value, p.Scoid))
			return
		}
		seq = append(seq, fmt.Sprintf("message(scoid %#x)", info.Scoid))
		qnx.MsgReply(rcvid, 0, nil)
	}
	c1 := open()
	next() // the first _IO_CONNECT
	coid := <-c1
	qnx.MsgSendPulse(coid, -1, 5, 1)
	qnx.MsgSendPulse(coid, -1, 5, 2)
	qnx.NameClose(coid)
	c2 := open()
	time.Sleep(200 * time.Millisecond) // room for a connect that would overtake; the order is what is checked
	for range 4 {
		next()
	}
	<-c2
	t.Logf("server saw: %v", seq)
	if !strings.HasPrefix(seq[len(seq)-1], "message") {
		t.Errorf("the second name_open's _IO_CONNECT came before the first connection's pulses and disconnect: %v", seq)
	}
}
