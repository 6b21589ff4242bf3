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
	MaxMessage int           // largest request or reply; 0: DefaultMaxMessage
	KeepAlive  time.Duration // ALIVE period while a Send waits (C SIMPL's -k); 0: DefaultKeepAlive
	// Idle is how long an unused connection is kept for the next Send to
	// the same name; 0: DefaultIdle. It must stay below the peer's
	// keep-alive window (four of its periods, 40 s by default), since no
	// ALIVE is sent on an unused connection.
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
type link struct {
	c     net.Conn
	addr  string
	key   string
	timer *time.Timer // closes it when unused for Idle
}

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
		cl.drop(l, false)
		cl.mu.Lock()
	}
	cl.mu.Unlock()
	return cl.dial(ctx, addr, name)
}

// alive checks, without waiting, that the peer has not closed an unused
// connection (its surrogate exits when its receiver goes): a Send on it
// would go nowhere, with an outcome it could not tell.
func (l *link) alive() bool {
	sc, ok := l.c.(syscall.Conn)
	if !ok {
		return true
	}
	unread, err := sys.Unread(sc)
	return !unread && err == nil
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
			cl.drop(l, true) // gives its token back
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
	l := &link{c: c, addr: addr, key: addr + "\x00" + name}
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		c.Close()
		cl.release(addr)
		return nil, errClosed
	}
	cl.open[l] = struct{}{}
	cl.mu.Unlock()
	dl, _ := lctx.Deadline()
	c.SetDeadline(dl)
	err = cl.write(l, &surwire.Frame{Token: surwire.TokenNameLocate, RHost: hostOf(addr), RProgram: name, SHost: cl.o.Host}, false)
	var f *surwire.Frame
	if err == nil {
		f, err = surwire.ReadFrame(c, cl.o.Encoding, true, 0)
	}
	c.SetDeadline(time.Time{})
	switch {
	case err != nil:
		cl.drop(l, false)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: %w", errRefused, err)
		}
		return nil, fmt.Errorf("C SIMPL host at %s: locating %s: %w: %w", addr, name, err, transport.ErrUnreachable)
	case f.Token != surwire.TokenNameLocate || f.Result != 0:
		cl.stats.notFound.Add(1)
		cl.drop(l, false)
		return nil, fmt.Errorf("%s at the C SIMPL host at %s: %w", name, addr, transport.ErrNotFound)
	}
	cl.stats.located.Add(1)
	return l, nil
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func (cl *Client) write(l *link, f *surwire.Frame, reply bool) error {
	b, err := surwire.AppendFrame(nil, cl.o.Encoding, f, reply)
	if err == nil {
		_, err = l.c.Write(b)
	}
	return err
}

// put keeps l unused for the next Send to its name, or closes it.
func (cl *Client) put(l *link) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed || len(cl.idle[l.key]) >= cl.o.MaxIdle {
		go cl.drop(l, true)
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
	cl.drop(l, true)
}

// drop closes l; politely says CLOSE first when asked (its peer's
// surrogate then exits at once rather than at its next keep-alive).
func (cl *Client) drop(l *link, polite bool) {
	if polite {
		l.c.SetWriteDeadline(time.Now().Add(time.Second))
		cl.write(l, &surwire.Frame{Token: surwire.TokenClose}, false)
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
	l.c.SetWriteDeadline(time.Now().Add(cl.o.KeepAlive))
	err = cl.write(l, &surwire.Frame{Token: surwire.TokenProxy, Proxy: int32(proxy)}, false)
	cl.drop(l, err == nil)
	if err != nil {
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
		cl.drop(l, true)
	default:
		cl.stats.failed.Add(1)
		cl.drop(l, false)
	}
	return n, err
}

// exchange is one SEND and its answer on l. While it waits it sends
// ALIVE every keep-alive period; four periods without an answer to one
// end it, outcome unknown, as C SIMPL's surrogate_r does. A goroutine
// reads the frames, so that a keep-alive never interrupts one half read;
// it is gone when exchange returns.
func (cl *Client) exchange(ctx context.Context, l *link, req, reply []byte) (int, error) {
	l.c.SetWriteDeadline(time.Now().Add(cl.o.KeepAlive))
	if err := cl.write(l, &surwire.Frame{Token: surwire.TokenSend, Data: req, YBytes: int32(len(reply))}, false); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		// Part of it may have gone: the peer may act on it.
		return 0, fmt.Errorf("C SIMPL host: writing the request: %v: %w", err, transport.ErrOutcomeUnknown)
	}
	type got struct {
		f   *surwire.Frame
		err error
	}
	frames := make(chan got, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			f, err := surwire.ReadFrame(l.c, cl.o.Encoding, false, len(reply))
			frames <- got{f, err}
			if err != nil || f.Token != surwire.TokenAliveReply {
				return
			}
		}
	}()
	// Whatever ends the wait, the reader is stopped (the connection is
	// then dropped, unless the reply came) before exchange returns.
	defer func() {
		l.c.SetReadDeadline(time.Now())
		for {
			select {
			case <-frames:
			case <-readerDone:
				l.c.SetReadDeadline(time.Time{})
				return
			}
		}
	}()
	tick := time.NewTicker(cl.o.KeepAlive)
	defer tick.Stop()
	misses := 0
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
			if misses++; misses > missesAllowed {
				return 0, fmt.Errorf("C SIMPL host: no answer to %d keep-alives: %w", missesAllowed, transport.ErrOutcomeUnknown)
			}
			l.c.SetWriteDeadline(time.Now().Add(cl.o.KeepAlive))
			if err := cl.write(l, &surwire.Frame{Token: surwire.TokenAlive}, false); err != nil {
				return 0, fmt.Errorf("C SIMPL host: keep-alive: %v: %w", err, transport.ErrOutcomeUnknown)
			}
		case g := <-frames:
			switch {
			case errors.Is(g.err, surwire.ErrTooLarge):
				// Larger than the sender takes; C SIMPL's own
				// surrogate_s would have sent ERROR instead.
				return 0, transport.ReplyTooLarge(-1, len(reply))
			case errors.Is(g.err, io.EOF) || errors.Is(g.err, io.ErrUnexpectedEOF):
				// Its surrogate exited: a dropped connection, or a
				// receiver that died holding the request.
				return 0, fmt.Errorf("C SIMPL host: the connection closed before the reply: %w", transport.ErrOutcomeUnknown)
			case g.err != nil:
				return 0, fmt.Errorf("C SIMPL host: %v: %w", g.err, transport.ErrOutcomeUnknown)
			}
			switch g.f.Token {
			case surwire.TokenReply:
				return copy(reply, g.f.Data), nil
			case surwire.TokenAliveReply:
				misses = 0
			case surwire.TokenError:
				// "receive/reply problem ... could be a failed receiver".
				return 0, fmt.Errorf("C SIMPL host: the receiver failed with the request: %w", transport.ErrPeerGone)
			default:
				return 0, fmt.Errorf("C SIMPL host: token %d while waiting for a reply: %w", g.f.Token, transport.ErrBadMessage)
			}
		}
	}
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
