package surrogate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// ProtocolTCP is C SIMPL's name for its TCP surrogates' protocol: a
// name written "_simplTCP:host:NAME" goes to host's surrogateTcp.
const ProtocolTCP = "_simplTCP"

// DefaultPort is C SIMPL's surrogateTcp's port (its -a and -b).
const DefaultPort = 8001

// Defaults of a Client's options.
const (
	DefaultIdle   = 5 * time.Second // an unused connection is closed after this
	locateTimeout = 10 * time.Second
)

// ClientOptions configure a Client.
type ClientOptions struct {
	Encoding   surwire.Encoding
	MaxMessage int // largest request or reply; 0: DefaultMaxMessage
	// KeepAlive is the ALIVE period on every connection, from its
	// connect, whether a Send waits on it or not (C SIMPL's -k); 0:
	// DefaultKeepAlive. It must not be over the peer's own: the peer
	// drops a connection that sends no ALIVE for four of its periods.
	KeepAlive time.Duration
	// Idle is how long an unused connection is kept for the next Send to
	// the same name; 0: DefaultIdle, or two keep-alive periods if less.
	Idle    time.Duration
	MaxIdle int // unused connections kept a name; 0: PerHost
	// PerHost bounds the connections open to one address (so one C SIMPL
	// host, or a gosimpl one's per-peer limit, is not flooded); a Send
	// beyond it waits for one, within its deadline, after unused ones to
	// other names there are closed. 0: DefaultPerPeer.
	PerHost int
	Host    string // this host's name, given in NAME_LOCATE
	Log     func(string)
}

// ClientStats count what a Client did.
type ClientStats struct {
	Dials, Located, NotFound, Sends, Failed, Unknown, Proxies, Reused int64
}

// Client is the connecting side of the bridge to C SIMPL hosts: it plays
// C SIMPL's surrogate_r for this host's senders (through the gateway),
// reaching a receiver on a C SIMPL host through that host's surrogateTcp
// with no change on its side. The protocol has one SEND outstanding per
// connection, so a Client opens a connection per Send in progress to a
// name and keeps a few unused ones for the next. Failures become errors
// within bounds (docs/network.md, C SIMPL hosts): a refused or dropped
// connection at once, a receiver that fails as soon as its host's
// surrogate says so, a peer gone silent after four keep-alive periods
// without an answer, and always the Send's own deadline.
//
// Safe for concurrent use; Close is idempotent and ends every connection
// (their Sends fail).
type Client struct {
	o ClientOptions

	mu     sync.Mutex
	idle   map[string][]*link
	open   map[*link]struct{}
	slots  map[string]*slots // by address, while a connection there is open or awaited
	closed bool

	stats struct{ dials, located, notFound, sends, failed, unknown, proxies, reused atomic.Int64 }
}

// link is one connection to a peer's surrogate, located to one name.
// Once located, two goroutines serve it until it closes: read, which
// reads every frame (an ALIVE_REPLY, the answer to a SEND, the end), and
// keep, which sends ALIVE every keep-alive period from the connect, as
// C SIMPL's surrogate_r does (spec 4.4), Send in progress or not.
type link struct {
	c     net.Conn
	addr  string
	key   string
	timer *time.Timer // closes it when unused for Idle

	wmu    sync.Mutex // a frame at a time: a SEND, an ALIVE, a CLOSE
	broken bool       // under wmu: a write failed part way, no frame may follow

	waiting atomic.Bool         // a SEND waits for its answer
	answer  chan *surwire.Frame // the answer, handed over by read; 1 buffered
	misses  atomic.Int32        // ALIVEs sent since the last ALIVE_REPLY
	done    chan struct{}       // closed when read ends: the link is dead

	errMu sync.Mutex
	err   error // why it ended
}

// fail records why l ended, if nothing did before, and closes it.
func (l *link) fail(err error) {
	l.errMu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.errMu.Unlock()
	l.c.Close()
}

func (l *link) cause() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// errSilent ends a link whose peer answered none of missesAllowed ALIVEs.
var errSilent = fmt.Errorf("no answer to %d keep-alives", missesAllowed)

