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

	mu     sync.Mutex // guards conns and closed
	conns  map[*Conn]struct{}
	closed bool
}

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
		return Message{}, err
	}
	return Message{req: req, proxy: proxy}, nil
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
	if c.fast != nil {
		return c.fast.Send(ctx, req, reply)
	}
	return c.tc.Send(ctx, req, reply)
}

// Trigger sends proxy (1 or more) and returns without waiting; the
// receiver's Receive returns a Message whose Proxy is proxy.
func (c *Conn) Trigger(proxy int) error { return c.tc.Trigger(proxy) }

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

// Message is what Receive returns: either a request, which is owed exactly
// one of Reply, ReplyError or Relay, or a proxy, which is owed nothing. It
// is a small value; copies refer to the same request. Safe for concurrent
// use.
type Message struct {
	req   transport.Request
	proxy int
}

// Proxy is the proxy value (1 or more) when the message is a Trigger, and
// 0 for a request.
func (m Message) Proxy() int { return m.proxy }

// IsProxy reports whether the message is a Trigger.
func (m Message) IsProxy() bool { return m.proxy > 0 }

// Data is the request's bytes, valid until the message is answered: a copy
// for a request that came through FIFOs, a view of the sender's shared
// memory, read in place, for one that came through shm. Keep a copy to use
// it later. Nil for a proxy.
func (m Message) Data() []byte {
	if m.req == nil {
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
	if m.req == nil {
		return errProxyAnswer
	}
	return m.req.Reply(data)
}

// ReplyError answers the request with a failure: the sender's Send returns
// ErrRejected.
func (m Message) ReplyError() error {
	if m.req == nil {
		return errProxyAnswer
	}
	return m.req.ReplyError()
}

// Relay hands the request to the receiver behind to, which answers the
// original sender; this process owes it nothing more. A request that came
// through FIFOs is handed over whole, as C SIMPL does, and the third
// process replies to the sender directly. A request that came through
// shared memory is forwarded: a goroutine of this process sends it on
// (under this Channel's name) and passes the answer back, so this process
// must stay up until then.
func (m Message) Relay(to *Conn) error {
	if m.req == nil {
		return errProxyAnswer
	}
	err := m.req.Relay(to.tc)
	if !errors.Is(err, transport.ErrNotSupported) {
		return err
	}
	go forward(m.req, to)
	return nil
}

func forward(req transport.Request, to *Conn) {
	buf := make([]byte, req.MaxReply())
	n, err := to.Send(context.Background(), req.Data(), buf)
	switch {
	case err == nil:
		req.Reply(buf[:n])
	case errors.Is(err, transport.ErrRejected):
		req.ReplyError()
	default:
		req.Abort()
	}
}

var errProxyAnswer = fmt.Errorf("%w: a proxy is not answered", transport.ErrBadProxy)
