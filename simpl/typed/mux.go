package typed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
)

// Mux routes typed requests to handlers by their type tag and answers
// them. Register handlers with Handle and HandleProxy, then run Serve (or
// hand it messages from your own Receive loop with ServeMessage). Safe for
// concurrent use: handlers may be added while it serves, and one Mux may
// serve several Channels at once.
type Mux struct {
	lim Limits
	log func(error)

	mu       sync.Mutex // serialises registrations
	handlers atomic.Pointer[map[string]handler]
	proxy    atomic.Pointer[func(context.Context, int)]
}

// handler decodes payload, runs the user's handler and answers m.
type handler func(ctx context.Context, mux *Mux, c *codec, payload []byte, m simpl.Message)

// MuxOption configures NewMux.
type MuxOption func(*Mux)

// WithLimits bounds the requests the Mux decodes (DefaultMaxRequest and
// DefaultMaxDepth where zero). A larger request is answered with
// CodeTooLarge, a deeper one with CodeBadMessage, before any handler
// runs. Give the Channel simpl.WithMaxMessage too, so that the transport
// refuses what the Mux would refuse without taking it in.
func WithLimits(l Limits) MuxOption { return func(m *Mux) { m.lim = l } }

// WithLogger sets where the Mux reports, at level Error, what no client
// is told: a handler's panic with its stack, a reply that failed to go
// out (except that its sender gave up or the Channel closed), a proxy
// handler's panic. The default is slog.Default(); nil discards.
func WithLogger(l *slog.Logger) MuxOption { return func(m *Mux) { m.log = logTo(l) } }

// logTo is the Mux's report function for l.
func logTo(l *slog.Logger) func(error) {
	if l == nil {
		return func(error) {}
	}
	return func(err error) { l.Error("typed: a failure no client is told of", "err", err) }
}

// NewMux returns a Mux with no handlers.
func NewMux(opts ...MuxOption) *Mux {
	mux := &Mux{log: logTo(slog.Default())}
	for _, o := range opts {
		o(mux)
	}
	mux.lim = mux.lim.withDefaults(DefaultMaxRequest)
	empty := map[string]handler{}
	mux.handlers.Store(&empty)
	return mux
}

// Handle registers h for requests of type Req, answered with a Rep. The
// Mux decodes each request, calls h from one of Serve's workers, and
// answers with h's Rep, or with an error reply when h returns an error
// (an *Error keeps its code; any other error is sent as CodeFailed with
// its text) or panics (CodeInternal; the panic goes to the error log).
//
// ctx is derived from the one Serve runs in: it ends when the server
// stops, and Serve waits for h to return. m is the request itself, for
// Sender and Cred; h must not answer it, unless it returns ErrDeferred:
// then the Mux does not answer, and h (or whatever h handed m to) must
// answer later, from any goroutine, with Reply or ReplyError. Deferred
// messages do not hold a worker.
//
// Handle panics if Req or Rep has no usable tag (with an error wrapping
// ErrBadTag) or if Req's tag already has a handler.
func Handle[Req, Rep Tagged](mux *Mux, h func(ctx context.Context, req Req, m simpl.Message) (Rep, error)) {
	reqTag, err := tagOf[Req]()
	if err != nil {
		panic(err)
	}
	repTag, err := tagOf[Rep]()
	if err != nil {
		panic(err)
	}
	mux.add(reqTag, func(ctx context.Context, mux *Mux, c *codec, payload []byte, m simpl.Message) {
		var req Req
		if err := c.decode(payload, mux.lim.MaxDepth, &req); err != nil {
			mux.fail(c, m, &Error{Code: CodeBadMessage, Message: err.Error()})
			return
		}
		rep, p, err := run(ctx, h, req, m)
		switch {
		case p != nil:
			mux.log(errs.Errorf("typed: handler for %q panicked: %v\n%s", reqTag, p.val, p.stack))
			mux.fail(c, m, &Error{Code: CodeInternal, Message: fmt.Sprintf("handler for %q panicked", reqTag)})
		case errors.Is(err, ErrDeferred):
		case err != nil:
			mux.fail(c, m, err)
		default:
			if err := c.encode(kindReply, repTag, rep); err != nil {
				mux.log(err)
				mux.fail(c, m, &Error{Code: CodeInternal, Message: fmt.Sprintf("reply %q did not encode", repTag)})
				return
			}
			mux.answer(m, c.out.b)
		}
	})
}

type panicked struct {
	val   any
	stack []byte
}

// run calls h, turning a panic into p.
func run[Req, Rep Tagged](ctx context.Context, h func(context.Context, Req, simpl.Message) (Rep, error), req Req, m simpl.Message) (rep Rep, p *panicked, err error) {
	defer func() {
		if r := recover(); r != nil {
			p = &panicked{val: r, stack: debug.Stack()}
		}
	}()
	rep, err = h(ctx, req, m)
	return rep, nil, err
}

