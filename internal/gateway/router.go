package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// C SIMPL programs (issue 13 item 4). An unmodified C SIMPL program
// locates "host:NAME" by asking its protocol router (the local name
// _simplProtoRouter) for a surrogate of the protocol, then asking that
// surrogate to locate NAME on host; its Sends and Triggers then go to the
// surrogate, an ordinary local name, which carries them to the other host.
// CSimpl plays that part for this host's gateway:
//
//   - With no C SIMPL router running, it attaches _simplProtoRouter
//     itself and answers SUR_REQUEST_PROTOCOL for _simplDefault (what
//     "host:NAME" asks for), Protocol, and _simplTCP when no surrogateTcp
//     has registered: each request gets a surrogate of its own, a name
//     attached for that one name_locate. Other programs may register
//     protocols with it as with C SIMPL's router (SUR_SURROGATE_READY).
//   - With a C SIMPL router running, it registers with it as Protocol, one
//     idle surrogate at a time, as surrogateTcp does: the router hands the
//     surrogate to a program's name_locate and answers the registration,
//     and CSimpl registers the next.
//
// A surrogate answers one SUR_NAME_LOCATE by locating protocol:host:NAME,
// with the protocol the program asked the router for (host:NAME for
// _simplDefault), through the gateway (the network Locate every gosimpl
// program makes: a _simplTCP name goes to the gateway's bridge to C SIMPL
// hosts, if it has one), then carries the program's Sends, with the
// program's reply size, and its Triggers; a failure anywhere is a
// ReplyError, which the C program's Send sees as -1. It ends on
// PROXY_SHUTDOWN (sur_detach, name_detach), when its program exits, or
// when CSimpl closes.

// Names and protocols.
const (
	// RouterName is C SIMPL's protocol router's name.
	RouterName = "_simplProtoRouter"
	// Protocol is the protocol name the gateway claims as router and
	// registers with C SIMPL's router: a C program writes
	// "_gosimplNATS:host:NAME" to choose the gateway whatever else is
	// registered.
	Protocol = "_gosimplNATS"
	// tcpProtocol is surrogateTcp's; the gateway takes it when no
	// surrogateTcp has registered.
	tcpProtocol = "_simplTCP"
)

// Defaults of the CSimpl options, and fixed times.
const (
	DefaultMaxSurrogates = 256                    // surrogates attached at once
	DefaultLocateWait    = 10 * time.Second       // a surrogate handed out waits this long for its SUR_NAME_LOCATE
	locateTimeout        = 10 * time.Second       // a surrogate's Locate of the remote name
	roleRetry            = time.Second            // between attempts to attach or register, after a failure
	senderCheck          = 500 * time.Millisecond // how often a surrogate checks that its program runs
)

// CSimplOption configures NewCSimpl. One that cannot apply fails it.
type CSimplOption func(*cOptions) error

type cOptions struct {
	perm          os.FileMode
	maxSurrogates int
	locateWait    time.Duration
	log           func(string)
}

// WithCPerm sets the mode of the router's and the surrogates' FIFOs
// (default 0666, C SIMPL's own, so every local user's programs can use
// them).
func WithCPerm(mode os.FileMode) CSimplOption {
	return func(o *cOptions) error {
		if mode&^os.ModePerm != 0 {
			return fmt.Errorf("gateway: C SIMPL mode %v: only permission bits", mode)
		}
		if mode&0o600 != 0o600 {
			return fmt.Errorf("gateway: C SIMPL mode %v: the owner needs read and write (0600)", mode)
		}
		o.perm = mode
		return nil
	}
}

// WithMaxSurrogates bounds the surrogates attached at once (default 256):
// one per remote name a C program has located and not yet let go. A
// program's name_locate beyond it fails.
func WithMaxSurrogates(n int) CSimplOption {
	return func(o *cOptions) error {
		if n < 1 {
			return fmt.Errorf("gateway: most surrogates %d: must be 1 or more", n)
		}
		o.maxSurrogates = n
		return nil
	}
}

