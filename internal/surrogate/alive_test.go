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

// peer plays a C SIMPL surrogate_r on one connection to a Server: each
// frame the Server writes is read into frames, so that the test can
// send its own while it waits.
type peer struct {
	t      *testing.T
	c      net.Conn
	frames chan *surwire.Frame // closed at the connection's end
}

// locateAt connects to s and locates name there, as surrogate_r does.
func locateAt(t *testing.T, s *Server, name string) *peer {
	t.Helper()
	c := dialServer(t, s)
	p := &peer{t: t, c: c, frames: make(chan *surwire.Frame, 64)}
	p.write(&surwire.Frame{Token: surwire.TokenNameLocate, RProgram: name, SHost: "c"}, false)
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<10)
	if err != nil || f.Result != 0 {
		t.Fatalf("locate %s: %+v, %v", name, f, err)
	}
	c.SetReadDeadline(time.Time{})
	go func() {
		defer close(p.frames)
		for {
			f, err := surwire.ReadFrame(c, surwire.Char, false, 1<<20)
			if err != nil {
				return
			}
			p.frames <- f
		}
	}()
	return p
}

// dialServer connects to s, closed when the test ends.
func dialServer(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (p *peer) write(f *surwire.Frame, reply bool) {
	p.t.Helper()
	b, err := surwire.AppendFrame(nil, surwire.Char, f, reply)
	if err == nil {
		_, err = p.c.Write(b)
	}
	if err != nil {
		p.t.Fatalf("writing token %d: %v", f.Token, err)
	}
}

// next is the next frame the Server writes, within 10 s; nil if the
// connection ended first.
func (p *peer) next() *surwire.Frame {
	p.t.Helper()
	select {
	case f := <-p.frames:
		return f
	case <-time.After(10 * time.Second):
		p.t.Fatal("no frame from the server within 10s")
		return nil
	}
}

// ended reports whether the Server closed the connection within d.
func (p *peer) ended(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case _, ok := <-p.frames:
			if !ok {
				return true
			}
		case <-t.C:
			return false
		}
	}
}

