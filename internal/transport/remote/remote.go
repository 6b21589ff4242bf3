// Package remote is the transport that reaches names on other hosts
// ("host:NAME", "protocol:host:NAME" whose host is not this one): a Conn
// hands each Send, Trigger and Locate to this host's gateway (fcgate, the
// SIMPL name netwire.GatewayName) over shared memory, as a netwire
// Envelope, and the gateways carry it over NATS to the receiving host.
// The program needs no network configuration: the gateway has it. (Or a
// program goes straight to NATS: simpl/netdirect runs a gateway of its
// own in the process, SetStarter.)
//
// It receives nothing itself: requests from other hosts reach a receiver
// as Sends from its host's gateway. Until a remote name is located it
// starts nothing (no goroutine, no descriptor), so programs that never use
// one pay nothing for it.
package remote

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// Name is the remote transport's name.
const Name = "net"

// Transport is the remote transport, as registered with the transport
// package: Rank 50 (its Listen does nothing; the FIFO transport stays the
// last, which publishes names), and Remote.
type Transport struct{}

func init() { transport.Register(Transport{}) }

// Name is "net".
func (Transport) Name() string { return Name }

// Rank is 50.
func (Transport) Rank() int { return 50 }

// Remote is true: Locate dials other hosts' names through this transport.
func (Transport) Remote() bool { return true }

// Listen returns an endpoint that dials remote names as cfg.Name.
func (Transport) Listen(cfg transport.Config) (transport.Endpoint, error) {
	return &Endpoint{cfg: cfg}, nil
}

// triggerTimeout bounds a Trigger's hand-over to the gateway.
const triggerTimeout = 2 * time.Second

// Endpoint dials remote names for one attached name. Safe for concurrent
// use; Close is idempotent and ends Sends in progress with ErrClosed.
type Endpoint struct {
	cfg transport.Config

	mu     sync.Mutex
	closed bool
	conns  map[*Conn]struct{}
}

// Dial connects to the remote name p.Name through this host's gateway and
// asks the receiving host whether a live process holds it (within ctx):
// ErrNotFound if none does, as C SIMPL's name_locate says "cannot locate
// remote process".
func (e *Endpoint) Dial(ctx context.Context, p transport.Peer) (transport.Conn, error) {
	if p.Name.Local() {
		return nil, errs.Errorf("local name %q: %w", p.Name, transport.ErrUnreachable)
	}
	gw, err := e.dialGateway(ctx)
	if err != nil {
		return nil, errs.Errorf("locate %q: %w", p.Name, err)
	}
	c := &Conn{ep: e, gw: gw, target: p.Name, text: p.Name.String()}
	// Known to the endpoint before the exchange, so that Close ends it.
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		gw.Close()
		return nil, errs.Errorf("locate from %q: %w", e.cfg.Name, transport.ErrClosed)
	}
	if e.conns == nil {
		e.conns = make(map[*Conn]struct{})
	}
	e.conns[c] = struct{}{}
	e.mu.Unlock()
	if _, err := c.exchange(ctx, netwire.Envelope{Kind: netwire.KindLocate}, nil); err != nil {
		c.Close()
		if e.isClosed() {
			return nil, errs.Errorf("locate from %q: %w", e.cfg.Name, transport.ErrClosed)
		}
		return nil, err
	}
	return c, nil
}

// A Starter starts, within ctx, a gateway of this process's own for the
// FIFO directory dir (once per directory; later calls return the same)
// and returns the name it attached there. See SetStarter.
type Starter func(ctx context.Context, dir string) (name string, err error)

var starter atomic.Pointer[Starter]

// SetStarter has every remote name of this process reached through the
// gateway s starts in the process (simpl/netdirect: straight to NATS)
// instead of the host's gateway. It is set once, before the first remote
// name is located.
func SetStarter(s Starter) { starter.Store(&s) }

