package simpl

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/errs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// ProxyShutdown is the proxy value C SIMPL programs use to ask a receiver
// to stop.
const ProxyShutdown = 0x7FFFFFFF

// Option configures Attach. An option that cannot apply makes Attach
// fail with its error.
type Option func(*options) error

type options struct {
	dir        string
	perm       os.FileMode
	maxMsg     int
	transports []string // nil: every registered transport
	noSpin     bool
	threadWait bool // WithThreadWaits(true)
	goWait     bool // WithThreadWaits(false)
	metrics    *observing
	inherit    bool // WithPriorityInheritance
	prioOrder  bool // WithPriorityOrder
}

// The names of the built-in transports, for WithTransport and
// Conn.Transport.
const (
	// FIFO is the C SIMPL 3.x FIFO transport: FIFOs and System V shared
	// memory, spoken by C SIMPL programs and by gosimpl.
	FIFO = "fifo"
	// SHM is the futex-synchronised shared-memory transport between
	// gosimpl processes.
	SHM = "shm"
	// NET reaches names on other hosts ("host:NAME") through this host's
	// gateway (fcgate).
	NET = "net"
)

// WithTransport makes the Channel use only the transports named (FIFO,
// SHM, or another registered one), in their usual order, instead of every
// registered transport: Locate tries only those, and only those receive,
// with the transport that publishes names in the FIFO directory (FIFO).
// So WithTransport(FIFO) makes a Channel behave as a C SIMPL program, and
// WithTransport(SHM) one that sends only through shared memory;
// WithTransport() with no name is the default, every transport, whatever
// GOSIMPL_TRANSPORT says. An unknown name fails Attach. The environment variable GOSIMPL_TRANSPORT
// (a transport's name, or "auto" for all) sets the default for a whole
// program, for tests and debugging.
func WithTransport(names ...string) Option {
	return func(o *options) error {
		if len(names) == 0 {
			o.transports = nil
			return nil
		}
		for _, n := range names {
			if _, ok := transport.Lookup(n); !ok {
				return errs.Errorf("transport %q: %w (have %s)", n, ErrNotSupported, transportNames())
			}
		}
		o.transports = names
		return nil
	}
}

func transportNames() string {
	var names []string
	for _, t := range transport.Registered() {
		names = append(names, t.Name())
	}
	return strings.Join(names, ", ")
}

// WithSpin(false) makes every wait sleep at once instead of spinning for
// a few microseconds first (shared-memory transport only): for single-core
// and battery-powered machines, at the cost of a futex wake-up per hand-off.
// Spinning is on by default where there is more than one CPU.
func WithSpin(on bool) Option { return func(o *options) error { o.noSpin = !on; return nil } }

// WithThreadWaits says where FIFO waits happen. By default a Receive
// reads the receive FIFO itself and waits for it in a system call on the
// calling thread, which the sender's doorbell wakes (no reader
// goroutine: doorbells stay in the FIFO until a Receive asks, as with C
// SIMPL), and a Send waits for its reply in Go's poller.
// WithThreadWaits(true) makes a Send wait on its calling thread too, in a
// system call that the reply wakes: for callers whose goroutine is
// locked to its thread (runtime.LockOSThread, Serve, every C caller of
// the C library, which sets it), whom Go hands a woken goroutine through
// another thread. It holds a thread for each waiting Send.
// WithThreadWaits(false) makes both wait in Go: a reader goroutine reads
// the FIFO up to two doorbells ahead of Receive and posts them to it, the
// way before the default changed. Measured (docs/benchmarks.md, issue
// 11): a Go round trip of 64 bytes through FIFOs took 38.6 µs with
// WithThreadWaits(false), 22.8 µs by default, 19.0 µs with
// WithThreadWaits(true); a C one, 8 thread switches before, 3.6 after.
// Through shared memory the waits are on the calling thread in any case;
// while shared-memory senders are connected, a FIFO request wakes a
// sleeping Receive through a goroutine watching the FIFO.
func WithThreadWaits(on bool) Option {
	return func(o *options) error { o.threadWait, o.goWait = on, !on; return nil }
}

func defaultTransports() ([]string, error) {
	switch v := os.Getenv("GOSIMPL_TRANSPORT"); v {
	case "", "auto":
		return nil, nil
	default:
		if _, ok := transport.Lookup(v); !ok {
			return nil, errs.Errorf("GOSIMPL_TRANSPORT=%q: want auto or one of %s", v, transportNames())
		}
		return []string{v}, nil
	}
}

