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
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
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
// names gosimpl and C SIMPL keep for themselves (the gateway's and its
// surrogates', _gosimpl*; the protocol router's, _simpl*; and C SIMPL's
// surrogates', spec 2.2: _tcp_Surrogate_R, _tcp_Surrogate_r_<pid>,
// _tcp_Surrogate_s_<pid>; any _*_Surrogate* name),
// which would carry its requests on as theirs, to other hosts.
func checkName(name string) error {
	if err := naming.CheckLocal(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "_gosimpl") || strings.HasPrefix(name, "_simpl") || isCSurrogate(name) {
		return fmt.Errorf("%q: a name gosimpl or C SIMPL keeps for itself", name)
	}
	return nil
}

// isCSurrogate tells whether name is one of C SIMPL's surrogates' (its
// surrogateTcp's are _tcp_Surrogate_*: "_" + protocol + "_Surrogate").
func isCSurrogate(name string) bool {
	return strings.HasPrefix(name, "_") && strings.Contains(name, "_Surrogate")
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

// errLinkEnded is the cause of a Send cancelled because its link ended
// while the Send was held: the peer hung up, fell silent, said CLOSE, or
// broke the protocol.
var errLinkEnded = errors.New("the link ended while the SEND was held")

// event is what a link's reader hands serve: a frame other than ALIVE
// (which it answers itself), or the error that ended the link. A SEND
// comes with the context its Send must use: the reader cancels it if
// the link ends while the Send is held.
type event struct {
	f      *surwire.Frame
	err    error
	sctx   context.Context
	cancel context.CancelCauseFunc
}

// held is the Send a link's reader may have to cancel.
type held struct {
	mu     sync.Mutex
	cancel context.CancelCauseFunc // of the Send in progress; nil between
}

// take returns the Send in progress, if any, and forgets it.
func (h *held) take() context.CancelCauseFunc {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.cancel
	h.cancel = nil
	return c
}

func (h *held) set(c context.CancelCauseFunc) {
	h.mu.Lock()
	h.cancel = c
	h.mu.Unlock()
}

// read reads c's frames after the locate until the link ends, also while
// a Send is held (spec 4.3: ALIVE and ALIVE_REPLY interleave with a
// pending SEND): it answers each ALIVE itself, and hands serve the other
// frames, or the error that ended the link, as events. The peer sends
// ALIVE every keep-alive period; after missesAllowed periods more
// without one, it is gone (as C SIMPL's surrogate_s; a SEND does not
// count, as there), Send held or not. A link that ends while a Send is
// held (EOF, that silence, CLOSE, or a SEND or PROXY before the reply,
// which the protocol does not allow) cancels the Send and ends there.
func (s *Server) read(c net.Conn, write func(*surwire.Frame, bool) error, h *held, events chan<- event, quit <-chan struct{}) {
	lastAlive := time.Now()
	window := time.Duration(missesAllowed+1) * s.o.KeepAlive
	for {
		c.SetReadDeadline(lastAlive.Add(window))
		f, err := surwire.ReadFrame(c, s.o.Encoding, false, s.o.MaxMessage)
		if err == nil && f.Token == surwire.TokenAlive {
			lastAlive = time.Now()
			if err = write(&surwire.Frame{Token: surwire.TokenAliveReply}, false); err == nil {
				continue
			}
		}
		if cancel := h.take(); cancel != nil {
			switch {
			case err != nil:
				if !errors.Is(err, net.ErrClosed) {
					s.log("%s: %v", c.RemoteAddr(), err)
				}
				if errors.Is(err, surwire.ErrBadFrame) || errors.Is(err, surwire.ErrTooLarge) {
					s.stats.bad.Add(1)
				}
			case f.Token != surwire.TokenClose:
				s.stats.bad.Add(1)
				s.log("%s: token %d while its SEND is held", c.RemoteAddr(), f.Token)
			}
			cancel(errLinkEnded)
			return
		}
		ev := event{f: f, err: err}
		if err == nil && f.Token == surwire.TokenSend {
			// Set before serve has it, so that the link ending at once
			// cancels it too.
			ev.sctx, ev.cancel = context.WithCancelCause(s.ctx)
			h.set(ev.cancel)
		}
		select {
		case events <- ev:
		case <-quit:
			if ev.cancel != nil {
				ev.cancel(nil)
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// serve is one connection: a NAME_LOCATE, then SENDs, PROXYs and ALIVEs
// until CLOSE, a failure, or the peer's silence.
func (s *Server) serve(c net.Conn) {
	enc := s.o.Encoding
	var wmu sync.Mutex // the reader answers ALIVEs while serve writes
	write := func(f *surwire.Frame, reply bool) error {
		b, err := surwire.AppendFrame(nil, enc, f, reply)
		if err == nil {
			wmu.Lock()
			c.SetWriteDeadline(time.Now().Add(s.o.KeepAlive))
			_, err = c.Write(b)
			wmu.Unlock()
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
	lctx, lcancel := context.WithTimeout(s.ctx, locateWait)
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
	var h held
	events := make(chan event)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read(c, write, &h, events, quit)
	}()
	defer func() {
		close(quit)
		c.Close() // the reader's read returns
		<-readerDone
	}()
	name := f.RProgram
	for {
		ev := <-events
		if ev.err != nil {
			if !errors.Is(ev.err, net.ErrClosed) {
				s.log("%s: %v", c.RemoteAddr(), ev.err)
			}
			if errors.Is(ev.err, surwire.ErrBadFrame) || errors.Is(ev.err, surwire.ErrTooLarge) {
				s.stats.bad.Add(1)
			}
			return
		}
		switch f := ev.f; f.Token {
		case surwire.TokenSend:
			s.stats.sends.Add(1)
			reply := make([]byte, min(int(f.YBytes), s.o.MaxMessage))
			// No deadline of the sender's travels in this protocol: the
			// Send lasts while the receiver and the link live. The
			// reader answers the peer's ALIVEs meanwhile, and cancels
			// the Send if the link ends (the peer hangs up or falls
			// silent), so that a receiver that holds the request does
			// not hold this connection for ever.
			n, err := conn.Send(ev.sctx, f.Data, reply)
			h.take()
			ended := errors.Is(context.Cause(ev.sctx), errLinkEnded)
			ev.cancel(nil)
			if err != nil {
				s.stats.failed.Add(1)
				s.log("%s: send to %s: %v", c.RemoteAddr(), name, err)
				if !ended {
					write(&surwire.Frame{Token: surwire.TokenError}, false)
				}
				return // as C SIMPL's surrogate_s: it exits
			}
			if ended || write(&surwire.Frame{Token: surwire.TokenReply, Data: reply[:n]}, false) != nil {
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
