// Package surrogate is the listening side of the bridge to C SIMPL
// hosts (issue 14): it plays C SIMPL's surrogate_S/surrogate_s for
// senders on C SIMPL hosts, whose own surrogates (surrogateTcp) connect
// to it to reach a receiver on this host, with no change on their side.
// The frames are internal/surwire's. The protocol has no authentication:
// a Server takes connections only from the addresses it is told, and
// trusts nothing it reads.
package surrogate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// Defaults of a Server's Options.
const (
	DefaultMaxMessage = 1 << 20          // largest SEND or reply, bytes
	DefaultKeepAlive  = 10 * time.Second // C SIMPL's -k
	DefaultPerPeer    = 8                // connections from one address at once
	DefaultTotal      = 64               // connections at once
	locateWait        = 10 * time.Second // for a new connection's NAME_LOCATE
	missesAllowed     = 3                // keep-alive periods without ALIVE, as C SIMPL's surrogate_s
)

// Options configure a Server.
type Options struct {
	Encoding   surwire.Encoding
	MaxMessage int            // 0: DefaultMaxMessage
	KeepAlive  time.Duration  // the peers' -k; 0: DefaultKeepAlive
	PerPeer    int            // 0: DefaultPerPeer
	Total      int            // 0: DefaultTotal
	Allow      []netip.Prefix // peers allowed besides loopback ones
	Log        func(string)   // a line per refusal or failure; nil: none
	// Admit, if set, decides whether the peer at addr may reach the
	// local name (a name Serve takes at all: see checkName); an error
	// refuses the NAME_LOCATE, as a name not found. fcgate checks its
	// policy file here.
	Admit func(addr netip.Addr, name string) error
}

// checkName refuses a NAME_LOCATE of a name that is not a plain local
// one: a peer reaches this host's receivers, never through the Channel's
// own transports to other hosts (host:NAME, _simplTCP:...) nor to the
// names gosimpl and C SIMPL keep for themselves (the gateway's, the
// protocol router's), which would carry its requests on as theirs.
func checkName(name string) error {
	if err := naming.CheckLocal(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "_gosimpl") || strings.HasPrefix(name, "_simpl") {
		return fmt.Errorf("%q: a name gosimpl or C SIMPL keeps for itself", name)
	}
	return nil
}

// Stats count what a Server saw.
type Stats struct {
	Accepted, Refused, Located, NotFound, Sends, Failed, Proxies, Bad int64
	Denied                                                            int64 // NAME_LOCATEs of names refused (checkName, Options.Admit)
}

// Server serves C SIMPL surrogates' connections. Safe for concurrent
// use; Close is idempotent and ends every connection.
type Server struct {
	ch *simpl.Channel
	o  Options
	ln net.Listener

	mu     sync.Mutex
	ctx    context.Context // ends with Close: Sends in progress end with it
	stop   context.CancelFunc
	conns  map[net.Conn]struct{}
	peers  map[netip.Addr]int
	closed bool
	wg     sync.WaitGroup

	stats struct{ accepted, refused, located, notFound, sends, failed, proxies, bad, denied atomic.Int64 }
}

// Serve takes connections on ln for the receivers ch can locate, until
// Close. It returns at once; ln is the Server's from then on.
func Serve(ch *simpl.Channel, ln net.Listener, o Options) *Server {
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.PerPeer <= 0 {
		o.PerPeer = DefaultPerPeer
	}
	if o.Total <= 0 {
		o.Total = DefaultTotal
	}
	s := &Server{ch: ch, o: o, ln: ln, conns: map[net.Conn]struct{}{}, peers: map[netip.Addr]int{}}
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr is where the Server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	t := &s.stats
	return Stats{t.accepted.Load(), t.refused.Load(), t.located.Load(), t.notFound.Load(), t.sends.Load(), t.failed.Load(), t.proxies.Load(), t.bad.Load(), t.denied.Load()}
}

func (s *Server) log(format string, args ...any) {
	if s.o.Log != nil {
		s.o.Log(fmt.Sprintf(format, args...))
	}
}

