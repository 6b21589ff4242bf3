package simpl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/fifo"
	"github.com/gosimpl/gosimpl/transport/shm"
)

// ProxyShutdown is the proxy value C SIMPL programs use to ask a receiver
// to stop.
const ProxyShutdown = 0x7FFFFFFF

// Option configures Attach.
type Option func(*options)

type options struct {
	dir       string
	perm      os.FileMode
	maxMsg    int
	transport Transport
	noSpin    bool
	metrics   *observing
}

// Transport chooses how a Channel's messages move.
type Transport int

const (
	// Auto, the default, receives on both transports at once and sends
	// through shared memory to gosimpl receivers and through FIFOs to C
	// SIMPL ones. The environment variable GOSIMPL_TRANSPORT (fifo, shm or
	// auto) overrides the default for a whole program, for tests and
	// debugging.
	Auto Transport = iota
	// FIFO uses only the C SIMPL 3.x FIFO transport.
	FIFO
	// SHM receives on both transports but sends only through shared
	// memory: Locate fails for a receiver without it.
	SHM
)

func (t Transport) String() string {
	switch t {
	case FIFO:
		return "fifo"
	case SHM:
		return "shm"
	}
	return "auto"
}

// WithTransport forces a transport instead of choosing one per receiver.
func WithTransport(t Transport) Option { return func(o *options) { o.transport = t } }

// WithSpin(false) makes every wait sleep at once instead of spinning for
// a few microseconds first (shared-memory transport only): for single-core
// and battery-powered machines, at the cost of a futex wake-up per hand-off.
// Spinning is on by default where there is more than one CPU.
func WithSpin(on bool) Option { return func(o *options) { o.noSpin = !on } }

func defaultTransport() (Transport, error) {
	switch v := os.Getenv("GOSIMPL_TRANSPORT"); v {
	case "", "auto":
		return Auto, nil
	case "fifo":
		return FIFO, nil
	case "shm":
		return SHM, nil
	default:
		return Auto, fmt.Errorf("simpl: GOSIMPL_TRANSPORT=%q: want fifo, shm or auto", v)
	}
}

// WithDir uses dir as the FIFO directory instead of $FIFO_PATH (or
// /var/tmp).
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithPerm sets the mode of the FIFOs and message buffers the Channel
// creates. The default, 0600, admits only the same user. 0660 admits the
// group. 0666 is C SIMPL's own mode, in which every local user can send to
// the name and read or alter the messages this process sends.
func WithPerm(mode os.FileMode) Option { return func(o *options) { o.perm = mode } }

// WithMaxMessage sets the largest request Receive accepts; larger ones fail
// for their sender with ErrTooLarge. The default is 64 MiB.
func WithMaxMessage(n int) Option { return func(o *options) { o.maxMsg = n } }

// Channel is an attached name: where messages to the name arrive, and the
// identity this process sends under. Safe for concurrent use. Close is
// idempotent.
type Channel struct {
	ep   *fifo.Endpoint
	fast *shm.Endpoint // nil with the FIFO transport only
	reg  *naming.Registry
	o    options
	met  *chanMetrics // nil without WithObserver

	mu     sync.Mutex // guards conns and closed
	conns  map[*Conn]struct{}
	closed bool
}

// Dir is the FIFO directory the Channel attached its name in: WithDir's,
// or $FIFO_PATH, or /var/tmp.
func (c *Channel) Dir() string { return c.reg.Dir() }

