package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
)

// A gateway's whole life in this process, serving a host name that is
// not this host's (so the program side does not short-circuit it): a
// Locate, a Send kept alive by heartbeats well past the silence, a
// Trigger, a name nobody holds, a host nobody serves; then Close, the
// NATS connection's and the Channel's, after which the package's leak
// check (TestMain) finds no goroutine, descriptor or FIFO left. The
// processes that exchange messages across hosts are tested in
// tools/fcgate; this is the library's bookkeeping.
func TestLifecycle(t *testing.T) {
	const host = "gw-test-host"
	if h, _ := os.Hostname(); h == host {
		t.Skip("this machine is named like the test's remote host")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	netw := &Network{Host: host, Listen: "127.0.0.1:0"}
	if err := netw.Check(); err != nil {
		t.Fatal(err)
	}
	conn, err := netw.Connect(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(5 * time.Second)
	gwCh, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(dir), simpl.WithMaxMessage(netwire.MaxEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	defer gwCh.Close()
	var events []Event
	done := make(chan Event, 64)
	g, err := New(gwCh, conn.Conn, host, WithTiming(50*time.Millisecond, time.Second), WithHooks(Hooks{Done: func(e Event) { done <- e }}))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()

	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const slow = 2500 * time.Millisecond // 2.5 times the silence
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			msg, err := srv.Receive(ctx)
			if err != nil {
				return err
			}
			time.Sleep(slow) // a slow receiver: the heartbeats must carry the Send
			if err := msg.Reply(append([]byte("re: "), msg.Data()...)); err != nil {
				return err
			}
			// Proxy 7, and a Send to answer with ReplyError, in either
			// order: the Send goes out once the Trigger was delivered,
			// but a receiver takes proxies and messages from two queues
			// in turn, not in the order they came.
			proxied, rejected := false, false
			for !proxied || !rejected {
				msg, err = srv.Receive(ctx)
				switch {
				case err != nil:
					return err
				case msg.Proxy() == 7 && !proxied:
					proxied = true
				case msg.Proxy() == 0 && string(msg.Data()) == "refuse this" && !rejected:
					if err := msg.ReplyError(); err != nil {
						return err
					}
					rejected = true
				default:
					return fmt.Errorf("want proxy 7 and the Send to refuse, got proxy %d, %q", msg.Proxy(), msg.Data())
				}
			}
			// A reply larger than crosses between hosts, to a sender
			// who would take it.
			msg, err = srv.Receive(ctx)
			if err != nil {
				return err
			}
			if err := msg.Reply(make([]byte, msg.MaxReply()+1)); !errors.Is(err, simpl.ErrReplyTooLarge) {
				return fmt.Errorf("a reply larger than the gateway's buffer: %v, want ErrReplyTooLarge", err)
			}
			return nil
		}()
	}()

	cli, err := simpl.Attach("", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := cli.Locate(ctx, host+":SRV")
	if err != nil {
		t.Fatalf("Locate %s:SRV: %v", host, err)
	}
	reply := make([]byte, 64)
	n, err := c.Send(ctx, []byte("hi"), reply)
	if err != nil || string(reply[:n]) != "re: hi" {
		t.Fatalf("Send through the gateway to a receiver %v slow: %q, %v", slow, reply[:n], err)
	}
	if err := c.Trigger(7); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	if _, err := c.Send(ctx, []byte("refuse this"), reply); !errors.Is(err, simpl.ErrRejected) {
		t.Errorf("a Send the receiver answers with ReplyError: %v, want ErrRejected", err)
	}
	// Larger than crosses between hosts: a request (sent nowhere, not
	// even to the gateway), and a reply.
	var se *simpl.SizeError
	big := make([]byte, netwire.MaxPayload+1)
	if _, err := c.Send(ctx, big, reply); !errors.As(err, &se) || !errors.Is(err, simpl.ErrTooLarge) || se.Limit != netwire.MaxPayload || se.Size != len(big) {
		t.Errorf("a request of %d bytes: %v, want ErrTooLarge with its size and the limit %d", len(big), err, netwire.MaxPayload)
	}
	if _, err := c.Send(ctx, []byte("big reply"), big); !errors.As(err, &se) || !errors.Is(err, simpl.ErrTooLarge) || se.Limit != netwire.MaxPayload {
		t.Errorf("a reply larger than crosses between hosts: %v, want ErrTooLarge with the limit %d", err, netwire.MaxPayload)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := cli.Locate(ctx, host+":NOPE"); !errors.Is(err, simpl.ErrNotFound) {
		t.Errorf("Locate %s:NOPE: %v, want ErrNotFound", host, err)
	}
	if _, err := cli.Locate(ctx, "nobody-serves-this:SRV"); !errors.Is(err, simpl.ErrUnreachable) {
		t.Errorf("Locate of a host no gateway serves: %v, want ErrUnreachable", err)
	}
	// Locate, send, trigger, the rejected send, the big reply, NOPE:
	// each seen inbound and outbound; the unreachable one outbound only
	// (the big request never reached the gateway).
	for len(events) < 13 {
		select {
		case e := <-done:
			events = append(events, e)
		case <-ctx.Done():
			t.Fatalf("events: %+v", events)
		}
	}
	st := g.Stats()
	if st.In != 6 || st.Out != 7 || st.Unreachable != 1 || st.Unknown != 0 || st.BadRequests != 0 {
		t.Errorf("stats %+v", st)
	}
	if err := g.Close(); err != nil {
		t.Error(err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := conn.Close(5 * time.Second); err != nil {
		t.Error(err)
	}
}

// setup runs a gateway for host in this process, on an embedded server,
// with a FIFO directory of its own, closed when the test ends.
func setup(t testing.TB, host string, opts ...Option) (*Gateway, string) {
	g, dir, _ := setupOn(t, &Network{Host: host, Listen: "127.0.0.1:0"}, host, opts...)
	return g, dir
}

// setupOn is setup on netw; it also returns the NATS connection.
func setupOn(t testing.TB, netw *Network, host string, opts ...Option) (*Gateway, string, *Connected) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := netw.Connect(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(5 * time.Second) })
	ch, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	g, err := New(ch, conn.Conn, host, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, dir, conn
}

// At its limits a gateway answers "busy" at once, having sent (or
// delivered) nothing: the sender gets ErrUnreachable, saying so.
func TestBusy(t *testing.T) {
	const host = "gw-busy-host"
	for _, c := range []struct {
		name string
		opts []Option
	}{
		{"outbound", []Option{WithMaxInflight(1)}},
		{"inbound", []Option{WithMaxInflight(2), WithMaxInbound(1)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, dir := setup(t, host, c.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			held, release := make(chan struct{}), make(chan struct{})
			served := make(chan error, 1)
			go func() {
				msg, err := srv.Receive(ctx)
				if err == nil {
					close(held)
					<-release
					err = msg.Reply([]byte("done"))
				}
				served <- err
			}()
			conn := locateIn(t, ctx, dir, host+":SRV")
			first := make(chan error, 1)
			go func() {
				_, err := conn.Send(ctx, []byte("hold"), make([]byte, 16))
				first <- err
			}()
			select {
			case <-held:
			case err := <-first:
				t.Fatalf("the first Send ended before the receiver held it: %v", err)
			}
			_, err = conn.Send(ctx, []byte("more"), make([]byte, 16))
			if !errors.Is(err, simpl.ErrUnreachable) || !strings.Contains(err.Error(), "in flight, its limit, and sent nothing") {
				t.Errorf("a Send beyond the %s limit: %v, want busy (ErrUnreachable)", c.name, err)
			}
			close(release)
			if err := <-first; err != nil {
				t.Errorf("the first Send: %v", err)
			}
			if err := <-served; err != nil {
				t.Error(err)
			}
			if b := g.Stats().Busy; b != 1 {
				t.Errorf("Stats().Busy = %d, want 1", b)
			}
		})
	}
}

// locateIn locates name from an anonymous Channel in the FIFO directory
// dir; both close when the test ends.
func locateIn(t testing.TB, ctx context.Context, dir, name string) *simpl.Conn {
	t.Helper()
	cli, err := simpl.Attach("", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	c, err := cli.Locate(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
