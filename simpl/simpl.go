package simpl

import (
	"context"
	"fmt"
	"os"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/fifo"
)

// ProxyShutdown is the proxy value C SIMPL programs use to ask a receiver
// to stop.
const ProxyShutdown = 0x7FFFFFFF

// Option configures Attach.
type Option func(*options)

type options struct {
	dir    string
	perm   os.FileMode
	maxMsg int
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
	ep *fifo.Endpoint
}

// Attach attaches name to this process (C SIMPL's name_attach). A process
// may attach several names, each its own Channel. It fails with
// ErrNameInUse if a live process holds the name; a dead owner's FIFOs are
// removed and the name is taken over.
func Attach(name string, opts ...Option) (*Channel, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg, err := naming.Open(o.dir)
	if err != nil {
		return nil, err
	}
	ep, err := fifo.Attach(name, fifo.Options{Registry: reg, Perm: o.perm, MaxMessage: o.maxMsg})
	if err != nil {
		return nil, err
	}
	return &Channel{ep: ep}, nil
}

// Name is the attached name.
func (c *Channel) Name() string { return c.ep.Name() }

// Receive waits for the next message or proxy (C SIMPL's Receive). It
// returns ctx.Err() when ctx ends and an error wrapping ErrClosed once the
// Channel is closed.
func (c *Channel) Receive(ctx context.Context) (Message, error) {
	req, proxy, err := c.ep.Receive(ctx)
	if err != nil {
		return Message{}, err
	}
	return Message{req: req, proxy: proxy}, nil
}

// Locate finds the process that attached name and returns a connection to
// it (C SIMPL's name_locate). Sends on it go out under this Channel's name.
func (c *Channel) Locate(name string) (*Conn, error) {
	tc, err := c.ep.Locate(name)
	if err != nil {
		return nil, err
	}
	return &Conn{tc: tc, name: name, pid: tc.PID()}, nil
}

// Close detaches the name (C SIMPL's name_detach): its FIFOs are removed,
// waiting Receives and this Channel's own Sends return ErrClosed, and every
// sender still waiting on this Channel gets ErrPeerGone.
func (c *Channel) Close() error { return c.ep.Close() }

// Conn is a connection to a located receiver. Safe for concurrent use.
type Conn struct {
	tc   transport.Conn
	name string
	pid  int
}

// Name is the name that was located.
func (c *Conn) Name() string { return c.name }

// PID is the receiver's process id.
func (c *Conn) PID() int { return c.pid }

// Send sends req and blocks until the receiver answers, then copies the
// reply into reply and returns its size. A reply larger than reply fails
// with ErrReplyTooLarge (nothing is truncated); ReplyError on the other side
// is ErrRejected; a receiver that detaches first is ErrPeerGone. When ctx
// ends first Send returns ctx.Err(); the receiver's late answer is then
// discarded.
func (c *Conn) Send(ctx context.Context, req, reply []byte) (int, error) {
	return c.tc.Send(ctx, req, reply)
}

// Trigger sends proxy (1 or more) and returns without waiting; the
// receiver's Receive returns a Message whose Proxy is proxy.
func (c *Conn) Trigger(proxy int) error { return c.tc.Trigger(proxy) }

// Close releases the connection.
func (c *Conn) Close() error { return c.tc.Close() }

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

// Data is the request's bytes: a copy owned by the Message, valid until the
// message is answered or the Channel closed. Nil for a proxy.
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
// original sender directly; this process owes it nothing more.
func (m Message) Relay(to *Conn) error {
	if m.req == nil {
		return errProxyAnswer
	}
	return m.req.Relay(to.tc)
}

var errProxyAnswer = fmt.Errorf("%w: a proxy is not answered", transport.ErrBadProxy)