// Attach attaches name to this process (C SIMPL's name_attach). A process
// may attach several names, each its own Channel. It fails with
// ErrNameInUse if a live process holds the name; a dead owner's FIFOs are
// removed and the name is taken over.
func Attach(name string, opts ...Option) (*Channel, error) {
	t, err := defaultTransport()
	if err != nil {
		return nil, err
	}
	o := options{transport: t}
	for _, opt := range opts {
		opt(&o)
	}
	if err := naming.CheckLocal(name); err != nil {
		return nil, err
	}
	reg, err := naming.Open(o.dir)
	if err != nil {
		return nil, err
	}
	c := &Channel{reg: reg, o: o, conns: make(map[*Conn]struct{})}
	fo := fifo.Options{Registry: reg, Perm: o.perm, MaxMessage: o.maxMsg}
	if o.transport != FIFO {
		// Listen first: senders find the name through its FIFO, and by
		// then the shared-memory side must be there.
		addr := shm.Address(reg.Dir(), name, os.Getpid())
		c.fast, err = shm.Listen(addr, name, c.shmOptions())
		if err != nil {
			return nil, err
		}
		fo.Deliver = c.fast.Post
	}
	c.ep, err = fifo.Attach(name, fo)
	if err != nil {
		if c.fast != nil {
			c.fast.Close()
		}
		return nil, err
	}
	if o.metrics != nil {
		c.met = o.metrics.attach(name)
	}
	return c, nil
}

func (c *Channel) shmOptions() shm.Options {
	return shm.Options{Perm: c.o.perm, MaxMessage: c.o.maxMsg, NoSpin: c.o.noSpin}
}

// Name is the attached name.
func (c *Channel) Name() string { return c.ep.Name() }

// Receive waits for the next message or proxy (C SIMPL's Receive). It
// returns ctx.Err() when ctx ends and an error wrapping ErrClosed once the
// Channel is closed.
func (c *Channel) Receive(ctx context.Context) (Message, error) {
	var (
		req   transport.Request
		proxy int
		err   error
	)
	if c.fast != nil {
		req, proxy, err = c.fast.Receive(ctx)
	} else {
		req, proxy, err = c.ep.Receive(ctx)
	}
	if err != nil {
		if c.met != nil {
			c.met.receiveFailed(err)
		}
		return Message{}, err
	}
	msg := newMessage(req, proxy)
	if c.met != nil {
		c.met.receive(&msg, req)
	}
	return msg, nil
}

// Locate finds the process that attached name and returns a connection to
// it (C SIMPL's name_locate). Sends on it go out under this Channel's name,
// through shared memory when the receiver is a gosimpl process and through
// its FIFO otherwise (see WithTransport).
func (c *Channel) Locate(name string) (*Conn, error) {
	tc, err := c.ep.Locate(name)
	if err != nil {
		return nil, err
	}
	conn := &Conn{ch: c, tc: tc, name: name, pid: tc.PID(), transport: FIFO}
	if c.o.transport == FIFO {
		if c.met != nil {
			conn.met = c.met.conn(name, FIFO)
		}
		return conn, nil
	}
	addr := shm.Address(c.reg.Dir(), tc.Name(), tc.PID())
	fast, err := shm.Dial(addr, tc.PID(), c.Name(), c.shmOptions())
	switch {
	case err == nil:
		fast.SetTrigger(tc.Trigger)
		conn.fast, conn.transport = fast, SHM
	case c.o.transport == SHM:
		tc.Close()
		return nil, fmt.Errorf("simpl: locate %q through shared memory: %w", name, err)
	}
	if conn.fast != nil {
		c.mu.Lock()
		closed := c.closed
		if !closed {
			c.conns[conn] = struct{}{}
		}
		c.mu.Unlock()
		if closed {
			conn.Close()
			return nil, fmt.Errorf("simpl: locate from %q: %w", c.Name(), transport.ErrClosed)
		}
	}
	if c.met != nil {
		conn.met = c.met.conn(name, conn.transport)
	}
	return conn, nil
}

// Close detaches the name (C SIMPL's name_detach): its FIFOs are removed,
// waiting Receives and this Channel's own Sends return ErrClosed, and every
// sender still waiting on this Channel gets ErrPeerGone.
func (c *Channel) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = make(map[*Conn]struct{})
	c.mu.Unlock()
	for conn := range conns {
		conn.fast.Close()
	}
	if c.met != nil {
		c.met.close()
	}
	err := c.ep.Close()
	if c.fast != nil {
		c.fast.Close()
	}
	return err
}