// WithDir uses dir as the FIFO directory instead of $FIFO_PATH (or
// /var/tmp).
func WithDir(dir string) Option { return func(o *options) error { o.dir = dir; return nil } }

// WithPerm sets the mode of the FIFOs and message buffers the Channel
// creates. The default, 0600, admits only the same user. 0660 admits the
// group. 0666 is C SIMPL's own mode, in which every local user can send to
// the name and read or alter the messages this process sends. Bits other
// than the permission bits fail Attach, and so does a mode without the
// owner's read and write (0600), which this process needs itself.
func WithPerm(mode os.FileMode) Option {
	return func(o *options) error {
		if mode&^os.ModePerm != 0 {
			return errs.Errorf("WithPerm(%v): only permission bits: %w", mode, ErrNotSupported)
		}
		if mode&0o600 != 0o600 {
			return errs.Errorf("WithPerm(%v): the owner needs read and write (0600): %w", mode, ErrNotSupported)
		}
		o.perm = mode
		return nil
	}
}

// WithMaxMessage sets the largest request Receive accepts; larger ones fail
// for their sender with ErrTooLarge. The default is 64 MiB; zero or less
// fails Attach. Through shared memory a request or reply is at most
// 256 MiB less a lane's header and the origin a gateway adds: a larger
// request is a SizeError of ErrTooLarge there whatever this says, a
// larger reply ErrReplyTooLarge; C SIMPL's FIFO wire carries larger ones.
func WithMaxMessage(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return errs.Errorf("WithMaxMessage(%d): %w", n, ErrTooLarge)
		}
		o.maxMsg = n
		return nil
	}
}

// Channel is an attached name: where messages to the name arrive, and the
// identity this process sends under. Safe for concurrent use. Close is
// idempotent.
type Channel struct {
	name    string
	reg     *naming.Registry
	q       *transport.Queue
	eps     []transport.Endpoint // every transport listening, in Rank order
	dialers []transport.Endpoint // those Locate tries for a local name, in Rank order
	remote  []transport.Endpoint // those it tries for another host's name
	o       options
	met     *chanMetrics // nil without WithObserver
	// life ends when the Channel closes: requests it forwards (Relay)
	// are failed then.
	life context.Context
	end  context.CancelFunc

	mu     sync.Mutex // guards conns and closed
	conns  map[*Conn]struct{}
	closed bool
	// shut is closed when the first Close has finished, so that every
	// Close returns only once the Channel's resources are released.
	shut chan struct{}

	serving   atomic.Bool   // a Serve with priority inheritance runs
	prioFails atomic.Uint64 // raises of the serving thread refused (PriorityFailures)

	// relays counts the requests this Channel is forwarding (Relay), for
	// WaitRelays.
	relays relayCount

	gwMu  sync.Mutex // guards the two below: isGateway's memory
	gwPID int        // the pid holding the gateway's name, as last looked up
	gwAt  time.Time  // the FIFO directory's modification time then
}

// Dir is the FIFO directory the Channel attached its name in: WithDir's,
// or $FIFO_PATH, or /var/tmp.
func (c *Channel) Dir() string { return c.reg.Dir() }

// Attach attaches name to this process (C SIMPL's name_attach). A process
// may attach several names, each its own Channel. It fails with
// ErrNameInUse if a live process holds the name; a dead owner's FIFOs are
// removed and the name is taken over. Attach("") picks a name of its own,
// unique among live processes ("_PID_N"), for a process that only sends
// or is found another way (Channel.Name tells it).
func Attach(name string, opts ...Option) (*Channel, error) {
	ts, err := defaultTransports()
	if err != nil {
		return nil, err
	}
	o := options{transports: ts}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if name == "" {
		name = fmt.Sprintf("_%d_%d", os.Getpid(), anonymous.Add(1))
	}
	if err := naming.CheckLocal(name); err != nil {
		return nil, err
	}
	reg, err := naming.Open(o.dir)
	if err != nil {
		return nil, err
	}
	c := &Channel{name: name, reg: reg, o: o, conns: make(map[*Conn]struct{}), shut: make(chan struct{})}
	c.q = transport.NewQueue(name, o.noSpin)
	if o.prioOrder {
		c.q.SetPriorityOrder()
	}
	c.life, c.end = context.WithCancel(context.Background())
	all := transport.Registered()
	cfg := transport.Config{Name: name, Registry: reg, Queue: c.q, Perm: o.perm, MaxMessage: o.maxMsg, NoSpin: o.noSpin, Priority: o.inherit, ThreadWait: o.threadWait, ThreadReceive: !o.goWait}
	for i, t := range all {
		use := o.transports == nil || slices.Contains(o.transports, t.Name())
		// The last transport publishes the name (see transport.Transport),
		// so it always listens.
		if !use && i < len(all)-1 {
			continue
		}
		ep, err := t.Listen(cfg)
		if err != nil {
			c.closeEndpoints()
			return nil, err
		}
		c.eps = append(c.eps, ep)
		switch {
		case use && transport.IsRemote(t):
			c.remote = append(c.remote, ep)
		case use:
			c.dialers = append(c.dialers, ep)
		}
	}
	if o.metrics != nil {
		c.met = o.metrics.attach(name)
	}
	return c, nil
}

