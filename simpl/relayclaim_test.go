package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

var relayClaimRoles = map[string]simpltest.Role{"sendonce": roleSendOnce}

// roleSendOnce NAME TO MSG: send MSG to TO and print "reply R" or "err E".
func roleSendOnce(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	reply := make([]byte, 64)
	n, err := to.Send(context.Background(), []byte(args[2]), reply)
	if err != nil {
		fmt.Println("err", err)
		return nil
	}
	fmt.Printf("reply %s\n", reply[:n])
	return nil
}

// A request relayed by forwarding (the relayer reaches the final
// receiver through shared memory, or the request came that way) is the
// forwarder's: the relayer's Message has no data any more and a second
// answer is ErrReplied, so the sender gets the final receiver's answer
// and nothing else. Before, the relayer could answer it again (the
// sender then got that answer, the final receiver's was dropped), and
// its Reply wrote over the request the forwarder was still sending
// (helper-49).
func TestForwardedRelayClaimed(t *testing.T) {
	if wantTransport() == simpl.FIFO {
		t.Skip("FIFO to FIFO a relay is handed over whole, not forwarded")
	}
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "FINAL")
	mid := attach(t, dir, "MID", simpl.WithTransport(simpl.SHM))
	defer mid.Close()
	fin := locate(t, mid, "FINAL")
	defer fin.Close()
	snd := simpltest.Start(t, "sendonce", env(dir), "CLI", "MID", string([]byte{opEcho, 'a'}))
	ctx := simpltest.Context(t, testTimeout)
	msg, err := mid.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Relay(fin); err != nil {
		t.Fatal(err)
	}
	if d := msg.Data(); d != nil {
		t.Errorf("Data after a forwarded Relay: %q, want nil", d)
	}
	if err := msg.Reply([]byte("from the relayer")); !errors.Is(err, simpl.ErrReplied) {
		t.Errorf("Reply after a forwarded Relay: %v, want ErrReplied", err)
	}
	if got := snd.ReadLine(testTimeout); got != "reply b" {
		t.Errorf("the sender got %q, want the final receiver's answer \"reply b\"", got)
	}
	if err := mid.WaitRelays(ctx); err != nil {
		t.Error(err)
	}
	snd.Wait(testTimeout)
	srv.Kill()
	srv.Wait(testTimeout)
	reap(t, dir)
}

// A Channel whose only transport reaches other hosts (WithTransport(NET))
// cannot locate a name on this host: ErrUnreachable, not a Conn without
// a transport whose Send panicked (helper-49).
func TestLocateWithoutLocalTransport(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	defer srv.Close()
	net := attach(t, dir, "", simpl.WithTransport(simpl.NET))
	defer net.Close()
	ctx := simpltest.Context(t, testTimeout)
	if c, err := net.Locate(ctx, "SRV"); !errors.Is(err, simpl.ErrUnreachable) {
		if c != nil {
			c.Close()
		}
		t.Errorf("Locate of a local name through the network transport alone: %v, want ErrUnreachable", err)
	}
}

// Close ends a WaitFor under way with ErrClosed (it waited until its
// context ended or the name appeared; helper-49).
func TestCloseEndsWaitFor(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "WAITER")
	errc := make(chan error, 1)
	go func() {
		c, err := ch.WaitFor(context.Background(), "NOBODY")
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	proctest.WaitParked(t, testTimeout, "simpl.(*Channel).waitFor", 1)
	ch.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, simpl.ErrClosed) {
			t.Errorf("WaitFor across Close: %v, want ErrClosed", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("WaitFor still waiting after Close")
	}
}