// WithLocateWait sets how long a surrogate handed to a program waits for
// the program's SUR_NAME_LOCATE (default 10 s) before it detaches.
func WithLocateWait(d time.Duration) CSimplOption {
	return func(o *cOptions) error {
		if d <= 0 {
			return fmt.Errorf("gateway: locate wait %v: must be more than 0", d)
		}
		o.locateWait = d
		return nil
	}
}

// WithCLog has CSimpl tell what it does (role changes, each located
// name and why one failed) to log, one line per call.
func WithCLog(log func(string)) CSimplOption {
	return func(o *cOptions) error { o.log = log; return nil }
}

// CStats count what CSimpl saw.
type CStats struct {
	Requests      int64 // SUR_REQUEST_PROTOCOLs answered as the router
	Registrations int64 // times a surrogate registered with C SIMPL's router was handed out
	Located       int64 // SUR_NAME_LOCATEs that found the remote name
	NotFound      int64 // ...that did not (the program's name_locate fails)
	Sends         int64 // Sends carried and replied
	Failed        int64 // Sends carried that failed (the program got -1)
	Triggers      int64 // proxies carried
	Bad           int64 // messages that could not be read: answered ReplyError
	Busy          int64 // surrogates refused for WithMaxSurrogates
}

// CSimpl serves this host's C SIMPL programs' remote names through a
// Gateway. Safe for concurrent use; Close is idempotent.
type CSimpl struct {
	g     *Gateway
	o     cOptions
	limit int // the largest Send carried: the gateway's

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	seq    atomic.Uint64
	role   string // as NewCSimpl found it, for Role

	mu    sync.Mutex
	surs  int // attached
	table [maxProtocols]*registrant

	closeOnce sync.Once
	stats     struct {
		requests, registrations, located, notFound, sends, failed, triggers, bad, busy atomic.Int64
	}
}

// registrant is a protocol another program registered with the router:
// its SUR_SURROGATE_READY, held unanswered until the entry is used.
type registrant struct {
	protocol, program string
	msg               simpl.Message
}

// NewCSimpl starts serving C SIMPL programs through g, in g's FIFO
// directory: as their router if no process holds RouterName, else
// registered with the one that does. If that router goes, CSimpl takes
// the role itself, and the other way round. Close it before g.
func NewCSimpl(g *Gateway, opts ...CSimplOption) (*CSimpl, error) {
	o := cOptions{perm: 0o666, maxSurrogates: DefaultMaxSurrogates, locateWait: DefaultLocateWait}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &CSimpl{g: g, o: o, limit: g.Limit()}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ch, err := c.attachRouter()
	switch {
	case err == nil:
		c.role = "router " + RouterName
	case errors.Is(err, simpl.ErrNameInUse):
		c.role = "registered as " + Protocol + " with the router " + RouterName
	default:
		c.cancel()
		return nil, fmt.Errorf("gateway: C SIMPL's router name: %w", err)
	}
	c.wg.Add(1)
	go c.supervise(ch)
	return c, nil
}

// Role says how CSimpl serves C SIMPL programs as it started: as their
// router, or registered with theirs.
func (c *CSimpl) Role() string { return c.role }

// Stats returns the counts so far.
func (c *CSimpl) Stats() CStats {
	s := &c.stats
	return CStats{
		Requests: s.requests.Load(), Registrations: s.registrations.Load(), Located: s.located.Load(), NotFound: s.notFound.Load(),
		Sends: s.sends.Load(), Failed: s.failed.Load(), Triggers: s.triggers.Load(), Bad: s.bad.Load(), Busy: s.busy.Load(),
	}
}

// Close detaches the router and every surrogate: Sends in progress fail
// for their C programs, and registrants held by the router get a
// ReplyError. A nil CSimpl's Close does nothing.
func (c *CSimpl) Close() error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		c.cancel()
		c.wg.Wait()
	})
	return nil
}

func (c *CSimpl) logf(format string, args ...any) {
	if c.o.log != nil {
		c.o.log(fmt.Sprintf(format, args...))
	}
}