// holder attaches name in ch's directory and hands the test each
// request it receives, unanswered.
func holder(t *testing.T, ch *simpl.Channel, name string) <-chan simpl.Message {
	t.Helper()
	srv, err := simpl.Attach(name, simpl.WithDir(ch.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	msgs := make(chan simpl.Message, 4)
	go func() {
		for {
			m, err := srv.Receive(context.Background())
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	return msgs
}

func received(t *testing.T, msgs <-chan simpl.Message) simpl.Message {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got nothing within 10s")
		return simpl.Message{}
	}
}

// While the receiver holds a SEND, the Server answers the peer's ALIVEs
// (spec 4.3: they interleave with a pending SEND), as C SIMPL's
// surrogate_r needs to keep the link: it gives up after four unanswered.
// After a Send held over four keep-alive periods the link goes on, its
// silence counted from the ALIVEs of the Send's time. Before, the Server
// read nothing while the Send was held (no ALIVE_REPLY until the REPLY),
// and then found its read deadline, counted from the locate, past: it
// closed the link with the ALIVEs unread.
func TestAliveWhileSendHeld(t *testing.T) {
	const period = 100 * time.Millisecond
	s, ch := serve(t, Options{KeepAlive: period})
	msgs := holder(t, ch, "SRV")
	p := locateAt(t, s, "SRV")
	p.write(&surwire.Frame{Token: surwire.TokenSend, Data: []byte("held"), YBytes: 16}, false)
	m := received(t, msgs)
	// Six periods of ALIVEs, each answered while the Send is held.
	for i := range 6 {
		time.Sleep(period) // the peer's keep-alive period
		p.write(&surwire.Frame{Token: surwire.TokenAlive}, false)
		if f := p.next(); f == nil || f.Token != surwire.TokenAliveReply {
			t.Fatalf("ALIVE %d while the SEND is held: got %+v, want ALIVE_REPLY", i+1, f)
		}
	}
	if err := m.Reply([]byte("late")); err != nil {
		t.Fatalf("Reply after six periods: %v", err)
	}
	if f := p.next(); f == nil || f.Token != surwire.TokenReply || string(f.Data) != "late" {
		t.Fatalf("after the Send: %+v, want REPLY late", f)
	}
	// The link goes on: the next SEND is served.
	p.write(&surwire.Frame{Token: surwire.TokenSend, Data: []byte("next"), YBytes: 16}, false)
	if err := received(t, msgs).Reply([]byte("ok")); err != nil {
		t.Fatalf("Reply to the next SEND: %v", err)
	}
	if f := p.next(); f == nil || f.Token != surwire.TokenReply || string(f.Data) != "ok" {
		t.Fatalf("the next SEND: %+v, want REPLY ok", f)
	}
	if st := s.Stats(); st.Sends != 2 || st.Failed != 0 || st.Bad != 0 {
		t.Errorf("stats %+v, want 2 Sends, none failed or bad", st)
	}
}

// A peer silent for four keep-alive periods while its SEND is held is
// gone, as between SENDs: the link closes and the Send ends, so that the
// receiver's late answer finds its sender gone. Before, nothing bounded
// a held Send but the peer's hanging up.
func TestSilentWhileSendHeld(t *testing.T) {
	const period = 50 * time.Millisecond
	s, ch := serve(t, Options{KeepAlive: period})
	msgs := holder(t, ch, "SRV")
	p := locateAt(t, s, "SRV")
	p.write(&surwire.Frame{Token: surwire.TokenSend, Data: []byte("held"), YBytes: 16}, false)
	m := received(t, msgs)
	if !p.ended(10 * time.Second) {
		t.Fatal("a peer silent while its SEND is held was not dropped within 10s")
	}
	if err := m.Reply([]byte("late")); !errors.Is(err, simpl.ErrPeerGone) {
		t.Errorf("Reply to the request of a peer gone silent: %v, want ErrPeerGone", err)
	}
	if st := s.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v, want the Send failed", st)
	}
}

// A SEND or PROXY while a SEND is held breaks the protocol (one SEND
// outstanding a connection, and nothing but ALIVE before its answer):
// the link closes, counted bad, and the held Send ends. Before, the
// Server read nothing while a Send was held and took the frame as the
// next request once it was answered.
func TestFrameWhileSendHeld(t *testing.T) {
	for _, f := range []*surwire.Frame{
		{Token: surwire.TokenSend, Data: []byte("second"), YBytes: 16},
		{Token: surwire.TokenProxy, Proxy: 5},
	} {
		s, ch := serve(t, Options{KeepAlive: time.Minute})
		msgs := holder(t, ch, "SRV")
		p := locateAt(t, s, "SRV")
		p.write(&surwire.Frame{Token: surwire.TokenSend, Data: []byte("held"), YBytes: 16}, false)
		m := received(t, msgs)
		p.write(f, false)
		if !p.ended(10 * time.Second) {
			t.Fatalf("token %d while a SEND is held: the link was not closed within 10s", f.Token)
		}
		if err := m.Reply([]byte("late")); !errors.Is(err, simpl.ErrPeerGone) {
			t.Errorf("token %d while a SEND is held: Reply %v, want ErrPeerGone", f.Token, err)
		}
		if st := s.Stats(); st.Bad != 1 || st.Failed != 1 || st.Proxies != 0 {
			t.Errorf("token %d while a SEND is held: stats %+v, want 1 bad, the Send failed, no proxy", f.Token, st)
		}
	}
}

// A gosimpl Client to a gosimpl Server: a request the receiver holds for
// six keep-alive periods gets its reply. Before, the Server answered none
// of the Client's ALIVEs while it held the Send, and the Client gave up
// after four periods, outcome unknown.
func TestClientHeldRequest(t *testing.T) {
	const period = 50 * time.Millisecond
	s, ch := serve(t, Options{KeepAlive: period})
	msgs := holder(t, ch, "SRV")
	cl := NewClient(ClientOptions{KeepAlive: period})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		select {
		case m := <-msgs:
			time.Sleep(6 * period) // a receiver holding its sender
			m.Reply([]byte("late"))
		case <-ctx.Done():
		}
	}()
	reply := make([]byte, 16)
	n, err := cl.Send(ctx, s.Addr().String(), "SRV", []byte("hi"), reply)
	if err != nil || string(reply[:n]) != "late" {
		t.Fatalf("a request held six keep-alive periods: %q, %v", reply[:n], err)
	}
}