// dialGateway connects to this host's gateway over shared memory, or to
// this process's own (SetStarter).
func (e *Endpoint) dialGateway(ctx context.Context) (transport.Conn, error) {
	name := netwire.GatewayName
	if s := starter.Load(); s != nil {
		n, err := (*s)(ctx, e.cfg.Registry.Dir())
		if err != nil {
			return nil, errs.Errorf("straight to NATS: %w", err)
		}
		name = n
	}
	ent, err := e.cfg.Registry.Lookup(name)
	if errors.Is(err, naming.ErrNotFound) {
		return nil, errs.Errorf("no gateway runs on this host (start fcgate) in %s: %w", e.cfg.Registry.Dir(), transport.ErrUnreachable)
	}
	if err != nil {
		return nil, err
	}
	c, err := shm.Dial(ctx, shm.Address(e.cfg.Registry.Dir(), ent.Name, ent.PID), ent.PID, e.cfg.Name, shm.Options{NoSpin: e.cfg.NoSpin, MaxMessage: netwire.MaxEnvelope})
	if err != nil {
		return nil, errs.Errorf("the gateway (pid %d): %w", ent.PID, err)
	}
	return c, nil
}

// isClosed reports whether Close was called.
func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// Close ends the Conns dialled, and dials under way, with ErrClosed.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	conns := e.conns
	e.conns = nil
	e.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	return nil
}

// Conn is a remote receiver, reached through the gateway. Safe for
// concurrent use (Sends go out on lanes of their own); Close is
// idempotent.
type Conn struct {
	ep     *Endpoint
	gw     transport.Conn
	target naming.Name
	text   string // target.String()
	trig   atomic.Pointer[triggerCtx]
	once   sync.Once
	// oldGateway: the gateway refused an envelope with a sent time (one
	// built before it), so none has one any more.
	oldGateway atomic.Bool
}

// buffers holds the byte slices exchange encodes requests into and takes
// answers in, so that a steady Send allocates nothing; each slice grows
// to the largest message it has carried. A slice larger than keepLimit
// is left to the collector rather than kept.
var buffers = sync.Pool{New: func() any { return new([]byte) }}

const keepLimit = 64 << 10

// buffer returns a pooled slice of length n.
func buffer(n int) *[]byte {
	b := buffers.Get().(*[]byte)
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return b
}

// release returns b to the pool, unless it is too large to keep.
func release(b *[]byte) {
	if cap(*b) <= keepLimit {
		buffers.Put(b)
	}
}

var _ transport.Conn = (*Conn)(nil)

// Send hands req to the gateway for the remote receiver and waits for its
// answer; ctx's deadline travels with the request, so every host on the
// way gives up when this Send does. A gateway that exits holding the
// request leaves its outcome unknown (ErrOutcomeUnknown, with
// ErrPeerGone): it was delivered at most once.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	if len(req) > netwire.MaxPayload {
		// Said here, with both sizes, rather than by the gateway,
		// which takes envelopes only a little larger.
		return 0, errs.Errorf("send %q: %w", c.target, transport.TooLarge(len(req), netwire.MaxPayload))
	}
	return c.exchange(ctx, netwire.Envelope{Kind: netwire.KindSend, MaxReply: len(reply), Payload: req}, reply)
}

// Trigger hands the proxy to the gateway, which answers once it has sent
// it on; it waits for that at most triggerTimeout.
func (c *Conn) Trigger(proxy int) error {
	if proxy < 1 {
		return errs.Errorf("%w: %d (must be 1 or more)", transport.ErrBadProxy, proxy)
	}
	_, err := c.exchange(c.triggerContext(), netwire.Envelope{Kind: netwire.KindTrigger, Proxy: proxy}, nil)
	return err
}

// triggerCtx is a context Triggers bound their hand-over with, and its
// deadline.
type triggerCtx struct {
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

// triggerContext returns the context a Trigger waits within: one made
// with a deadline triggerTimeout away, shared by every Trigger until less
// than half of that is left, so that a steady Trigger allocates nothing
// (a context with a deadline costs a timer and a channel: a new one each
// time was 8 allocations). A Trigger so waits at least triggerTimeout/2
// and at most triggerTimeout. A context given up is left to its timer,
// as Triggers may still wait on it; Close cancels the last.
func (c *Conn) triggerContext() context.Context {
	now := time.Now()
	if t := c.trig.Load(); t != nil && t.deadline.Sub(now) >= triggerTimeout/2 {
		return t.ctx
	}
	d := now.Add(triggerTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), d)
	c.trig.Store(&triggerCtx{ctx: ctx, cancel: cancel, deadline: d})
	return ctx
}