// closeEndpoints closes the queue, then the endpoints in reverse Rank
// order: the name's publisher first.
func (c *Channel) closeEndpoints() error {
	c.end()
	c.q.Close()
	var first error
	for i := len(c.eps) - 1; i >= 0; i-- {
		if err := c.eps[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Name is the attached name.
func (c *Channel) Name() string { return c.name }

// Receive waits for the next message or proxy (C SIMPL's Receive). It
// returns ctx.Err() when ctx ends and an error wrapping ErrClosed once the
// Channel is closed.
func (c *Channel) Receive(ctx context.Context) (Message, error) {
	req, proxy, err := c.q.Receive(ctx)
	if err != nil {
		if c.met != nil {
			c.met.receiveFailed(err)
		}
		return Message{}, err
	}
	msg := Message{req: req, proxy: proxy, ch: c}
	if c.met != nil {
		c.met.receive(&msg, req)
	}
	return msg, nil
}

// Locate finds the process that attached name and returns a connection to
// it (C SIMPL's name_locate). Sends on it go out under this Channel's name,
// through the first transport that reaches the receiver: shared memory to
// a gosimpl process, its FIFO to a C SIMPL one (see WithTransport). A name
// nobody has attached is ErrNotFound at once (WaitFor waits for it); ctx
// bounds the connection's set-up.
func (c *Channel) Locate(ctx context.Context, name string) (*Conn, error) {
	ent, n, err := c.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.dial(ctx, name, n, ent)
}

// WaitFor is Locate for a name that may not be attached yet: it waits
// until a live process attaches it, or ctx ends (ctx.Err()), or the
// Channel is closed (ErrClosed).
func (c *Channel) WaitFor(ctx context.Context, name string) (*Conn, error) {
	conn, err := c.waitFor(ctx, name)
	if err != nil && c.isClosed() && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
		err = errs.Errorf("wait for %q from %q: %w", name, c.name, ErrClosed)
	}
	return conn, err
}

func (c *Channel) waitFor(ctx context.Context, name string) (*Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)() // Close ends the wait
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, n, err := c.lookup(ctx, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if !n.Local() {
			// Another host's name: asked again and again, less and less
			// often, up to once a second.
			conn, err := c.dial(ctx, name, n, naming.Entry{})
			if !errors.Is(err, ErrNotFound) {
				return conn, err
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			continue
		}
		ent, err := c.reg.Wait(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		conn, err := c.dial(ctx, name, n, ent)
		if !errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return conn, err
		}
		// Its owner went between the two: wait for the next.
	}
}

// lookup parses name and finds its live owner. A name whose host is this
// host (naming.IsLocalHost, C SIMPL's rules) is looked up here, as a
// local name.
func (c *Channel) lookup(ctx context.Context, name string) (naming.Entry, naming.Name, error) {
	n, err := naming.Parse(name)
	if err != nil {
		return naming.Entry{}, n, err
	}
	if !n.Local() {
		local, err := naming.IsLocalHost(ctx, n.Host)
		if err != nil {
			return naming.Entry{}, n, errs.Errorf("locate %q: %w", name, err)
		}
		if !local {
			if len(c.remote) == 0 {
				return naming.Entry{}, n, errs.Errorf("remote name %q: no transport of this Channel reaches other hosts: %w", name, ErrNotSupported)
			}
			return naming.Entry{}, n, nil // dialled through c.remote
		}
		n = naming.Name{Name: n.Name}
	}
	if c.isClosed() {
		return naming.Entry{}, n, errs.Errorf("locate from %q: %w", c.name, ErrClosed)
	}
	ent, err := c.reg.Lookup(n.Name)
	return ent, n, err
}

// dial connects to ent, the owner of name, through the first transport
// that reaches it.
func (c *Channel) dial(ctx context.Context, name string, n naming.Name, ent naming.Entry) (*Conn, error) {
	var err error
	p := transport.Peer{Name: n, Entry: ent}
	var tc transport.Conn
	dialers := c.dialers
	if !n.Local() {
		dialers = c.remote
	}
	for _, ep := range dialers {
		tc, err = ep.Dial(ctx, p)
		if err == nil || ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			break // a transport that ran out of time does not fall back
		}
	}
	if err == nil && tc == nil {
		// No transport of this Channel's dials such a name (WithTransport
		// allowing only one that reaches other hosts, for a local name).
		err = errs.Errorf("locate %q: no transport of this Channel reaches a name on this host: %w", name, ErrUnreachable)
	}
	if err != nil {
		if len(dialers) > 1 && !errors.Is(err, ErrNotFound) {
			err = errs.Errorf("locate %q: %w", name, err)
		}
		return nil, err
	}
	conn := &Conn{ch: c, tc: tc, name: name}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.conns[conn] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		tc.Close()
		return nil, errs.Errorf("locate from %q: %w", c.name, ErrClosed)
	}
	if c.met != nil {
		conn.met = c.met.conn(name, tc.Transport())
	}
	return conn, nil
}