// NewClient makes a Client.
func NewClient(o ClientOptions) *Client {
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Idle <= 0 {
		// Well inside the peer's window of four keep-alive periods.
		o.Idle = min(DefaultIdle, 2*o.KeepAlive)
	}
	if o.PerHost <= 0 {
		o.PerHost = DefaultPerPeer
	}
	if o.MaxIdle <= 0 {
		// As many as may be open: a connection closed after each Send
		// of many at once is a connect and a locate on the next.
		o.MaxIdle = o.PerHost
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	return &Client{o: o, idle: map[string][]*link{}, open: map[*link]struct{}{}, slots: map[string]*slots{}}
}

// Stats returns the counts so far.
func (cl *Client) Stats() ClientStats {
	t := &cl.stats
	return ClientStats{t.dials.Load(), t.located.Load(), t.notFound.Load(), t.sends.Load(), t.failed.Load(), t.unknown.Load(), t.proxies.Load(), t.reused.Load()}
}

func (cl *Client) log(format string, args ...any) {
	if cl.o.Log != nil {
		cl.o.Log(fmt.Sprintf(format, args...))
	}
}

// errClosed is what a closed Client's calls return.
var errClosed = fmt.Errorf("surrogate client: %w", transport.ErrClosed)

// get is a connection to name at addr, located: an unused one, else a
// new one.
func (cl *Client) get(ctx context.Context, addr, name string) (*link, error) {
	key := addr + "\x00" + name
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil, errClosed
	}
	for n := len(cl.idle[key]); n > 0; n = len(cl.idle[key]) {
		l := cl.idle[key][n-1]
		cl.idle[key] = cl.idle[key][:n-1]
		if !l.timer.Stop() {
			continue // its timer is closing it
		}
		cl.mu.Unlock()
		if l.alive() {
			cl.stats.reused.Add(1)
			return l, nil
		}
		cl.drop(context.Background(), l, false)
		cl.mu.Lock()
	}
	cl.mu.Unlock()
	return cl.dial(ctx, addr, name)
}

// alive checks, without waiting, that an unused connection has not
// ended and that the peer has not closed it (its surrogate exits when its
// receiver goes), even if read has not seen it yet: a Send on it would go
// nowhere, with an outcome it could not tell.
func (l *link) alive() bool {
	select {
	case <-l.done:
		return false
	default:
	}
	sc, ok := l.c.(syscall.Conn)
	if !ok {
		return true
	}
	closed, err := sys.PeerClosed(sc)
	return !closed && err == nil
}

// slots are one address's connection tokens: one per connection open
// there (PerHost at most). users counts the connections holding one and
// the dials waiting for one; at 0 the address is forgotten, so that a
// program sending to ever new addresses does not grow the map.
type slots struct {
	sem   chan struct{}
	users int
}

// slot takes one of addr's PerHost connection tokens, closing an unused
// connection there to another name when none is free, else waiting.
func (cl *Client) slot(ctx context.Context, addr string) error {
	cl.mu.Lock()
	e := cl.slots[addr]
	if e == nil {
		e = &slots{sem: make(chan struct{}, cl.o.PerHost)}
		cl.slots[addr] = e
	}
	e.users++
	cl.mu.Unlock()
	sem := e.sem
	for {
		select {
		case sem <- struct{}{}:
			return nil
		default:
		}
		if l := cl.evict(addr); l != nil {
			cl.drop(ctx, l, true) // gives its token back
			continue
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case sem <- struct{}{}:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			cl.unuse(addr)
			return fmt.Errorf("C SIMPL host at %s: waiting for one of its %d connections: %w", addr, cl.o.PerHost, ctx.Err())
		case <-t.C:
			// Look again for an unused connection to close: one may have
			// been kept since.
		}
	}
}

// evict takes an unused connection to addr out of the idle lists.
func (cl *Client) evict(addr string) *link {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for key, list := range cl.idle {
		if len(list) == 0 || list[0].addr != addr {
			continue
		}
		for i, l := range list {
			if l.timer.Stop() {
				cl.idle[key] = append(list[:i:i], list[i+1:]...)
				return l
			}
		}
	}
	return nil
}