// exchange sends env (its target and timeout filled in here) to the
// gateway and copies the reply into reply.
func (c *Conn) exchange(ctx context.Context, env netwire.Envelope, reply []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	env.Target = c.target
	if d, ok := ctx.Deadline(); ok {
		env.Timeout = max(time.Until(d), 1)
		if !c.oldGateway.Load() {
			env.Sent = sys.MonoNow() // the gateway counts its queue's wait against the deadline
		}
	}
	n, err := c.exchangeOnce(ctx, env, reply)
	if errors.Is(err, errOldGateway) {
		// Refused unread, so never carried: again, as the gateway
		// reads envelopes, with the time left now.
		c.oldGateway.Store(true)
		env.Sent = 0
		if d, ok := ctx.Deadline(); ok {
			env.Timeout = max(time.Until(d), 1)
		}
		return c.exchangeOnce(ctx, env, reply)
	}
	return n, err
}

// errOldGateway is exchangeOnce's error for an envelope with a sent time
// that the gateway refused as bad: a gateway built before the sent field.
var errOldGateway = errors.New("simpl: the gateway takes no sent time")

// exchangeOnce is one exchange of env, ready to send, with the gateway.
func (c *Conn) exchangeOnce(ctx context.Context, env netwire.Envelope, reply []byte) (int, error) {
	mb := buffer(0)
	defer release(mb)
	msg, err := netwire.AppendEnvelopeTo((*mb)[:0], &env, c.text)
	*mb = msg
	if err != nil {
		return 0, errs.Errorf("%s %q: %w", env.Kind, c.target, err)
	}
	bb := buffer(netwire.ReplyHeaderSize + len(reply))
	defer release(bb)
	buf := *bb
	// Across the network a queued request cannot be told from a taken
	// one: an UntilTaken context is not ours to act on for the envelope
	// (transport.WithoutUntilTaken).
	n, err := c.gw.Send(transport.WithoutUntilTaken(ctx), msg, buf)
	if err != nil {
		if errors.Is(err, transport.ErrPeerGone) && env.Kind != netwire.KindLocate {
			err = errs.Errorf("%w: the host's gateway: %w", transport.ErrOutcomeUnknown, err)
		}
		return 0, errs.Errorf("%s %q: %w", env.Kind, c.target, err)
	}
	status, detail, r, err := netwire.DecodeReply(buf[:n])
	if err == nil && len(r) > len(reply) {
		err = errs.Errorf("%w: a reply of %d bytes for a buffer of %d", transport.ErrBadMessage, len(r), len(reply))
	}
	if err != nil {
		return 0, errs.Errorf("%s %q: the gateway's answer: %w", env.Kind, c.target, err)
	}
	if status == netwire.StatusBadMessage && detail == 0 && env.Sent != 0 {
		// The gateway could not read the envelope (BadMessageCarried
		// would be anything later, which may follow a delivery).
		return 0, errOldGateway
	}
	if err := status.Err(detail); err != nil {
		return 0, errs.Errorf("%s %q: %w", env.Kind, c.target, err)
	}
	return copy(reply, r), nil
}

// Buffer is a request area of ordinary memory: remote requests are copied
// on their way anyway.
func (c *Conn) Buffer(ctx context.Context, size int) (transport.Buffer, error) {
	return transport.NewCopyBuffer(c, size)
}

// PID is 0: the receiver is on another host.
func (c *Conn) PID() int { return 0 }

// Transport is "net".
func (c *Conn) Transport() string { return Name }

// Close releases the connection to the gateway.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.ep.mu.Lock()
		delete(c.ep.conns, c)
		c.ep.mu.Unlock()
		c.gw.Close()
		if t := c.trig.Load(); t != nil {
			t.cancel()
		}
	})
	return nil
}