func (c *CSimpl) attachRouter() (*simpl.Channel, error) {
	return simpl.Attach(RouterName, simpl.WithDir(c.g.ch.Dir()), simpl.WithPerm(c.o.perm),
		simpl.WithTransport(simpl.FIFO), simpl.WithMaxMessage(routerMaxMessage))
}

// supervise keeps a role until Close: router on ch when it is not nil,
// else registered with the router that holds the name, and again
// whichever it can when that one goes.
func (c *CSimpl) supervise(ch *simpl.Channel) {
	defer c.wg.Done()
	for {
		var err error
		if ch == nil {
			ch, err = c.attachRouter()
		}
		switch {
		case err == nil:
			c.serveRouter(ch)
			ch.Close()
			c.dropTable()
			ch = nil
		case errors.Is(err, simpl.ErrNameInUse):
			err = c.register()
			if c.ctx.Err() == nil {
				c.logf("C SIMPL's router: %v; trying again", err)
			}
		default:
			c.logf("attaching %s: %v; trying again", RouterName, err)
		}
		t := time.NewTimer(roleRetry)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// serveRouter answers the router's messages until Close.
func (c *CSimpl) serveRouter(ch *simpl.Channel) {
	c.logf("serving C SIMPL programs as their router %s", RouterName)
	for {
		msg, err := ch.Receive(c.ctx)
		if err != nil {
			return
		}
		c.route(msg)
	}
}

// route answers one message to the router.
func (c *CSimpl) route(msg simpl.Message) {
	if msg.Proxy() > 0 {
		return // C SIMPL's router takes none either; nothing is owed
	}
	m, err := parseCMsg(msg.Data())
	if err == nil && m.token == tokNameLocate {
		err = fmt.Errorf("%w: a SUR_NAME_LOCATE to the router", errBadCMessage)
	}
	if err != nil {
		c.bad(msg, err)
		return
	}
	switch m.token {
	case tokRequestProtocol:
		if msg.MaxReply() < programField {
			c.bad(msg, fmt.Errorf("%w: room for a %d-byte reply, the program name takes %d", errBadCMessage, msg.MaxReply(), programField))
			return
		}
		c.stats.requests.Add(1)
		name := c.handOut(m.protocol)
		if name == "" && claims(m.protocol) {
			s, err := c.newSurrogate(m.protocol)
			if err != nil {
				c.logf("%s asked for %s: %v", sender(msg), m.protocol, err)
				msg.ReplyError()
				return
			}
			s.handOut()
			name = s.name
		}
		// An unknown protocol: all NULs, "protocol not in router table".
		msg.Reply(appendField(nil, name, programField))
	case tokSurrogateReady:
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, r := range c.table {
			if r == nil {
				c.table[i] = &registrant{protocol: m.protocol, program: m.program, msg: msg}
				c.logf("%s registered %s as %s", sender(msg), m.program, m.protocol)
				return // held: answered when the entry is used
			}
		}
		// C SIMPL's router would leave the registrant blocked for good.
		c.logf("%s registered %s as %s: the table is full (%d entries)", sender(msg), m.program, m.protocol, maxProtocols)
		msg.ReplyError()
	case tokDumpTable:
		if msg.MaxReply() < dumpTableSize {
			c.bad(msg, fmt.Errorf("%w: room for a %d-byte reply, the table takes %d", errBadCMessage, msg.MaxReply(), dumpTableSize))
			return
		}
		b := make([]byte, 0, dumpTableSize)
		c.mu.Lock()
		for _, r := range c.table {
			var proto, prog string
			if r != nil {
				proto, prog = r.protocol, r.program
			}
			b = appendField(appendField(b, proto, protocolField), prog, programField)
			b = append(b, make([]byte, 8)...)
		}
		c.mu.Unlock()
		msg.Reply(b)
	}
}

// claims tells whether the gateway serves protocol when no registrant
// does: the default ("host:NAME"), its own, and surrogateTcp's, so that
// programs written for "_simplTCP:host:NAME" work when no surrogateTcp
// runs here: the name goes through the gateway as a gosimpl program's
// would, to the host's surrogateTcp if the gateway has a bridge to C
// SIMPL hosts (fcgate's always has), else over NATS.
func claims(protocol string) bool {
	return protocol == naming.DefaultProtocol || protocol == Protocol || protocol == tcpProtocol
}

// handOut uses the first registration of protocol (never for the
// default: as router the gateway serves "host:NAME" itself): it answers
// the registrant, which then registers again, and returns the name of
// its surrogate; "" if there is none. An entry whose registrant is gone
// is dropped.
func (c *CSimpl) handOut(protocol string) string {
	if protocol == naming.DefaultProtocol {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.table {
		if r == nil || r.protocol != protocol {
			continue
		}
		c.table[i] = nil
		if err := r.msg.Reply(nil); err != nil {
			c.logf("registrant of %s (%s) is gone: %v", r.protocol, r.program, err)
			continue
		}
		return r.program
	}
	return ""
}

// dropTable answers every held registration with a ReplyError, as C
// SIMPL's registrants see their router go.
func (c *CSimpl) dropTable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.table {
		if r != nil {
			r.msg.ReplyError()
			c.table[i] = nil
		}
	}
}

func (c *CSimpl) bad(msg simpl.Message, err error) {
	c.stats.bad.Add(1)
	c.logf("%s: %v", sender(msg), err)
	msg.ReplyError()
}

func sender(msg simpl.Message) string {
	name, pid := msg.Sender()
	return fmt.Sprintf("%s (pid %d)", name, pid)
}

// register keeps one idle surrogate registered with the C SIMPL router
// that holds RouterName: it sends SUR_SURROGATE_READY from the surrogate
// and, once the router hands the surrogate out (answering the
// registration), registers the next. It returns when the router fails a
// registration (it is gone, or refuses) or CSimpl closes.
func (c *CSimpl) register() error {
	c.logf("serving C SIMPL programs registered as %s with the router %s", Protocol, RouterName)
	for {
		s, err := c.newSurrogate(Protocol)
		if err != nil {
			return err
		}
		conn, err := s.ch.Locate(c.ctx, RouterName)
		if err == nil {
			_, err = conn.Send(c.ctx, appendSurrogateReady(nil, Protocol, s.name), nil)
			conn.Close()
		}
		if err != nil {
			s.drop()
			return err
		}
		c.stats.registrations.Add(1)
		s.handOut()
	}
}

// surrogate is one name attached for one program's name_locate.
type surrogate struct {
	c        *CSimpl
	ch       *simpl.Channel
	name     string
	protocol string        // what the program asked the router for; its locate keeps it
	handed   chan struct{} // closed when the router gives the name to a program
	ended    chan struct{} // closed by drop
	once     sync.Once
}

// newSurrogate attaches a surrogate for protocol and starts it: it waits
// to be handed out (handOut), then for its SUR_NAME_LOCATE.
func (c *CSimpl) newSurrogate(protocol string) (*surrogate, error) {
	c.mu.Lock()
	if c.surs >= c.o.maxSurrogates {
		c.mu.Unlock()
		c.stats.busy.Add(1)
		return nil, fmt.Errorf("%d surrogates attached, the limit", c.o.maxSurrogates)
	}
	c.surs++
	c.mu.Unlock()
	name := surrogatePrefix(os.Getpid()) + strconv.FormatUint(c.seq.Add(1), 10)
	ch, err := simpl.Attach(name, simpl.WithDir(c.g.ch.Dir()), simpl.WithPerm(c.o.perm),
		simpl.WithTransport(simpl.FIFO, simpl.NET), simpl.WithMaxMessage(c.limit))
	if err != nil {
		c.mu.Lock()
		c.surs--
		c.mu.Unlock()
		return nil, err
	}
	s := &surrogate{c: c, ch: ch, name: name, protocol: protocol, handed: make(chan struct{}), ended: make(chan struct{})}
	c.wg.Add(1)
	go s.run()
	return s, nil
}

func (s *surrogate) handOut() { close(s.handed) }

// drop ends a surrogate never handed out: its run returns, giving back
// its place among the surrogates.
func (s *surrogate) drop() {
	s.once.Do(func() {
		s.ch.Close()
		close(s.ended)
	})
}

// run serves the surrogate's one program, then detaches it.
func (s *surrogate) run() {
	c := s.c
	defer func() {
		s.drop()
		c.mu.Lock()
		c.surs--
		c.mu.Unlock()
		c.wg.Done()
	}()
	select {
	case <-s.handed:
	case <-s.ended: // its registration failed
		return
	case <-c.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.o.locateWait)
	msg, err := s.ch.Receive(ctx)
	cancel()
	if err != nil {
		if c.ctx.Err() == nil && !errors.Is(err, simpl.ErrClosed) {
			c.logf("%s: no SUR_NAME_LOCATE within %v", s.name, c.o.locateWait)
		}
		return
	}
	if msg.Proxy() > 0 {
		return // sur_detach before anything was located
	}
	m, err := parseCMsg(msg.Data())
	if err == nil && m.token != tokNameLocate {
		err = fmt.Errorf("%w: token %d to a surrogate before its SUR_NAME_LOCATE", errBadCMessage, m.token)
	}
	if err == nil && msg.MaxReply() < nameLocateReplySize {
		err = fmt.Errorf("%w: room for a %d-byte reply to SUR_NAME_LOCATE, which takes %d", errBadCMessage, msg.MaxReply(), nameLocateReplySize)
	}
	if err != nil {
		c.bad(msg, err)
		return
	}
	// The protocol the program asked for goes with the name, as a
	// gosimpl program's "protocol:host:NAME" does: _simplTCP goes to the
	// gateway's bridge to C SIMPL hosts, if it has one.
	target := naming.Name{Protocol: s.protocol, Host: m.host, Name: m.name}
	if target.Protocol == naming.DefaultProtocol {
		target.Protocol = ""
	}
	lctx, lcancel := context.WithTimeout(c.ctx, locateTimeout)
	conn, err := s.ch.Locate(lctx, target.String())
	lcancel()
	if err != nil {
		c.stats.notFound.Add(1)
		c.logf("%s located %s: %v", sender(msg), target, err)
		msg.Reply(nameLocateReply(&m, locateFailed))
		return
	}
	defer conn.Close()
	_, pid := msg.Sender()
	if err := msg.Reply(nameLocateReply(&m, 0)); err != nil {
		return // the program is gone already
	}
	c.stats.located.Add(1)
	c.logf("%s located %s through %s", sender(msg), target, s.name)
	s.serve(conn, pid)
}

// serve carries the program's Sends and Triggers to conn until the
// program lets go of the surrogate (PROXY_SHUTDOWN), exits, or CSimpl
// closes.
func (s *surrogate) serve(conn *simpl.Conn, pid int) {
	c := s.c
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(senderCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !naming.Alive(pid, time.Time{}) {
					cancel() // its Send in progress, if any, is nobody's
					return
				}
			}
		}
	}()
	defer func() { cancel(); <-watched }()
	for {
		msg, err := s.ch.Receive(ctx)
		if err != nil {
			return
		}
		if p := msg.Proxy(); p > 0 {
			if p == simpl.ProxyShutdown {
				return
			}
			if err := conn.Trigger(p); err != nil {
				c.logf("%s: proxy %d to %s: %v", s.name, p, conn.Name(), err)
				continue
			}
			c.stats.triggers.Add(1)
			continue
		}
		// The reply goes straight into the program's own buffer (its
		// System V segment), as large as it said it takes.
		n, err := conn.Send(ctx, msg.Data(), msg.ReplyBuffer())
		if err == nil {
			err = msg.ReplyInPlace(n)
		} else {
			msg.ReplyError()
		}
		if err != nil {
			c.stats.failed.Add(1)
			c.logf("%s: Send to %s: %v", s.name, conn.Name(), strings.TrimPrefix(err.Error(), "simpl: "))
			continue
		}
		c.stats.sends.Add(1)
	}
}

// surrogatePrefix begins the names of the surrogates process pid attaches.
func surrogatePrefix(pid int) string { return "_gosimpl_s" + strconv.Itoa(pid) + "_" }