// Conn is a connection to a located receiver. Safe for concurrent use.
type Conn struct {
	ch        *Channel
	tc        transport.Conn // the FIFO transport: Trigger and Relay
	fast      *shm.Conn      // nil unless Sends go through shared memory
	transport Transport
	name      string
	pid       int
	met       *connMetrics // nil without WithObserver
}

// Transport is the transport Sends on this connection use: FIFO or SHM.
func (c *Conn) Transport() Transport { return c.transport }

// Name is the name that was located.
func (c *Conn) Name() string { return c.name }

// PID is the receiver's process id.
func (c *Conn) PID() int { return c.pid }

// Send sends req and blocks until the receiver answers, then copies the
// reply into reply and returns its size. A reply larger than reply fails
// with ErrReplyTooLarge (nothing is truncated; a C SIMPL receiver reports
// it as a plain failure, which arrives as ErrRejected); ReplyError on the
// other side is ErrRejected; a receiver that detaches first is ErrPeerGone. When ctx
// ends first Send returns ctx.Err(); the receiver's late answer is then
// discarded.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	if c.met != nil {
		return c.sendMeasured(ctx, req, reply)
	}
	if c.fast != nil {
		return c.fast.Send(ctx, req, reply)
	}
	return c.tc.Send(ctx, req, reply)
}

func (c *Conn) sendMeasured(ctx context.Context, req, reply []byte) (n int, err error) {
	t0 := c.met.clk.now()
	if c.fast != nil {
		n, err = c.fast.Send(ctx, req, reply)
	} else {
		n, err = c.tc.Send(ctx, req, reply)
	}
	c.met.sent(t0, err)
	return n, err
}

// Trigger sends proxy (1 or more) and returns without waiting; the
// receiver's Receive returns a Message whose Proxy is proxy.
func (c *Conn) Trigger(proxy int) error {
	err := c.tc.Trigger(proxy)
	if c.met != nil {
		c.met.triggered(err)
	}
	return err
}

// Close releases the connection.
func (c *Conn) Close() error {
	if c.fast != nil {
		c.ch.mu.Lock()
		delete(c.ch.conns, c)
		c.ch.mu.Unlock()
		c.fast.Close()
	}
	return c.tc.Close()
}

// Buffer is a request area reserved for one sender, to build requests in
// place and read replies in place. Through shared memory it is the
// sender's own lane, which the receiver reads directly: nothing is copied
// on either side. Through FIFOs it is ordinary memory, copied as Send
// copies.
//
//	b, _ := conn.Buffer(4096)
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
	fast *shm.Buffer
	tc   transport.Conn
	mem  []byte
	met  *connMetrics // nil without WithObserver
}

// Buffer reserves a request area of size bytes, which also bounds the
// reply.
func (c *Conn) Buffer(size int) (*Buffer, error) {
	if size < 0 {
		return nil, fmt.Errorf("simpl: buffer of %d bytes: %w", size, transport.ErrTooLarge)
	}
	if c.fast != nil {
		b, err := c.fast.Buffer(size)
		if err != nil {
			return nil, err
		}
		return &Buffer{fast: b, met: c.met}, nil
	}
	return &Buffer{tc: c.tc, mem: make([]byte, size), met: c.met}, nil
}

// Bytes is the area to build the request in; nil once closed.
func (b *Buffer) Bytes() []byte {
	if b.fast != nil {
		return b.fast.Bytes()
	}
	return b.mem
}

// Send sends the first n bytes of Bytes and blocks until the receiver
// answers with a reply of at most maxReply bytes (both at most the
// Buffer's size), which it returns in place. Its errors are Conn.Send's.
func (b *Buffer) Send(ctx context.Context, n, maxReply int) ([]byte, error) {
	if b.met != nil {
		t0 := b.met.clk.now()
		reply, err := b.send(ctx, n, maxReply)
		b.met.sent(t0, err)
		return reply, err
	}
	if b.fast != nil {
		return b.fast.Send(ctx, n, maxReply)
	}
	return b.send(ctx, n, maxReply)
}

