package surrogate

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/internal/testmain"
	"github.com/gosimpl/gosimpl/simpl"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// serve runs a Server for a Channel of its own FIFO directory, closed
// when the test ends.
func serve(t *testing.T, o Options) (*Server, *simpl.Channel) {
	t.Helper()
	ch, err := simpl.Attach("GW", simpl.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(ch, ln, o)
	t.Cleanup(func() { s.Close() })
	return s, ch
}

// closedWithin reports whether c is closed by the other side within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// Connections beyond the limits are closed at once, counted; those
// within them stay.
func TestLimits(t *testing.T) {
	s, _ := serve(t, Options{PerPeer: 2, Total: 3})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	if !closedWithin(held[2], 5*time.Second) {
		t.Error("a third connection from one address (the limit 2) was not closed")
	}
	for i, c := range held[:2] {
		if closedWithin(c, 100*time.Millisecond) {
			t.Errorf("connection %d, within the limit, was closed", i)
		}
	}
	if st := s.Stats(); st.Refused != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v, want 2 accepted and 1 refused", st)
	}
}

// A located connection whose peer sends no ALIVE for four keep-alive
// periods is dropped; one that does stays.
func TestKeepAlive(t *testing.T) {
	const period = 100 * time.Millisecond
	s, ch := serve(t, Options{KeepAlive: period})
	srv, err := simpl.Attach("SRV", simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	locate := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenNameLocate, RProgram: "SRV", SHost: "c"}, false)
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<10); err != nil || f.Result != 0 {
			t.Fatalf("locate: %+v, %v", f, err)
		}
		return c
	}
	silent, alive := locate(), locate()
	defer silent.Close()
	defer alive.Close()
	t0 := time.Now()
	ping, _ := surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenAlive}, false)
	for time.Since(t0) < 8*period {
		alive.Write(ping)
		alive.SetReadDeadline(time.Now().Add(5 * time.Second))
		if f, err := surwire.ReadFrame(alive, surwire.Char, false, 1<<10); err != nil || f.Token != surwire.TokenAliveReply {
			t.Fatalf("ALIVE: %+v, %v", f, err)
		}
		time.Sleep(period) // the peer's keep-alive period
	}
	if !closedWithin(silent, 5*time.Second) {
		t.Error("a silent peer was not dropped")
	}
	if closedWithin(alive, 10*time.Millisecond) {
		t.Error("a peer sending ALIVE was dropped")
	}
}

// A peer that hangs up while its SEND is held by the local receiver ends
// that Send: the receiver's answer then finds the sender gone, and the
// connection's goroutine and slot go with it, rather than lasting while
// the receiver holds the request.
func TestPeerGoneDuringSend(t *testing.T) {
	s, ch := serve(t, Options{KeepAlive: time.Minute})
	srv, err := simpl.Attach("SRV", simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenNameLocate, RProgram: "SRV", SHost: "c"}, false)
	c.Write(b)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<10); err != nil || f.Result != 0 {
		t.Fatalf("locate: %+v, %v", f, err)
	}
	b, _ = surwire.AppendFrame(nil, surwire.Char, &surwire.Frame{Token: surwire.TokenSend, Data: []byte("held"), YBytes: 16}, false)
	c.Write(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := srv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the peer hangs up while its SEND is held
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the Send of a peer that hung up still held after 5s")
		}
		time.Sleep(10 * time.Millisecond) // polling the server's counters
	}
	if err := m.Reply([]byte("late")); !errors.Is(err, simpl.ErrPeerGone) {
		t.Errorf("Reply to a request whose peer hung up: %v, want ErrPeerGone", err)
	}
}
