package gateway

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
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
		s, data, err := sendEnvelope(ctx, gw, to, what, sent)
		if err != nil {
			t.Fatalf("Send of %q to the gateway: %v", what, err)
		}
		return s, data
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

// runSkewSend (DIR HOST) sends its gateway in DIR one envelope for
// HOST:SRV, with a deadline of 1 s and its own clock's time as sent,
// and prints the answer's status and data.
func runSkewSend(args []string) error {
	ch, err := simpl.Attach("", simpl.WithDir(args[0]))
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gw, err := ch.Locate(ctx, netwire.GatewayName)
	if err != nil {
		return err
	}
	s, data, err := sendEnvelope(ctx, gw, args[1], "skewed", sys.MonoNow())
	if err != nil {
		return err
	}
	fmt.Println(s, data)
	return nil
}

// sendEnvelope hands the gateway gw a Send of what to HOST:SRV, with a
// deadline of 1 s stamped sent, and returns the answer's status and data.
func sendEnvelope(ctx context.Context, gw *simpl.Conn, host, what string, sent int64) (netwire.Status, string, error) {
	env := netwire.Envelope{Kind: netwire.KindSend, Target: naming.Name{Host: host, Name: "SRV"}, Timeout: time.Second,
		MaxReply: 16, Sent: sent, Payload: []byte(what)}
	b, err := netwire.AppendEnvelope(nil, &env)
	if err != nil {
		return 0, "", err
	}
	reply := make([]byte, netwire.ReplyHeaderSize+16)
	n, err := gw.Send(ctx, b, reply)
	if err != nil {
		return 0, "", err
	}
	s, _, data, err := netwire.DecodeReply(reply[:n])
	return s, string(data), err
}

// A program in a time namespace of its own reads CLOCK_MONOTONIC with
// an offset: an hour behind the gateway's, every envelope it stamps
// looks an hour old. The gateway does not count such a stamp (the
// processes' clocks differ), and carries the Send. Before, every Send
// with a deadline from such a program was answered "deadline" at once.
func TestSentFromAnotherClock(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("unshare -T needs root")
	}
	if out, err := exec.Command("unshare", "-T", "--monotonic", "-3600", "--fork", "true").CombinedOutput(); err != nil {
		t.Skipf("no time namespace with an offset an hour back here: %v %s", err, out)
	}
	const host = "gw-skew-host"
	_, dir := setup(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		if msg, err := srv.Receive(ctx); err == nil {
			msg.Reply([]byte("ok"))
		}
	}()
	cmd := exec.Command("unshare", "-T", "--monotonic", "-3600", "--fork", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env("skewsend", dir, host)...)
	p := proctest.StartCmd(t, cmd)
	if got := p.ReadLine(20 * time.Second); got != "ok ok" {
		t.Errorf("a Send stamped by a clock an hour behind the gateway's: %q, want ok ok (stderr %q)", got, p.Stderr())
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Error(err)
	}
}