// dial opens a connection to addr's surrogate and locates name there. A
// peer that closes the new connection before answering the locate (a
// gosimpl host at its per-peer limit, which may still count connections
// this side has just closed) is tried twice more, soon: nothing was
// delivered.
func (cl *Client) dial(ctx context.Context, addr, name string) (*link, error) {
	var err error
	for try, wait := 0, 20*time.Millisecond; try < 3; try, wait = try+1, wait*2 {
		var l *link
		if l, err = cl.dialOnce(ctx, addr, name); !errors.Is(err, errRefused) {
			return l, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return nil, err
}

// errRefused marks a connection closed before the locate's answer.
var errRefused = errors.New("closed before answering the locate")

func (cl *Client) dialOnce(ctx context.Context, addr, name string) (*link, error) {
	if err := cl.slot(ctx, addr); err != nil {
		return nil, err
	}
	cl.stats.dials.Add(1)
	lctx, cancel := context.WithTimeout(ctx, locateTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(lctx, "tcp", addr)
	if err != nil {
		cl.release(addr)
		// Nothing was sent: as C SIMPL's "cannot locate remote process".
		return nil, fmt.Errorf("C SIMPL host at %s: %v: %w", addr, err, transport.ErrUnreachable)
	}
	// The keep-alive period runs from the connect (spec 4.4): a tick
	// while the locate waits makes the first ALIVE go at once after it.
	tick := time.NewTicker(cl.o.KeepAlive)
	l := &link{c: c, addr: addr, key: addr + "\x00" + name, answer: make(chan *surwire.Frame, 1), done: make(chan struct{})}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		tick.Stop()
		c.Close()
		cl.release(addr)
		return nil, errClosed
	}
	cl.open[l] = struct{}{}
	cl.mu.Unlock()
	// lctx bounds the locate: its deadline, and its end if ctx is
	// cancelled before.
	dl, _ := lctx.Deadline()
	c.SetDeadline(dl)
	stop := context.AfterFunc(lctx, func() { c.SetDeadline(aLongTimeAgo) })
	var f *surwire.Frame
	b, err := surwire.AppendFrame(nil, cl.o.Encoding, &surwire.Frame{Token: surwire.TokenNameLocate, RHost: hostOf(addr), RProgram: name, SHost: cl.o.Host}, false)
	if err == nil {
		_, err = c.Write(b)
	}
	if err == nil {
		f, err = surwire.ReadFrame(c, cl.o.Encoding, true, 0)
	}
	if !stop() && err == nil {
		err = lctx.Err() // the deadline may be past already: the link is not usable
	}
	c.SetDeadline(time.Time{})
	switch {
	case err != nil:
		tick.Stop()
		close(l.done)
		cl.drop(ctx, l, false)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %w", errRefused, err)
		}
		return nil, fmt.Errorf("C SIMPL host at %s: locating %s: %w: %w", addr, name, err, transport.ErrUnreachable)
	case f.Token != surwire.TokenNameLocate || f.Result != 0:
		tick.Stop()
		close(l.done)
		cl.stats.notFound.Add(1)
		cl.drop(ctx, l, false)
		return nil, fmt.Errorf("%s at the C SIMPL host at %s: %w", name, addr, transport.ErrNotFound)
	}
	cl.stats.located.Add(1)
	go cl.read(l)
	go cl.keep(l, tick)
	return l, nil
}

// aLongTimeAgo is a deadline in the past: set, it ends a read or write
// in progress at once.
var aLongTimeAgo = time.Unix(1, 0)

// read reads l's frames until it ends: it takes each ALIVE_REPLY and
// hands the answer to a SEND waiting to exchange; anything else, and a
// frame when no SEND waits, ends the link. Replies are read up to
// MaxMessage; exchange checks them against what its sender takes.
func (cl *Client) read(l *link) {
	defer close(l.done)
	for {
		f, err := surwire.ReadFrame(l.c, cl.o.Encoding, false, cl.o.MaxMessage)
		switch {
		case err != nil:
			l.fail(err)
			return
		case f.Token == surwire.TokenAliveReply:
			l.misses.Store(0)
		case l.waiting.CompareAndSwap(true, false):
			l.answer <- f
		default:
			l.fail(fmt.Errorf("token %d with no SEND waiting: %w", f.Token, transport.ErrBadMessage))
			return
		}
	}
}

// keep sends ALIVE on l every keep-alive period until it ends; four
// periods without an answer to one end it, as C SIMPL's surrogate_r.
func (cl *Client) keep(l *link, tick *time.Ticker) {
	defer tick.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-tick.C:
		}
		if l.misses.Add(1) > missesAllowed {
			l.fail(errSilent)
			return
		}
		if err := cl.write(context.Background(), l, &surwire.Frame{Token: surwire.TokenAlive}); err != nil {
			l.fail(fmt.Errorf("keep-alive: %w", err))
			return
		}
	}
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// errBroken is write's error on a link where a frame was written part way.
var errBroken = errors.New("a frame before was written part way")