func (b *Buffer) send(ctx context.Context, n, maxReply int) ([]byte, error) {
	if b.fast != nil {
		return b.fast.Send(ctx, n, maxReply)
	}
	switch {
	case b.mem == nil:
		return nil, fmt.Errorf("simpl: send from a closed buffer: %w", transport.ErrClosed)
	case n < 0 || n > len(b.mem) || maxReply < 0 || maxReply > len(b.mem):
		return nil, fmt.Errorf("simpl: send of %d bytes with a %d-byte reply from a %d-byte buffer: %w", n, maxReply, len(b.mem), transport.ErrTooLarge)
	}
	// The request goes into the receiver's view before the reply comes
	// back, so the two may share the area.
	size, err := b.tc.Send(ctx, b.mem[:n], b.mem[:maxReply])
	if err != nil {
		return nil, err
	}
	return b.mem[:size], nil
}

// Close releases the area.
func (b *Buffer) Close() error {
	if b.fast != nil {
		return b.fast.Close()
	}
	b.mem = nil
	return nil
}

// Message is what Receive returns: either a request, which is owed exactly
// one of Reply, ReplyInPlace, ReplyError or Relay, or a proxy, which is
// owed nothing. It is a small value; copies refer to the same request.
// Once the request is answered every copy is spent: a second answer
// returns ErrReplied and Data returns nil, even when the sender's next
// message has already arrived. Safe for concurrent use.
type Message struct {
	req   transport.Request
	fast  shm.Ticket // set for a request that came through shared memory
	proxy int
	met   *chanMetrics // set for a request when the Channel has metrics
	t0    int64        // when it was received, for met
}

func newMessage(req transport.Request, proxy int) Message {
	m := Message{req: req, proxy: proxy}
	if r, ok := req.(*shm.Request); ok {
		m.fast = r.Ticket()
	}
	return m
}

// Proxy is the proxy value (1 or more) when the message is a Trigger, and
// 0 for a request.
func (m Message) Proxy() int { return m.proxy }

// IsProxy reports whether the message is a Trigger.
func (m Message) IsProxy() bool { return m.proxy > 0 }

// Data is the request's bytes, valid until the message is answered: a copy
// for a request that came through FIFOs, a view of the sender's shared
// memory, read in place, for one that came through shm. Keep a copy to use
// it later. Nil for a proxy and once answered.
//
// In place means the sender's process could still write to it (only a
// misbehaving one: a Send waits for its reply): a server that checks a
// request and then acts on it, and must not trust its sender, copies it
// first and checks the copy.
func (m Message) Data() []byte {
	switch {
	case m.fast.Valid():
		return m.fast.Data()
	case m.req == nil:
		return nil
	}
	return m.req.Data()
}

// Sender is the name the sender attached and its pid. A concurrent Send
// from a Channel shows up as "NAME#k" (k >= 1).
func (m Message) Sender() (name string, pid int) {
	if m.req == nil {
		return "", 0
	}
	return m.req.Sender()
}

// Cred identifies the sending process as the kernel reports it.
type Cred struct {
	PID, UID, GID int
}

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
func (m Message) Cred() (c Cred, ok bool) {
	switch {
	case m.fast.Valid():
		k := m.fast.Request().Cred()
		return Cred{PID: k.PID, UID: k.UID, GID: k.GID}, true
	case m.req == nil:
		return Cred{}, false
	}
	if r, isCred := m.req.(transport.CredRequest); isCred {
		k, ok := r.Cred()
		return Cred{PID: k.PID, UID: k.UID, GID: k.GID}, ok
	}
	return Cred{}, false
}

// MaxReply is the largest reply the sender accepts.
func (m Message) MaxReply() int {
	if m.req == nil {
		return 0
	}
	return m.req.MaxReply()
}

