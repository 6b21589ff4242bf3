package transport

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/errs"
	"os"
	"slices"
	"sync"

	"github.com/gosimpl/gosimpl/naming"
)

// Transport is one way of moving messages between processes, registered
// with Register. simpl starts an Endpoint on every registered transport
// when a name is attached, and Locate dials them in Rank order until one
// reaches the receiver. Implementations are safe for concurrent use.
type Transport interface {
	// Name is the transport's short name ("fifo", "shm"), as
	// simpl.WithTransport and GOSIMPL_TRANSPORT spell it.
	Name() string
	// Rank orders the transports: Listen runs in increasing Rank and
	// Close in decreasing, and Dial is tried in increasing Rank. The
	// transport ranked last publishes the name in the registry (the FIFO
	// transport), so a sender who finds the name finds every other
	// transport already listening; it listens on every Channel.
	Rank() int
	// Listen starts receiving for the attached name cfg.Name: requests
	// and proxies go to cfg.Queue.
	Listen(cfg Config) (Endpoint, error)
}

// Remote is implemented by a Transport that reaches receivers on other
// hosts: names with a host part that is not this host's. Locate dials a
// remote name only through such transports, and a local name only
// through the others.
type Remote interface {
	Transport
	// Remote is true.
	Remote() bool
}

// IsRemote tells whether t reaches other hosts (see Remote).
func IsRemote(t Transport) bool {
	r, ok := t.(Remote)
	return ok && r.Remote()
}

// Config is what Listen is given.
type Config struct {
	// Name is the attached name; it is also the identity Sends from this
	// endpoint go out under.
	Name string
	// Registry is the FIFO directory the name lives in.
	Registry *naming.Registry
	// Queue is where the endpoint delivers what it receives.
	Queue *Queue
	// Perm decides who may send, like a file mode: the owner always (and
	// root); the group when 0o060 is set; everyone when 0o006 is set.
	Perm os.FileMode
	// MaxMessage is the largest request accepted; a larger one fails for
	// its sender with ErrTooLarge.
	MaxMessage int
	// NoSpin makes waits sleep at once instead of spinning first.
	NoSpin bool
	// Priority makes Sends from the endpoint carry the sending thread's
	// scheduling priority where the transport can (Prio), and raise the
	// receiver's serving thread to it while they wait (see
	// Queue.PublishServer).
	Priority bool
	// ThreadWait makes a Send wait for its answer in a system call on the
	// calling thread, where the transport would otherwise park its
	// goroutine in Go's poller (the shared-memory transport waits on the
	// calling thread in any case). For callers locked to their threads:
	// Go hands a woken locked goroutine to its thread through another
	// thread.
	ThreadWait bool
	// ThreadReceive makes a Receive read the transport's input, and wait
	// for it, on the calling thread, where a goroutine would otherwise
	// read it and post to the Queue (the transport is then the Queue's
	// Feeder): a request wakes the receiving thread and nothing else.
	ThreadReceive bool
}

// Endpoint is one attached name on one transport: it delivers what
// arrives to its Config.Queue and connects to receivers under the name.
// Safe for concurrent use; Close is idempotent.
type Endpoint interface {
	// Dial connects to the receiver p as this endpoint's name. It fails
	// with ErrUnreachable when p does not speak this transport (a C SIMPL
	// receiver has no shared-memory transport, say), and the next
	// transport is tried.
	Dial(ctx context.Context, p Peer) (Conn, error)
	// Close detaches: nothing more is delivered, every request delivered
	// and not answered fails for its sender with ErrPeerGone, and Sends
	// in progress from this endpoint return ErrClosed.
	Close() error
}

// Peer is a receiver to dial: its name as located and, for a name on
// this host, the registry entry of its live owner.
type Peer struct {
	Name  naming.Name
	Entry naming.Entry // zero for a remote name
}