func (mux *Mux) add(tag string, h handler) {
	mux.mu.Lock()
	defer mux.mu.Unlock()
	old := *mux.handlers.Load()
	if _, ok := old[tag]; ok {
		panic(fmt.Sprintf("simpl: typed: a second handler for type %q", tag))
	}
	m := make(map[string]handler, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[tag] = h
	mux.handlers.Store(&m)
}

// HandleProxy sets the handler for proxies (simpl.Conn.Trigger), called
// with the proxy's value from a worker. Without one, proxies are dropped.
func (mux *Mux) HandleProxy(h func(ctx context.Context, proxy int)) {
	mux.proxy.Store(&h)
}

// ServeOption configures Serve.
type ServeOption func(*serveConfig)

type serveConfig struct{ workers int }

// WithWorkers sets how many requests Serve handles at once (the default is
// GOMAXPROCS). Serve receives only when a worker is free, so a server
// whose workers are all busy leaves its senders waiting in the transport,
// as a busy QNX server does.
func WithWorkers(n int) ServeOption { return func(c *serveConfig) { c.workers = n } }

// Serve receives messages on ch and handles them on a pool of workers,
// each answering from its own goroutine, so replies go out in the order
// handlers finish, not the order requests came. It returns when ctx ends
// (ctx.Err()) or Receive fails (an error wrapping simpl.ErrClosed once ch
// is closed), after every handler it started has returned. Handlers get a
// context derived from ctx that also ends when Serve stops because Receive
// failed, so they see the shutdown either way.
//
// Requests that are not typed messages, in an unknown wire version, over
// the size limit, of an unknown type or that do not decode are answered
// with an error reply (see Code) and Serve goes on.
func (mux *Mux) Serve(ctx context.Context, ch *simpl.Channel, opts ...ServeOption) error {
	cfg := serveConfig{workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&cfg)
	}
	// Each idle worker waits in Receive and handles what it receives
	// itself: no hand-off between goroutines on a message's way. The
	// first Receive to fail stops the others.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range max(cfg.workers, 1) {
		wg.Go(func() {
			c := getCodec()
			defer putCodec(c)
			for {
				err := ctx.Err() // Receive may take a waiting message first
				var m simpl.Message
				if err == nil {
					m, err = ch.Receive(ctx)
				}
				if err != nil {
					once.Do(func() { first = err })
					cancel()
					return
				}
				mux.serve(ctx, c, m)
			}
		})
	}
	wg.Wait()
	return first
}

// ServeMessage handles one message received by your own loop, in the
// calling goroutine, exactly as Serve would: it decodes it, runs its
// handler and answers it (unless the handler deferred the answer).
func (mux *Mux) ServeMessage(ctx context.Context, m simpl.Message) {
	c := getCodec()
	defer putCodec(c)
	mux.serve(ctx, c, m)
}

func (mux *Mux) serve(ctx context.Context, c *codec, m simpl.Message) {
	if m.Proxy() > 0 {
		if h := mux.proxy.Load(); h != nil {
			mux.runProxy(ctx, *h, m.Proxy())
		}
		return
	}
	data := m.Data()
	if len(data) > mux.lim.MaxSize {
		mux.fail(c, m, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("request of %d bytes, the limit is %d", len(data), mux.lim.MaxSize)})
		return
	}
	// Decode a copy: through shared memory Data is the sender's own
	// memory, which a hostile sender could rewrite between validation
	// and decoding.
	c.in = append(c.in[:0], data...)
	h, payload, err := parseHeader(c.in)
	switch {
	case errors.Is(err, ErrVersion):
		mux.fail(c, m, &Error{Code: CodeVersion, Message: fmt.Sprintf("wire version %d is not spoken here; this server speaks %d", h.version, WireVersion)})
		return
	case err != nil:
		mux.fail(c, m, &Error{Code: CodeBadMessage, Message: err.Error()})
		return
	case h.kind != kindRequest:
		mux.fail(c, m, &Error{Code: CodeBadMessage, Message: fmt.Sprintf("a %s sent as a request", h.kind)})
		return
	}
	hd, ok := (*mux.handlers.Load())[string(h.tag)]
	if !ok {
		mux.fail(c, m, &Error{Code: CodeUnknownType, Message: fmt.Sprintf("no handler for type %q", h.tag)})
		return
	}
	hd(ctx, mux, c, payload, m)
}

func (mux *Mux) runProxy(ctx context.Context, h func(context.Context, int), proxy int) {
	defer func() {
		if r := recover(); r != nil {
			mux.log(errs.Errorf("typed: proxy handler panicked on proxy %d: %v\n%s", proxy, r, debug.Stack()))
		}
	}()
	h(ctx, proxy)
}

// fail answers m with an error reply.
func (mux *Mux) fail(c *codec, m simpl.Message, err error) {
	if err := c.encodeError(err, m.MaxReply()); err != nil {
		mux.log(err)
		m.ReplyError()
		return
	}
	mux.answer(m, c.out.b)
}

// answer sends a reply, logging a failure nobody else will hear of (a
// reply too large for the sender's buffer is not one: the sender's Call
// fails with it, and may ask again with a larger one, as the locator's
// Client does).
func (mux *Mux) answer(m simpl.Message, b []byte) {
	err := m.Reply(b)
	if err == nil || errors.Is(err, simpl.ErrPeerGone) || errors.Is(err, simpl.ErrClosed) || errors.Is(err, simpl.ErrReplyTooLarge) {
		return
	}
	name, pid := m.Sender()
	mux.log(errs.Errorf("typed: reply to %s (pid %d): %w", name, pid, err))
}