// Reply answers the request with data. A reply larger than MaxReply is
// not sent: the sender's Send fails with ErrReplyTooLarge, the message
// counts as answered, and Reply returns ErrReplyTooLarge. Answering twice
// is ErrReplied; answering a proxy is ErrBadProxy.
func (m Message) Reply(data []byte) error {
	var err error
	switch {
	case m.fast.Valid():
		err = m.fast.Reply(data)
	case m.req == nil:
		return errProxyAnswer
	default:
		err = m.req.Reply(data)
	}
	if m.met != nil {
		m.met.answered(m.t0, outcomeReply, err)
	}
	return err
}

// inPlace is what a transport's request offers for replies written in
// place.
type inPlace interface {
	ReplyBuffer() []byte
	ReplyInPlace(n int) error
}

// ReplyBuffer is where a reply can be written in place, MaxReply bytes
// long: over the request in the sender's shared memory (shm), or over the
// sender's System V segment (FIFOs). Write the reply there, then call
// ReplyInPlace; nothing is copied on this side. On shm the reply area is
// the request's own, so Data changes as you write: read what you need
// first. Valid until the message is answered; nil once answered and for a
// proxy.
func (m Message) ReplyBuffer() []byte {
	switch {
	case m.fast.Valid():
		return m.fast.ReplyBuffer()
	case m.req == nil:
		return nil
	}
	if r, ok := m.req.(inPlace); ok {
		return r.ReplyBuffer()
	}
	return nil
}

// ReplyInPlace answers with the first n bytes of ReplyBuffer. n larger
// than MaxReply is ErrReplyTooLarge, as with Reply.
func (m Message) ReplyInPlace(n int) error {
	var err error
	switch {
	case m.fast.Valid():
		err = m.fast.ReplyInPlace(n)
	case m.req == nil:
		return errProxyAnswer
	default:
		r, ok := m.req.(inPlace)
		if !ok {
			err = fmt.Errorf("simpl: reply in place: %w", transport.ErrNotSupported)
		} else {
			err = r.ReplyInPlace(n)
		}
	}
	if m.met != nil {
		m.met.answered(m.t0, outcomeReply, err)
	}
	return err
}

// ReplyError answers the request with a failure: the sender's Send returns
// ErrRejected.
func (m Message) ReplyError() error {
	var err error
	switch {
	case m.fast.Valid():
		err = m.fast.ReplyError()
	case m.req == nil:
		return errProxyAnswer
	default:
		err = m.req.ReplyError()
	}
	if m.met != nil {
		m.met.answered(m.t0, outcomeReplyError, err)
	}
	return err
}

// Relay hands the request to the receiver behind to, which answers the
// original sender; this process owes it nothing more. A request that came
// through FIFOs is handed over whole, as C SIMPL does, and the third
// process replies to the sender directly. A request that came through
// shared memory is forwarded: a goroutine of this process sends it on
// (under this Channel's name) and passes the answer back, so this process
// must stay up until then.
func (m Message) Relay(to *Conn) error {
	var err error
	switch {
	case m.fast.Valid():
		err = m.forward(to)
	case m.req == nil:
		return errProxyAnswer
	default:
		err = m.req.Relay(to.tc)
	}
	if m.met != nil {
		m.met.answered(m.t0, outcomeRelay, err)
	}
	return err
}

// forward relays a shared-memory request by hand.
func (m Message) forward(to *Conn) error {
	data := m.fast.Data()
	if data == nil {
		return transport.ErrReplied
	}
	max := m.MaxReply()
	go func() {
		buf := make([]byte, max)
		n, err := to.Send(context.Background(), data, buf)
		switch {
		case err == nil:
			m.fast.Reply(buf[:n])
		case errors.Is(err, transport.ErrRejected):
			m.fast.ReplyError()
		default:
			m.fast.Abort()
		}
	}()
	return nil
}

var errProxyAnswer = fmt.Errorf("%w: a proxy is not answered", transport.ErrBadProxy)