// Conn is a connection to one receiver. Safe for concurrent use; Close is
// idempotent.
type Conn interface {
	// Send delivers req and waits for the answer, copied into reply; it
	// returns the reply's size. A reply larger than reply is
	// ErrReplyTooLarge, never truncated. When ctx ends first Send returns
	// ctx.Err() and the receiver's late answer is discarded.
	Send(ctx context.Context, req, reply []byte) (int, error)
	// Trigger delivers proxy (>= 1) without waiting for anything.
	Trigger(proxy int) error
	// Buffer reserves a request area of size bytes for one sender (see
	// Buffer), setting it up within ctx; transports without one of their
	// own return NewCopyBuffer.
	Buffer(ctx context.Context, size int) (Buffer, error)
	// PID is the receiver's process id (0 when not known).
	PID() int
	// Transport is the name of the transport the Conn belongs to.
	Transport() string
	// Close releases the connection; the receiver is not affected. Sends
	// in progress return ErrClosed.
	Close() error
}

// Buffer is a request area held by one sender for requests built in place
// and replies read in place. Not safe for concurrent use; Close is
// idempotent.
type Buffer interface {
	// Bytes is the area, or nil once closed.
	Bytes() []byte
	// Send sends the first n bytes of Bytes and returns the reply of at
	// most maxReply bytes, in place, valid until Bytes is written again,
	// the next Send, or Close.
	Send(ctx context.Context, n, maxReply int) ([]byte, error)
	Close() error
}

// Unwrap returns the connection c wraps, for a Conn that wraps another
// (with an Unwrap method), else c: a transport that relays natively looks
// for its own Conn through it.
func Unwrap(c Conn) Conn {
	for {
		u, ok := c.(interface{ Unwrap() Conn })
		if !ok {
			return c
		}
		c = u.Unwrap()
	}
}

// ErrUnreachable is what Endpoint.Dial returns for a receiver that does
// not speak its transport; Locate then tries the next one.
var ErrUnreachable = errors.New("simpl: receiver not reachable on this transport")

var (
	regMu      sync.Mutex
	registered []Transport
)

// Register adds t to the transports every Channel uses. It panics if a
// transport of the same name is registered already. Call it from an init
// function.
func Register(t Transport) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, r := range registered {
		if r.Name() == t.Name() {
			panic(fmt.Sprintf("simpl: transport %q registered twice", t.Name()))
		}
	}
	registered = append(registered, t)
	slices.SortStableFunc(registered, func(a, b Transport) int { return a.Rank() - b.Rank() })
}

// Registered returns the registered transports in Rank order.
func Registered() []Transport {
	regMu.Lock()
	defer regMu.Unlock()
	return slices.Clone(registered)
}

// Lookup returns the registered transport called name.
func Lookup(name string) (Transport, bool) {
	for _, t := range Registered() {
		if t.Name() == name {
			return t, true
		}
	}
	return nil, false
}

// copyBuffer is a Buffer in ordinary memory for transports without
// areas of their own: Send copies as Conn.Send does.
type copyBuffer struct {
	c   Conn
	mem []byte
}

// NewCopyBuffer returns a Buffer of size bytes of ordinary memory whose
// Send goes through c.Send.
func NewCopyBuffer(c Conn, size int) (Buffer, error) {
	if size < 0 {
		return nil, errs.Errorf("buffer of %d bytes: %w", size, ErrTooLarge)
	}
	return &copyBuffer{c: c, mem: make([]byte, size)}, nil
}

func (b *copyBuffer) Bytes() []byte { return b.mem }

func (b *copyBuffer) Send(ctx context.Context, n, maxReply int) ([]byte, error) {
	switch {
	case b.mem == nil:
		return nil, errs.Errorf("send from a closed buffer: %w", ErrClosed)
	}
	if err := CheckBuffer(n, maxReply, len(b.mem)); err != nil {
		return nil, err
	}
	// The request reaches the receiver before the reply comes back, so
	// the two may share the area.
	size, err := b.c.Send(ctx, b.mem[:n], b.mem[:maxReply])
	if err != nil {
		return nil, err
	}
	return b.mem[:size], nil
}

func (b *copyBuffer) Close() error {
	b.mem = nil
	return nil
}