func (c *Channel) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close detaches the name (C SIMPL's name_detach): its FIFOs are removed,
// waiting Receives and this Channel's own Sends return ErrClosed, and every
// sender still waiting on this Channel gets ErrPeerGone.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.shut // the first Close's work done
		return nil
	}
	c.closed = true
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	defer close(c.shut)
	for conn := range conns {
		conn.tc.Close()
	}
	if c.met != nil {
		c.met.close()
	}
	return c.closeEndpoints()
}

// WaitRelays waits until every request this Channel is forwarding (see
// Message.Relay) has been answered, or ctx ends (ctx.Err()). A process
// about to Close a Channel calls it so that requests it relayed are not
// failed: C SIMPL's relayer may exit at once, because its relays are
// handed over whole, and the C SIMPL library (simpl/clib) waits here on
// name_detach to keep that promise for the relays it must forward.
func (c *Channel) WaitRelays(ctx context.Context) error {
	for {
		c.relays.mu.Lock()
		if c.relays.n == 0 {
			c.relays.mu.Unlock()
			return nil
		}
		if c.relays.zero == nil {
			c.relays.zero = make(chan struct{})
		}
		zero := c.relays.zero
		c.relays.mu.Unlock()
		select {
		case <-zero:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// relayCount counts forwarded relays; unlike a sync.WaitGroup it may be
// waited on while relays start.
type relayCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil until someone waits
}

func (r *relayCount) add() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

func (r *relayCount) done() {
	r.mu.Lock()
	r.n--
	if r.n == 0 && r.zero != nil {
		close(r.zero)
		r.zero = nil
	}
	r.mu.Unlock()
}

// Conn is a connection to a located receiver. Safe for concurrent use.
type Conn struct {
	ch   *Channel
	tc   transport.Conn
	name string
	met  *connMetrics // nil without WithObserver
}

// Transport is the name of the transport Sends on this connection use:
// FIFO, SHM, or another registered one.
func (c *Conn) Transport() string { return c.tc.Transport() }

// Name is the name that was located.
func (c *Conn) Name() string { return c.name }

// PID is the receiver's process id.
func (c *Conn) PID() int { return c.tc.PID() }

// Send sends req and blocks until the receiver answers, then copies the
// reply into reply and returns its size. A reply larger than reply fails
// with ErrReplyTooLarge (nothing is truncated; a C SIMPL receiver reports
// it as a plain failure, which arrives as ErrRejected); ReplyError on the
// other side is ErrRejected; a receiver that detaches first is ErrPeerGone. When ctx
// ends first Send returns ctx.Err(); the receiver's late answer is then
// discarded.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	if c.met == nil {
		return c.tc.Send(ctx, req, reply)
	}
	t0 := c.met.clk.now()
	n, err := c.tc.Send(ctx, req, reply)
	c.met.sent(t0, err)
	return n, err
}