// write writes f on l, within a keep-alive period and ctx (its deadline,
// and its end if it is cancelled before).
func (cl *Client) write(ctx context.Context, l *link, f *surwire.Frame) error {
	b, err := surwire.AppendFrame(nil, cl.o.Encoding, f, false)
	if err != nil {
		return err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.broken {
		return errBroken
	}
	dl := time.Now().Add(cl.o.KeepAlive)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	l.c.SetWriteDeadline(dl)
	stop := context.AfterFunc(ctx, func() { l.c.SetWriteDeadline(aLongTimeAgo) })
	n, err := l.c.Write(b)
	stop()
	if err != nil && n > 0 {
		l.broken = true
	}
	return err
}

// put keeps l unused for the next Send to its name, or closes it.
func (cl *Client) put(l *link) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed || len(cl.idle[l.key]) >= cl.o.MaxIdle {
		go cl.drop(context.Background(), l, true)
		return
	}
	cl.idle[l.key] = append(cl.idle[l.key], l)
	if l.timer == nil {
		l.timer = time.AfterFunc(cl.o.Idle, func() { cl.expire(l) })
	} else {
		l.timer.Reset(cl.o.Idle)
	}
}

// expire closes l, unused for Idle.
func (cl *Client) expire(l *link) {
	cl.mu.Lock()
	list := cl.idle[l.key]
	for i, x := range list {
		if x == l {
			cl.idle[l.key] = append(list[:i:i], list[i+1:]...)
			if len(cl.idle[l.key]) == 0 {
				delete(cl.idle, l.key)
			}
			break
		}
	}
	cl.mu.Unlock()
	cl.drop(context.Background(), l, true)
}

// closeWait bounds drop's CLOSE.
const closeWait = time.Second

// drop closes l; politely says CLOSE first when asked (its peer's
// surrogate then exits at once rather than at its next keep-alive),
// within closeWait and ctx: a ctx already ended says none.
func (cl *Client) drop(ctx context.Context, l *link, polite bool) {
	if polite && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, closeWait)
		cl.write(cctx, l, &surwire.Frame{Token: surwire.TokenClose})
		cancel()
	}
	l.c.Close()
	cl.mu.Lock()
	_, was := cl.open[l]
	delete(cl.open, l)
	cl.mu.Unlock()
	if was {
		cl.release(l.addr)
	}
}

// release gives back one of addr's connection tokens.
func (cl *Client) release(addr string) {
	cl.mu.Lock()
	if e := cl.slots[addr]; e != nil {
		select {
		case <-e.sem:
		default:
		}
	}
	cl.mu.Unlock()
	cl.unuse(addr)
}

// unuse counts one user of addr's tokens gone, forgetting the address
// with its last.
func (cl *Client) unuse(addr string) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if e := cl.slots[addr]; e != nil {
		if e.users--; e.users <= 0 {
			delete(cl.slots, addr)
		}
	}
}

// Locate asks addr's surrogate whether name is there, keeping the
// connection for the Send that usually follows.
func (cl *Client) Locate(ctx context.Context, addr, name string) error {
	l, err := cl.get(ctx, addr, name)
	if err != nil {
		return err
	}
	cl.put(l)
	return nil
}

// Trigger sends name at addr a proxy. The protocol answers none: the
// connection is closed after it, so that a failure there (its ERROR
// frame) cannot be taken for a later Send's.
func (cl *Client) Trigger(ctx context.Context, addr, name string, proxy int) error {
	if proxy < 1 || int64(proxy) > 1<<31-1 {
		return fmt.Errorf("surrogate client: proxy %d: %w", proxy, transport.ErrBadMessage)
	}
	l, err := cl.get(ctx, addr, name)
	if err != nil {
		return err
	}
	cl.stats.proxies.Add(1)
	err = cl.write(ctx, l, &surwire.Frame{Token: surwire.TokenProxy, Proxy: int32(proxy)})
	cl.drop(ctx, l, err == nil)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("C SIMPL host: proxy: %v: %w", err, transport.ErrOutcomeUnknown)
	}
	return nil
}

// Send sends req to name at addr and returns the reply, at most maxReply
// bytes, in reply (whose length is maxReply at least) as n bytes.
func (cl *Client) Send(ctx context.Context, addr, name string, req, reply []byte) (int, error) {
	if len(req) > cl.o.MaxMessage {
		return 0, transport.TooLarge(len(req), cl.o.MaxMessage)
	}
	maxReply := min(len(reply), cl.o.MaxMessage)
	l, err := cl.get(ctx, addr, name)
	if err != nil {
		return 0, err
	}
	cl.stats.sends.Add(1)
	n, err := cl.exchange(ctx, l, req, reply[:maxReply])
	switch {
	case err == nil:
		cl.put(l)
	case errors.Is(err, transport.ErrOutcomeUnknown) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		cl.stats.unknown.Add(1)
		cl.drop(ctx, l, true)
	default:
		cl.stats.failed.Add(1)
		cl.drop(ctx, l, false)
	}
	return n, err
}