// peerAddr is the address c's peer connects from.
func peerAddr(c net.Conn) netip.Addr {
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// allowed reports whether a peer at addr may connect.
func (s *Server) allowed(addr netip.Addr) bool {
	if addr.IsLoopback() {
		return true
	}
	for _, p := range s.o.Allow {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log("accept: %v", err)
			time.Sleep(10 * time.Millisecond) // a descriptor shortage: try again soon, not in a hot loop
			continue
		}
		peer := peerAddr(c)
		s.mu.Lock()
		why := ""
		switch {
		case s.closed:
			why = "closing"
		case !s.allowed(peer):
			why = "not an allowed address"
		case len(s.conns) >= s.o.Total:
			why = fmt.Sprintf("%d connections, the limit", s.o.Total)
		case s.peers[peer] >= s.o.PerPeer:
			why = fmt.Sprintf("%d connections from it, the limit", s.o.PerPeer)
		}
		if why != "" {
			s.mu.Unlock()
			s.stats.refused.Add(1)
			s.log("refused %s: %s", c.RemoteAddr(), why)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.peers[peer]++
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.accepted.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			if s.peers[peer]--; s.peers[peer] == 0 {
				delete(s.peers, peer)
			}
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// peerPoll is how often watchPeer looks at the connection.
const peerPoll = 100 * time.Millisecond

// watchPeer calls gone once c's peer has hung up (closed its side, or the
// connection failed), looking every peerPoll, until stop is called. A
// connection that cannot be looked at is not watched.
func watchPeer(c net.Conn, gone func()) (stop func()) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(peerPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if closed, err := sys.PeerClosed(sc); closed || err != nil {
				gone()
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// serve is one connection: a NAME_LOCATE, then SENDs, PROXYs and ALIVEs
// until CLOSE, a failure, or the peer's silence.
func (s *Server) serve(c net.Conn) {
	enc := s.o.Encoding
	write := func(f *surwire.Frame, reply bool) error {
		b, err := surwire.AppendFrame(nil, enc, f, reply)
		if err == nil {
			c.SetWriteDeadline(time.Now().Add(s.o.KeepAlive))
			_, err = c.Write(b)
		}
		return err
	}
	c.SetReadDeadline(time.Now().Add(locateWait))
	f, err := surwire.ReadFrame(c, enc, false, s.o.MaxMessage)
	if err != nil || f.Token != surwire.TokenNameLocate {
		s.stats.bad.Add(1)
		s.log("%s: want NAME_LOCATE first: %v", c.RemoteAddr(), frameErr(f, err))
		return
	}
	err = checkName(f.RProgram)
	if err == nil && f.RProgram == s.ch.Name() {
		err = fmt.Errorf("%q: the server's own name", f.RProgram)
	}
	if err == nil && s.o.Admit != nil {
		err = s.o.Admit(peerAddr(c), f.RProgram)
	}
	if err != nil {
		s.stats.denied.Add(1)
		s.log("%s (host %s): locate %q refused: %v", c.RemoteAddr(), f.SHost, f.RProgram, err)
		write(&surwire.Frame{Token: surwire.TokenNameLocate, Result: -1}, true)
		return
	}
	ctx := s.ctx
	lctx, lcancel := context.WithTimeout(ctx, locateWait)
	conn, err := s.ch.Locate(lctx, f.RProgram)
	lcancel()
	if err != nil {
		s.stats.notFound.Add(1)
		s.log("%s (host %s): locate %q: %v", c.RemoteAddr(), f.SHost, f.RProgram, err)
		write(&surwire.Frame{Token: surwire.TokenNameLocate, Result: -1}, true)
		return
	}
	defer conn.Close()
	s.stats.located.Add(1)
	if write(&surwire.Frame{Token: surwire.TokenNameLocate, Result: 0}, true) != nil {
		return
	}
	// The peer sends ALIVE every keep-alive period; after missesAllowed
	// periods more without one, it is gone (as C SIMPL's surrogate_s).
	// A SEND does not count: C SIMPL's does not either.
	lastAlive := time.Now()
	window := time.Duration(missesAllowed+1) * s.o.KeepAlive
	for {
		c.SetReadDeadline(lastAlive.Add(window))
		f, err := surwire.ReadFrame(c, enc, false, s.o.MaxMessage)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log("%s: %v", c.RemoteAddr(), err)
			}
			if errors.Is(err, surwire.ErrBadFrame) || errors.Is(err, surwire.ErrTooLarge) {
				s.stats.bad.Add(1)
			}
			return
		}
		switch f.Token {
		case surwire.TokenSend:
			s.stats.sends.Add(1)
			reply := make([]byte, min(int(f.YBytes), s.o.MaxMessage))
			// No deadline of the sender's travels in this protocol: the
			// Send lasts while the receiver and the peer live. The peer's
			// ALIVEs wait meanwhile, unread, as C SIMPL's surrogate_s
			// reads none while it is in Send; but a peer that hangs up
			// ends the Send (watchPeer), so that a receiver that holds
			// the request does not hold this connection for ever.
			sctx, cancel := context.WithCancel(ctx)
			stop := watchPeer(c, cancel)
			n, err := conn.Send(sctx, f.Data, reply)
			stop()
			cancel()
			if err != nil {
				s.stats.failed.Add(1)
				s.log("%s: send to %s: %v", c.RemoteAddr(), f.RProgram, err)
				write(&surwire.Frame{Token: surwire.TokenError}, false)
				return // as C SIMPL's surrogate_s: it exits
			}
			if write(&surwire.Frame{Token: surwire.TokenReply, Data: reply[:n]}, false) != nil {
				return
			}
		case surwire.TokenProxy:
			s.stats.proxies.Add(1)
			if err := conn.Trigger(int(f.Proxy)); err != nil {
				s.stats.failed.Add(1)
				s.log("%s: proxy %d: %v", c.RemoteAddr(), f.Proxy, err)
				write(&surwire.Frame{Token: surwire.TokenError}, false)
				return
			}
		case surwire.TokenAlive:
			lastAlive = time.Now()
			if write(&surwire.Frame{Token: surwire.TokenAliveReply}, false) != nil {
				return
			}
		case surwire.TokenClose:
			return
		default:
			s.stats.bad.Add(1)
			s.log("%s: token %d after the locate", c.RemoteAddr(), f.Token)
			return
		}
	}
}

func frameErr(f *surwire.Frame, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("token %d", f.Token)
}

// Close stops taking connections and ends those open (their Sends in
// progress are cancelled); it waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stop()
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