// UntilTaken is ctx for a Send that may also give up while, and only
// while, its request waits for the receiver to take it: when queued
// ends, a Conn whose WithdrawsQueued is true takes the request back if
// the receiver has not yet received it, and Send returns queued.Err();
// if the receiver has, taken is called (once, on the sending goroutine;
// it may be nil) and Send goes on until the reply, the receiver's end,
// Close or the end of ctx. This is QNX's timeout of the SEND-blocked
// state. A Conn that cannot tell (FIFOs, the network) ignores queued.
func UntilTaken(ctx, queued context.Context, taken func()) context.Context {
	return transport.UntilTaken(ctx, queued, taken)
}

// WithdrawsQueued tells whether Sends on c honour UntilTaken: true
// through shared memory, which knows whether the receiver has taken a
// request; false through FIFOs and the network.
func (c *Conn) WithdrawsQueued() bool { return transport.WithdrawsQueued(c.tc) }

// Trigger sends proxy (1 or more) and returns without waiting; the
// receiver's Receive returns a Message whose Proxy is proxy.
func (c *Conn) Trigger(proxy int) error {
	err := c.tc.Trigger(proxy)
	if c.met != nil {
		c.met.triggered(err)
	}
	return err
}

// Close releases the connection. It is idempotent.
func (c *Conn) Close() error {
	c.ch.mu.Lock()
	delete(c.ch.conns, c)
	c.ch.mu.Unlock()
	return c.tc.Close()
}

// Buffer is a request area reserved for one sender, to build requests in
// place and read replies in place. Through shared memory it is the
// sender's own lane, which the receiver reads directly: nothing is copied
// on either side. Through FIFOs it is ordinary memory, copied as Send
// copies.
//
//	b, _ := conn.Buffer(ctx, 4096)
//	defer b.Close()
//	n := encode(b.Bytes())             // build the request in place
//	reply, err := b.Send(ctx, n, 4096) // the reply comes back over it
//
// How long each view is valid: Bytes until Close; a reply returned by Send
// until the next write to Bytes, the next Send, or Close. Close unmaps the
// lane, so a view kept past Close faults when touched rather than reaching
// another message; it is never handed to another Send. Do not write to
// Bytes while a Send is in flight: the receiver is reading it.
//
// A Send cancelled after the receiver took the message spends the Buffer
// (the late answer may still land in it): later Sends fail with ErrClosed;
// close it and take a new one. Setting up a Buffer costs a handshake with
// the receiver, so keep one and reuse it. Not safe for concurrent use
// (take one per goroutine); Close is idempotent.
type Buffer struct {
	tb  transport.Buffer
	met *connMetrics // nil without WithObserver
}

// Buffer reserves a request area of size bytes, which also bounds the
// reply. Through shared memory it sets up a lane with the receiver, within
// ctx.
func (c *Conn) Buffer(ctx context.Context, size int) (*Buffer, error) {
	if size < 0 {
		return nil, errs.Errorf("buffer of %d bytes: %w", size, ErrTooLarge)
	}
	tb, err := c.tc.Buffer(ctx, size)
	if err != nil {
		return nil, err
	}
	return &Buffer{tb: tb, met: c.met}, nil
}

// Bytes is the area to build the request in; nil once closed.
func (b *Buffer) Bytes() []byte { return b.tb.Bytes() }

// Send sends the first n bytes of Bytes and blocks until the receiver
// answers with a reply of at most maxReply bytes (both at most the
// Buffer's size), which it returns in place. Its errors are Conn.Send's;
// n or maxReply beyond the Buffer's size is a SizeError of ErrTooLarge
// with the size asked for and the Buffer's.
func (b *Buffer) Send(ctx context.Context, n, maxReply int) ([]byte, error) {
	if b.met == nil {
		return b.tb.Send(ctx, n, maxReply)
	}
	t0 := b.met.clk.now()
	reply, err := b.tb.Send(ctx, n, maxReply)
	b.met.sent(t0, err)
	return reply, err
}

// Close releases the area. A Buffer holds its shared memory, and its
// place among the receiver's lanes, until it is closed, even after its
// Conn or Channel is: close every Buffer.
func (b *Buffer) Close() error { return b.tb.Close() }