// exchange is one SEND and its answer on l, within ctx: l's read hands
// it the answer, and l's keep sends the ALIVEs meanwhile (four periods
// without an answer to one end l, outcome unknown, as C SIMPL's
// surrogate_r does).
func (cl *Client) exchange(ctx context.Context, l *link, req, reply []byte) (int, error) {
	l.waiting.Store(true)
	if err := cl.write(ctx, l, &surwire.Frame{Token: surwire.TokenSend, Data: req, YBytes: int32(len(reply))}); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if d, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
			// The socket's deadline, which is ctx's, came before ctx's
			// own timer went off.
			return 0, context.DeadlineExceeded
		}
		// Part of it may have gone: the peer may act on it.
		return 0, fmt.Errorf("C SIMPL host: writing the request: %v: %w", err, transport.ErrOutcomeUnknown)
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case f := <-l.answer:
		return cl.answer(f, reply)
	case <-l.done:
	}
	// read hands the answer over before it ends: it may have, then
	// ended (C SIMPL's surrogate_s exits after ERROR).
	select {
	case f := <-l.answer:
		return cl.answer(f, reply)
	default:
	}
	switch err := l.cause(); {
	case errors.Is(err, errSilent):
		return 0, fmt.Errorf("C SIMPL host: %v: %w", err, transport.ErrOutcomeUnknown)
	case errors.Is(err, surwire.ErrTooLarge):
		// Larger than this side takes at all; C SIMPL's own
		// surrogate_s would have sent ERROR instead.
		return 0, transport.ReplyTooLarge(-1, len(reply))
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// Its surrogate exited: a dropped connection, or a receiver
		// that died holding the request.
		return 0, fmt.Errorf("C SIMPL host: the connection closed before the reply: %w", transport.ErrOutcomeUnknown)
	default:
		return 0, fmt.Errorf("C SIMPL host: %v: %w", err, transport.ErrOutcomeUnknown)
	}
}

// answer is what exchange returns for f, the answer to its SEND.
func (cl *Client) answer(f *surwire.Frame, reply []byte) (int, error) {
	switch f.Token {
	case surwire.TokenReply:
		if len(f.Data) > len(reply) {
			// Larger than the sender takes; C SIMPL's own surrogate_s
			// would have sent ERROR instead.
			return 0, transport.ReplyTooLarge(len(f.Data), len(reply))
		}
		return copy(reply, f.Data), nil
	case surwire.TokenError:
		// "receive/reply problem ... could be a failed receiver".
		return 0, fmt.Errorf("C SIMPL host: the receiver failed with the request: %w", transport.ErrPeerGone)
	}
	return 0, fmt.Errorf("C SIMPL host: token %d while waiting for a reply: %w", f.Token, transport.ErrBadMessage)
}

// Close ends every connection: Sends in progress fail.
func (cl *Client) Close() error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	cl.closed = true
	var links []*link
	for l := range cl.open {
		links = append(links, l)
	}
	for _, list := range cl.idle {
		for _, l := range list {
			l.timer.Stop()
		}
	}
	cl.idle = nil
	cl.mu.Unlock()
	for _, l := range links {
		l.c.Close()
	}
	return nil
}

// Routes is where a gateway sends requests to C SIMPL hosts: a name
// written with ProtocolTCP goes to its host's surrogateTcp at Port, and a
// name on one of Hosts (host → address:port) whatever its protocol.
// Safe for concurrent use once made.
type Routes struct {
	Client *Client
	Hosts  map[string]string
	Port   int // 0: DefaultPort
}

// Takes says whether n goes to a C SIMPL host.
func (r *Routes) Takes(n naming.Name) bool {
	return n.Host != "" && (n.Protocol == ProtocolTCP || r.Hosts[n.Host] != "")
}

func (r *Routes) addr(n naming.Name) string {
	if a := r.Hosts[n.Host]; a != "" {
		return a
	}
	port := r.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(n.Host, strconv.Itoa(port))
}

// Send sends req to n and returns the reply's size in reply.
func (r *Routes) Send(ctx context.Context, n naming.Name, req, reply []byte) (int, error) {
	return r.Client.Send(ctx, r.addr(n), n.Name, req, reply)
}

// Trigger sends n a proxy.
func (r *Routes) Trigger(ctx context.Context, n naming.Name, proxy int) error {
	return r.Client.Trigger(ctx, r.addr(n), n.Name, proxy)
}

// Locate asks whether n is there.
func (r *Routes) Locate(ctx context.Context, n naming.Name) error {
	return r.Client.Locate(ctx, r.addr(n), n.Name)
}
