package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// A Send's deadline counts from when the program made its envelope, not
// from when the gateway took it: an envelope that waited for the gateway
// longer than its deadline is answered "deadline" and never carried,
// and one made just now is carried. Before, the time an envelope waited
// for a busy (or stopped) gateway was not counted, and the remote side
// worked past the sender's deadline.
func TestDeadlineFromSent(t *testing.T) {
	const host = "gw-sent-host"
	bridge := &countingBridge{host: "c-host"}
	_, dir := setup(t, host, WithBridge(bridge))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	first := make(chan string, 1)
	go func() {
		msg, err := srv.Receive(ctx)
		if err != nil {
			first <- err.Error()
			return
		}
		first <- string(msg.Data())
		msg.Reply([]byte("ok"))
	}()
	gw := locateIn(t, ctx, dir, netwire.GatewayName)
	send := func(to, what string, sent int64) (netwire.Status, string) {
		t.Helper()
		env := netwire.Envelope{Kind: netwire.KindSend, Target: naming.Name{Host: to, Name: "SRV"}, Timeout: time.Second,
			MaxReply: 16, Sent: sent, Payload: []byte(what)}
		b, err := netwire.AppendEnvelope(nil, &env)
		if err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, netwire.ReplyHeaderSize+16)
		n, err := gw.Send(ctx, b, reply)
		if err != nil {
			t.Fatalf("Send of %q to the gateway: %v", what, err)
		}
		s, _, data, err := netwire.DecodeReply(reply[:n])
		if err != nil {
			t.Fatal(err)
		}
		return s, string(data)
	}
	if s, _ := send(host, "late", sys.MonoNow()-int64(2*time.Second)); s != netwire.StatusDeadline {
		t.Errorf("an envelope made 2 s ago with a deadline of 1 s: %v, want deadline", s)
	}
	if s, data := send(host, "fresh", sys.MonoNow()); s != netwire.StatusOK || data != "ok" {
		t.Errorf("an envelope made just now: %v %q, want ok", s, data)
	}
	if got := <-first; got != "fresh" {
		t.Errorf("the receiver's first message: %q, want the fresh one (the late one never carried)", got)
	}
	// Through a bridge (to C SIMPL hosts) likewise.
	if s, _ := send("c-host", "late", sys.MonoNow()-int64(2*time.Second)); s != netwire.StatusDeadline {
		t.Errorf("a late envelope for the bridge: %v, want deadline", s)
	}
	if s, data := send("c-host", "fresh", sys.MonoNow()); s != netwire.StatusOK || data != "ok" {
		t.Errorf("an envelope for the bridge made just now: %v %q, want ok", s, data)
	}
	if got := bridge.sent.Load(); got != 1 {
		t.Errorf("the bridge carried %d Sends, want 1 (the late one never)", got)
	}
}

// countingBridge takes host's names and answers each Send "ok",
// counting them.
type countingBridge struct {
	host string
	sent atomic.Int64
}

func (b *countingBridge) Takes(n naming.Name) bool { return n.Host == b.host }
func (b *countingBridge) Send(ctx context.Context, n naming.Name, req, reply []byte) (int, error) {
	b.sent.Add(1)
	return copy(reply, "ok"), nil
}
func (b *countingBridge) Trigger(ctx context.Context, n naming.Name, proxy int) error { return nil }
func (b *countingBridge) Locate(ctx context.Context, n naming.Name) error             { return nil }