// Message is what Receive returns: either a request, which is owed exactly
// one of Reply, ReplyInPlace, ReplyError or Relay, or a proxy, which is
// owed nothing. It is a small value; copies refer to the same request.
// Once the request is answered every copy is spent: a second answer
// returns ErrReplied and Data returns nil, even when the sender's next
// message has already arrived. Safe for concurrent use.
type Message struct {
	req   transport.Request
	proxy int
	ch    *Channel
	met   *chanMetrics // set for a request when the Channel has metrics
	t0    int64        // when it was received, for met
	srv   *server      // the Serve loop inheriting its priority, if any
	seq   uint64       // which of srv's requests it is
}

// Priority is the scheduling priority the sender carried with the
// request (WithPriorityInheritance, through shared memory); ok is false
// when it carried none (through FIFOs, from a sender without the option
// or of another user, and for a proxy).
func (m Message) Priority() (p Priority, ok bool) { return m.req.Prio() }

// served tells the Serve loop, if any, that the request was answered.
func (m Message) served() {
	if m.srv != nil {
		m.srv.answered(m.seq)
	}
}

// Proxy is the proxy value (1 or more) when the message is a Trigger, and
// 0 for a request.
func (m Message) Proxy() int { return m.proxy }

// Data is the request's bytes, valid until the message is answered: a copy
// for a request that came through FIFOs, a view of the sender's shared
// memory, read in place, for one that came through shm. Keep a copy to use
// it later. Nil for a proxy and once answered.
//
// In place means the sender's process could still write to it (only a
// misbehaving one: a Send waits for its reply): a server that checks a
// request and then acts on it, and must not trust its sender, copies it
// first and checks the copy.
func (m Message) Data() []byte { return m.req.Data() }

// Sender is the name the sender attached and its pid. A concurrent Send
// from a Channel shows up as "NAME#k" (k >= 1).
func (m Message) Sender() (name string, pid int) { return m.req.Sender() }

// Cred identifies the sending process as the kernel reports it.
type Cred = transport.Cred

// Cred is the sending process's pid, uid and gid as the kernel recorded
// them, for servers that enforce their own policy. ok is false for a
// proxy. What each transport reports:
//
//   - Shared memory: SO_PEERCRED, read when the sender connected: its pid
//     and its effective uid and gid at that moment.
//   - FIFOs: the System V segment the request came in, as the kernel
//     recorded its creation: pid shm_cpid, uid shm_perm.cuid, gid
//     shm_perm.cgid (the creator's effective uid and gid then). The
//     receiver serves a request only if the header's pid (Sender's) is
//     that creator, still running and still holding that uid among its
//     real, effective, saved and file-system uids; the gid is not checked
//     again, so it is the creator's group when it made the segment (a
//     gosimpl sender makes one at its first Send, and a larger one when a
//     Send outgrows it). C SIMPL senders create their own segments, so
//     they are reported too.
//
// A request relayed through FIFOs (by gosimpl or C SIMPL) comes in the
// original sender's segment and reports the original sender; a
// shared-memory request relayed by a gosimpl process is forwarded (see
// Relay) and reports the forwarding process.
//
// A request from another host, delivered by this host's gateway (fcgate),
// reports its origin instead (Cred.Remote): the sending host as the
// network vouches for it, the program's name and its pid there, and PID
// 0, UID and GID -1, never the gateway's local credentials. That origin
// travels with the gateway's Send over shared memory, and is believed
// only of the process that holds the gateway's name (another local
// process that claims one is reported as itself); a request the gateway
// delivered without it (through FIFOs) has ok false.
func (m Message) Cred() (c Cred, ok bool) {
	c, ok = m.req.Cred()
	if !ok {
		return c, ok
	}
	name, _ := m.req.Sender()
	base, _, _ := strings.Cut(name, "#")
	if c.Host == "" && base != netwire.GatewayName {
		return c, true // a local sender: the usual case
	}
	if !m.ch.isGateway(c.PID) {
		c.Host, c.Program, c.HostPID = "", "", 0
		return c, true
	}
	if c.Host == "" {
		return Cred{}, false
	}
	return Cred{PID: 0, UID: -1, GID: -1, Host: c.Host, Program: c.Program, HostPID: c.HostPID}, true
}

