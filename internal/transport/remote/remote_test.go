package remote_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/transport/remote"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/transport"
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]proctest.Role{"holdgw": runHoldGateway, "oldgw": runOldGateway, "badgw": runBadGateway}, proctest.WithLifetime(time.Minute))
}

// runHoldGateway (DIR) attaches the gateway's name in DIR, receives one
// request, prints "held" and answers nothing: a gateway that has stopped
// answering.
func runHoldGateway(args []string) error {
	ch, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(args[0]), simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	proctest.Ready()
	if _, err := ch.Receive(context.Background()); err != nil {
		return err
	}
	fmt.Println("held")
	select {}
}

// Close ends a Dial (a remote Locate) waiting for a gateway that does not
// answer, with ErrClosed; before, the Dial went on until its context
// ended, which with none was never.
func TestCloseEndsDial(t *testing.T) {
	gw, ep := withGateway(t, "holdgw")
	n, err := naming.Parse("otherhost:SRV")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		c, err := ep.Dial(context.Background(), transport.Peer{Name: n})
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	gw.Expect("held", 10*time.Second)
	ep.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Dial across Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dial to a gateway that does not answer still waiting 5s after Close")
	}
}

// runOldGateway (DIR) is a gateway built before envelopes had a sent
// time: it refuses "GSN2" envelopes as bad ("refused"), and answers the
// others, each named by its kind, a Locate with OK and a Send with its
// payload.
func runOldGateway(args []string) error {
	ch, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(args[0]))
	if err != nil {
		return err
	}
	proctest.Ready()
	for {
		msg, err := ch.Receive(context.Background())
		if err != nil {
			return err
		}
		d := msg.Data()
		if len(d) >= 4 && string(d[:4]) == "GSN2" {
			fmt.Println("refused")
			msg.Reply(netwire.AppendReplyHeader(nil, netwire.StatusBadMessage, 0))
			continue
		}
		env, err := netwire.DecodeEnvelope(d)
		if err != nil {
			return err
		}
		fmt.Println(env.Kind)
		msg.Reply(append(netwire.AppendReplyHeader(nil, netwire.StatusOK, 0), env.Payload...))
	}
}

// A program's envelopes reach a gateway built before they had a sent
// time: the first Send with a deadline, refused as bad (so never
// carried), goes again without it, and later ones go without it at
// once.
func TestOldGateway(t *testing.T) {
	gw, ep := withGateway(t, "oldgw")
	n, err := naming.Parse("otherhost:SRV")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ep.Dial(context.Background(), transport.Peer{Name: n}) // no deadline: no sent time
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := gw.Expect("", 10*time.Second); got != "locate" {
		t.Errorf("Dial: the gateway said %q, want locate", got)
	}
	for i, want := range [][]string{{"refused", "send"}, {"send"}} {
		reply := make([]byte, 16)
		k, err := c.Send(ctx, []byte("hello"), reply)
		if err != nil || string(reply[:k]) != "hello" {
			t.Fatalf("Send %d with a deadline to an old gateway: %q, %v", i, reply[:k], err)
		}
		for _, line := range want {
			if got := gw.Expect("", 10*time.Second); got != line {
				t.Errorf("Send %d: the gateway said %q, want %q", i, got, line)
			}
		}
	}
}

// runBadGateway (DIR) is a gateway that reads GSN2 and answers every
// Send as a gateway does whose request reached the other host and came
// back "bad message" (a reply the receiving gateway could not pass on):
// StatusBadMessage with detail BadMessageCarried. It prints "delivered
// PAYLOAD" for each Send.
func runBadGateway(args []string) error {
	ch, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(args[0]))
	if err != nil {
		return err
	}
	proctest.Ready()
	for {
		msg, err := ch.Receive(context.Background())
		if err != nil {
			return err
		}
		env, err := netwire.DecodeEnvelope(msg.Data())
		if err != nil {
			return err
		}
		if env.Kind == netwire.KindLocate {
			msg.Reply(netwire.AppendReplyHeader(nil, netwire.StatusOK, 0))
			continue
		}
		fmt.Printf("delivered %s\n", env.Payload)
		msg.Reply(netwire.AppendReplyHeader(nil, netwire.StatusBadMessage, netwire.BadMessageCarried))
	}
}

// A "bad message" that came from the other host, after the request may
// have been delivered, fails the Send; the request is not sent again as
// to a gateway that could not read its sent time (helper-52: every
// deadline Send answered "bad message" was delivered twice).
func TestBadMessageNotResent(t *testing.T) {
	gw, ep := withGateway(t, "badgw")
	n, err := naming.Parse("otherhost:SRV")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ep.Dial(context.Background(), transport.Peer{Name: n})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a deadline: a sent time
	defer cancel()
	for _, payload := range []string{"first", "second"} {
		if _, err := c.Send(ctx, []byte(payload), make([]byte, 16)); !errors.Is(err, transport.ErrBadMessage) {
			t.Errorf("Send %s answered bad message: %v, want ErrBadMessage", payload, err)
		}
		// The first Send returned before the second went: a resend of
		// it would come before "delivered second".
		if got := gw.Expect("delivered", 10*time.Second); got != "delivered "+payload {
			t.Fatalf("the gateway got %q, want %q", got, "delivered "+payload)
		}
	}
}

// withGateway starts the helper role as the gateway of a FIFO directory
// of the test's own, and a remote transport endpoint there, both ended
// when the test ends.
func withGateway(t *testing.T, role string) (*proctest.Proc, transport.Endpoint) {
	t.Helper()
	dir := proctest.Dir(t)
	gw := proctest.Start(t, role, nil, dir)
	t.Cleanup(func() {
		gw.Kill()
		gw.Wait(10 * time.Second)
		if reg, err := naming.Open(dir); err == nil {
			reg.Reap("")
		}
	})
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := remote.Transport{}.Listen(transport.Config{Name: "CLI", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return gw, ep
}
