package surrogate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/simpl"
)

// echo attaches name in ch's directory and answers every request with
// "ok" until the test ends.
func echo(t *testing.T, ch *simpl.Channel, name string) {
	t.Helper()
	srv, err := simpl.Attach(name, simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		for {
			m, err := srv.Receive(context.Background())
			if err != nil {
				return
			}
			m.Reply([]byte("ok"))
		}
	}()
}

// The Client sends ALIVE every keep-alive period on a connection from its
// connect, busy or unused (spec 4.4: the peer counts periods without an
// ALIVE from the connect, SENDs or not, and drops the link after four,
// as a Server does). A connection kept busy with quick Sends for ten
// periods, then unused for six, is the one connection all along: never
// dropped, nothing failed. Before, the Client sent ALIVE only during a
// Send that lasted a period: the Server dropped the busy connection
// after four periods (a Send racing that failed, outcome unknown) and
// the unused one too.
func TestClientAliveOnEveryLink(t *testing.T) {
	const period = 50 * time.Millisecond
	s, ch := serve(t, Options{KeepAlive: period})
	echo(t, ch, "SRV")
	cl := NewClient(ClientOptions{KeepAlive: period, Idle: time.Minute})
	defer cl.Close()
	send := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reply := make([]byte, 16)
		if n, err := cl.Send(ctx, s.Addr().String(), "SRV", []byte("x"), reply); err != nil || string(reply[:n]) != "ok" {
			t.Fatalf("Send: %q, %v; client %+v, server %+v", reply[:n], err, cl.Stats(), s.Stats())
		}
	}
	for t0 := time.Now(); time.Since(t0) < 10*period; {
		send()
	}
	time.Sleep(6 * period) // the connection unused
	send()
	if st := cl.Stats(); st.Dials != 1 || st.Failed != 0 || st.Unknown != 0 {
		t.Errorf("client stats %+v, want one connection all along, nothing failed", st)
	}
}

// stalled listens for one connection, answers its NAME_LOCATE (unless
// mute) and then reads nothing more, until the test ends.
func stalled(t *testing.T, mute bool) (addr string, located <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	got := make(chan struct{})
	finished := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		<-finished
	})
	go func() {
		defer close(finished)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := surwire.ReadFrame(c, surwire.Char, false, 1<<10); err != nil {
			return
		}
		close(got)
		if !mute {
			b, _ := surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenNameLocate, Result: 0}, true)
			c.Write(b)
		}
		<-done
	}()
	return ln.Addr().String(), got
}

// The Send's context bounds all of it: the request written to a peer that
// reads nothing (with a keep-alive period far longer), and the CLOSE
// after it, on its deadline and on its cancellation; the locate of a
// peer that never answers, on its cancellation. Before, the request's
// write waited a keep-alive period whatever the context, then up to a
// second more for the CLOSE, and the locate waited its own 10 s.
func TestClientContextBounds(t *testing.T) {
	const bound = 5 * time.Second // generous: each promise is at once
	const size = 64 << 20         // more than the sockets' buffers take
	for _, how := range []string{"deadline", "cancel"} {
		addr, _ := stalled(t, false)
		cl := NewClient(ClientOptions{KeepAlive: time.Minute, MaxMessage: size})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if how == "deadline" {
			ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
		} else {
			time.AfterFunc(200*time.Millisecond, cancel)
		}
		t0 := time.Now()
		_, err := cl.Send(ctx, addr, "SRV", make([]byte, size), make([]byte, 16))
		took := time.Since(t0)
		cancel()
		cl.Close()
		want := map[string]error{"deadline": context.DeadlineExceeded, "cancel": context.Canceled}[how]
		if !errors.Is(err, want) || took > bound {
			t.Errorf("a request the peer does not read, on the context's %s: %v after %v, want %v within %v", how, err, took, want, bound)
		}
	}

	addr, located := stalled(t, true)
	cl := NewClient(ClientOptions{KeepAlive: time.Minute})
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-located:
			cancel()
		case <-ctx.Done():
		}
	}()
	t0 := time.Now()
	_, err := cl.Send(ctx, addr, "SRV", []byte("x"), make([]byte, 16))
	if took := time.Since(t0); !errors.Is(err, context.Canceled) || took > bound {
		t.Errorf("a locate never answered, cancelled: %v after %v, want context.Canceled within %v", err, took, bound)
	}
}