// isGateway reports whether pid holds the host gateway's name in the
// channel's FIFO directory. The registry is asked again only when the
// directory has changed since it last was (a name attached, detached or
// reaped changes it), not for every remote request's Cred.
func (c *Channel) isGateway(pid int) bool {
	if pid <= 0 {
		return false
	}
	fi, err := os.Stat(c.reg.Dir())
	c.gwMu.Lock()
	defer c.gwMu.Unlock()
	if err == nil && !c.gwAt.IsZero() && fi.ModTime().Equal(c.gwAt) {
		return c.gwPID == pid
	}
	c.gwPID, c.gwAt = 0, time.Time{}
	if ent, lerr := c.reg.Lookup(netwire.GatewayName); lerr == nil {
		c.gwPID = ent.PID
		if err == nil {
			c.gwAt = fi.ModTime()
		}
	}
	return c.gwPID == pid
}

// MaxReply is the largest reply the sender accepts.
func (m Message) MaxReply() int { return m.req.MaxReply() }

// Reply answers the request with data. A reply larger than MaxReply is
// not sent: the sender's Send fails with ErrReplyTooLarge, the message
// counts as answered, and Reply returns ErrReplyTooLarge. Answering twice
// is ErrReplied; answering a proxy is ErrBadProxy.
func (m Message) Reply(data []byte) error {
	if !m.req.Valid() {
		return errProxyAnswer
	}
	err := m.req.Reply(data)
	m.served()
	if m.met != nil {
		m.met.answered(m.t0, outcomeReply, err)
	}
	return err
}

// ReplyBuffer is where a reply can be written in place, MaxReply bytes
// long: over the request in the sender's shared memory (shm), or over the
// sender's System V segment (FIFOs). Write the reply there, then call
// ReplyInPlace; nothing is copied on this side. On shm the reply area is
// the request's own, so Data changes as you write: read what you need
// first. Valid until the message is answered; nil once answered and for a
// proxy.
func (m Message) ReplyBuffer() []byte { return m.req.ReplyBuffer() }

// ReplyInPlace answers with the first n bytes of ReplyBuffer. n larger
// than MaxReply is ErrReplyTooLarge, as with Reply.
func (m Message) ReplyInPlace(n int) error {
	if !m.req.Valid() {
		return errProxyAnswer
	}
	err := m.req.ReplyInPlace(n)
	m.served()
	if m.met != nil {
		m.met.answered(m.t0, outcomeReply, err)
	}
	return err
}

// ReplyError answers the request with a failure: the sender's Send returns
// ErrRejected.
func (m Message) ReplyError() error {
	if !m.req.Valid() {
		return errProxyAnswer
	}
	err := m.req.ReplyError()
	m.served()
	if m.met != nil {
		m.met.answered(m.t0, outcomeReplyError, err)
	}
	return err
}

// Relay hands the request to the receiver behind to, which answers the
// original sender; this process owes it nothing more. A request that came
// through FIFOs and goes on through FIFOs is handed over whole, as C
// SIMPL does, and the third process replies to the sender directly; this
// process may then exit at once. A gosimpl sender follows its request to
// the third process and fails with ErrPeerGone only if that one exits
// without answering (a C SIMPL relayer does not say where it handed the
// request: its sender fails when the relayer exits). Any
// other is forwarded: a goroutine of this process sends it on (under this
// Channel's name) and passes the answer back, so this process must stay
// up until then; closing the Channel fails it for its sender with
// ErrPeerGone. A forwarded request's sender gets the third process's
// answer: its reply, ErrRejected for its ReplyError, ErrReplyTooLarge
// with the reply's size; any other failure of the forwarded Send (the
// third process gone, the request too large for it) is ErrPeerGone for
// the sender, and this Channel's WithObserver hooks see the cause.
func (m Message) Relay(to *Conn) error {
	if !m.req.Valid() {
		return errProxyAnswer
	}
	m.ch.relays.add()
	err := m.req.RelayNotify(m.ch.life, relayConn{to}, m.ch.relays.done)
	m.served()
	if m.met != nil {
		m.met.answered(m.t0, outcomeRelay, err)
	}
	return err
}

// relayConn is a Conn as Relay hands it to the transport: a forwarded
// request's Send is recorded as the Conn's own Sends are, and a transport
// that relays natively finds its own connection through Unwrap.
type relayConn struct{ *Conn }

func (r relayConn) Buffer(ctx context.Context, size int) (transport.Buffer, error) {
	return r.tc.Buffer(ctx, size)
}
func (r relayConn) Unwrap() transport.Conn { return r.tc }

// anonymous numbers the names Attach("") picks.
var anonymous atomic.Int64

var errProxyAnswer = errs.Errorf("%w: a proxy is not answered", ErrBadProxy)
