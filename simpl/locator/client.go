package locator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// Client asks a locator daemon. It locates the daemon when first needed
// and again after the daemon restarts. When no daemon answers (none is
// attached, or it went away), Locate and List read the FIFO directory
// themselves, as LocateDir and ScanDir, and give the same answers; LocateFrom
// and ListFrom say which source answered. A Watch needs the daemon. Safe
// for concurrent use.
type Client struct {
	ch   *simpl.Channel
	name string
	dir  string

	unresponsiveAfter time.Duration // see WithUnresponsiveAfter

	mu   sync.Mutex
	conn *simpl.Conn
	gw   *Client // asks the gateway, for ListHosts and WatchHosts

	replyMax atomic.Int64 // the reply buffer calls start with: grown by a reply too large for it
}

// DefaultUnresponsiveAfter is WithUnresponsiveAfter's default.
const DefaultUnresponsiveAfter = 2 * time.Second

// ErrUnresponsive: the locator is attached but did not answer in time
// (stopped, or stuck); see WithUnresponsiveAfter.
var ErrUnresponsive = errors.New("simpl: locator: no answer in time")

// WithUnresponsiveAfter is how long the locator may take to answer before
// the Client counts it unresponsive (ErrUnresponsive) and treats it as
// gone: a Locate or List then reads the FIFO directory instead, and a
// watch, which gives it d past its own deadline for a held watch (10 s),
// reports it Lost (Event.Err wraps ErrUnresponsive). So a locator that is
// stopped (SIGSTOP) or stuck is handled as one that exited. d <= 0 keeps
// the default, DefaultUnresponsiveAfter.
func WithUnresponsiveAfter(d time.Duration) ClientOption {
	return func(c *Client) {
		if d > 0 {
			c.unresponsiveAfter = d
		}
	}
}

// ClientOption configures NewClient.
type ClientOption func(*Client)

// WithDir is the FIFO directory Locate and List read when no locator
// answers. The default is the directory the Channel was attached in
// (Channel.Dir).
func WithDir(dir string) ClientOption { return func(c *Client) { c.dir = dir } }

// NewClient returns a client that sends through ch to the locator attached
// as name ("" means DefaultName).
func NewClient(ch *simpl.Channel, name string, opts ...ClientOption) *Client {
	if name == "" {
		name = DefaultName
	}
	c := &Client{ch: ch, name: name, dir: ch.Dir(), unresponsiveAfter: DefaultUnresponsiveAfter}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Source says what answered a Client's Locate or List, or gave its error.
type Source uint8

const (
	// FromLocator: the locator daemon.
	FromLocator Source = 1
	// FromDirectory: the FIFO directory, read by the Client itself
	// because no locator was attached or it had gone.
	FromDirectory Source = 2
)

func (s Source) String() string {
	switch s {
	case FromLocator:
		return "locator"
	case FromDirectory:
		return "directory"
	}
	return fmt.Sprintf("source(%d)", uint8(s))
}

// get returns the connection to the daemon, locating it if needed. Its
// errors are the Channel's, unwrapped.
func (c *Client) get(ctx context.Context) (*simpl.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		return c.conn, nil
	}
	conn, err := c.ch.Locate(ctx, c.name)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return conn, nil
}

// Close releases the Client's connections, to the daemon and to the
// gateway (ListHosts, WatchHosts), which it otherwise keeps for its next
// calls as long as its Channel is open. A call after Close locates them
// again. Idempotent; a call in progress on a connection it closes fails
// as if the daemon had gone.
func (c *Client) Close() error {
	c.mu.Lock()
	conn, gw := c.conn, c.gw
	c.conn = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	if gw != nil {
		gw.Close()
	}
	return nil
}

// drop forgets conn after a failure that says the daemon went away.
func (c *Client) drop(conn *simpl.Conn, err error) {
	if !daemonGone(err) {
		return
	}
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
	conn.Close()
}

// daemonGone reports errors after which the daemon must be located again.
func daemonGone(err error) bool {
	var e *typed.Error
	return errors.Is(err, simpl.ErrPeerGone) || errors.Is(err, simpl.ErrNotFound) || errors.Is(err, ErrUnresponsive) ||
		errors.Is(err, simpl.ErrClosed) || (errors.As(err, &e) && e.Code == typed.CodeFailed)
}

// ownClosed reports this process's Channel closed: nothing to retry.
func ownClosed(err error) bool {
	return errors.Is(err, simpl.ErrClosed) && !errors.Is(err, simpl.ErrPeerGone)
}

// MaxReply is the largest reply a Client takes: a list, or a watch's
// first answer, of some 500,000 names. Replies start in a buffer of
// typed.DefaultMaxReply (64 KiB, some 600 names); one larger is asked
// again, once, in a buffer of its size (the request is idempotent: a list,
// or a watch from a position), and the Client starts its next calls
// there.
const MaxReply = 64 << 20

// callWithin calls the daemon through conn, giving it d to answer: past
// that, with ctx still alive, the error wraps ErrUnresponsive.
func callWithin[Req, Rep typed.Tagged](ctx context.Context, c *Client, conn *simpl.Conn, req Req, d time.Duration) (Rep, error) {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	size := max(int(c.replyMax.Load()), typed.DefaultMaxReply)
	rep, err := typed.Call[Req, Rep](cctx, conn, req, typed.WithReplyLimits(typed.Limits{MaxSize: size}))
	var se *simpl.SizeError
	if errors.Is(err, simpl.ErrReplyTooLarge) && errors.As(err, &se) && se.Size > size && se.Size <= MaxReply {
		c.replyMax.Store(int64(se.Size))
		rep, err = typed.Call[Req, Rep](cctx, conn, req, typed.WithReplyLimits(typed.Limits{MaxSize: se.Size}))
	}
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		err = errs.Errorf("%w: locator %q, within %v", ErrUnresponsive, c.name, d)
	}
	return rep, err
}

// ask sends req to the daemon. ok false with no error means that no daemon
// is there to answer: not attached, or gone even after a fresh look.
func ask[Req, Rep typed.Tagged](ctx context.Context, c *Client, req Req) (rep Rep, ok bool, err error) {
	for attempt := 0; ; attempt++ {
		conn, err := c.get(ctx)
		if err != nil {
			if daemonGone(err) && !ownClosed(err) {
				return rep, false, nil
			}
			return rep, false, errs.Errorf("locator %q: %w", c.name, err)
		}
		rep, err = callWithin[Req, Rep](ctx, c, conn, req, c.unresponsiveAfter)
		if err == nil {
			return rep, true, nil
		}
		c.drop(conn, err)
		switch {
		case ctx.Err() != nil || !daemonGone(err):
			return rep, false, c.callErr(err)
		case attempt > 0 || errors.Is(err, ErrUnresponsive):
			// It went away again, or does not answer: the directory does.
			return rep, false, nil
		}
		// The daemon restarted or went since the last call: once more,
		// afresh.
	}
}

// callErr is the error of a call to the daemon that failed with err: the
// daemon's answer about the request, as the sentinel it stands for, or
// else err, saying which daemon, with one "simpl: " (internal/errs).
func (c *Client) callErr(err error) error {
	if r := fromRemote(err); r != err {
		return r
	}
	return errs.Errorf("locator %q: %w", c.name, err)
}

// Locate returns the live owner of name, with its metadata: from the
// locator, or from the FIFO directory when no locator runs. A name with
// no live owner is simpl.ErrNotFound either way.
func (c *Client) Locate(ctx context.Context, name string) (Info, error) {
	info, _, err := c.LocateFrom(ctx, name)
	return info, err
}

// LocateFrom is Locate, and says which source answered.
func (c *Client) LocateFrom(ctx context.Context, name string) (Info, Source, error) {
	rep, ok, err := ask[locateRequest, locateReply](ctx, c, locateRequest{Name: name})
	if ok || err != nil {
		return rep.Info, FromLocator, err
	}
	info, err := LocateDir(c.dir, name)
	return info, FromDirectory, err
}

// List returns the live names matching pattern ("" or "*" for all; shell
// patterns, see Match), sorted by name and pid: from the locator, or from
// the FIFO directory when no locator runs.
func (c *Client) List(ctx context.Context, pattern string) ([]Info, error) {
	infos, _, err := c.ListFrom(ctx, pattern)
	return infos, err
}

// ListFrom is List, and says which source answered.
func (c *Client) ListFrom(ctx context.Context, pattern string) ([]Info, Source, error) {
	rep, ok, err := ask[listRequest, listReply](ctx, c, listRequest{Pattern: pattern})
	if ok || err != nil {
		return rep.Infos, FromLocator, err
	}
	infos, err := ScanDir(c.dir, pattern)
	return infos, FromDirectory, err
}

// Watch follows the names matching pattern. Its first events are the names
// already there (Appeared, with Resync set); then each change as the
// locator sees it. It survives the locator's restart: it locates the new
// instance, compares its snapshot with what it knew, and reports the
// differences as Resync events. While it cannot reach the locator it says
// so, once per outage: a Lost event, then Restored when it reaches it
// again. Next is not safe for concurrent use; Close may be called from
// any goroutine.
func (c *Client) Watch(pattern string) *Watch {
	ctx, cancel := context.WithCancel(context.Background())
	return &Watch{c: c, pattern: pattern, known: make(map[key]Info), ctx: ctx, cancel: cancel}
}

// Watch is a watch on a pattern of names; see Client.Watch.
type Watch struct {
	c       *Client
	pattern string
	epoch   uint64
	next    uint64
	known   map[key]Info
	pending []Event
	lost    bool // Lost was reported, Restored not yet

	// The request in flight, if any. The locator holds a watch request
	// until it has events (up to 10 s), and a request given up on by its
	// caller would keep its lane to the locator busy until then: a Next
	// that returns on its ctx leaves the request running, and the next
	// Next takes its answer rather than sending another. So a watch has
	// at most one request out, however short the deadlines its Next is
	// called with.
	call   *watchCall
	ctx    context.Context // the requests'; ends with Close
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed, and calls' start against Close's wait
	closed bool
	calls  sync.WaitGroup // the requests' goroutines
}

// watchCall is a watch request in flight: done closes when rep and err
// are its answer.
type watchCall struct {
	conn *simpl.Conn
	done chan struct{}
	rep  watchReply
	err  error
}

// retry bounds how often a watch looks for a restarted locator.
const retry = 100 * time.Millisecond

// Next returns the next event, waiting as long as ctx allows.
//
// When the locator cannot be reached (it is not attached yet, or it exited
// or was killed) Next returns a Lost event, with the cause in Event.Err,
// and keeps looking for it every 100 ms on the following calls; when it
// answers again, Next returns a Restored event and then, as Resync events,
// whatever changed meanwhile. Between Lost and Restored the watch hears
// nothing.
//
// Errors:
//   - ctx's, when it ends first. Nothing is lost: the request to the
//     locator stays out, and the next call takes its answer, so Next may
//     be called with deadlines as short as wanted (the watch sends no
//     more requests for it).
//   - simpl.ErrBadName: a bad pattern.
//   - ErrHostsOff (a watch of WatchHosts): the gateway does not follow
//     names across hosts.
//   - simpl.ErrClosed: this process's Channel was closed, or the Watch
//     (Close).
//   - simpl.ErrReplyTooLarge: a snapshot of more than MaxReply bytes.
//
// After any but ctx's, Next fails again (for ErrHostsOff, until the
// gateway follows other hosts again).
func (w *Watch) Next(ctx context.Context) (Event, error) {
	relocated := false
	for len(w.pending) == 0 {
		if err := w.ctx.Err(); err != nil {
			return Event{}, errs.Errorf("locator %q: watch: %w", w.c.name, simpl.ErrClosed)
		}
		if w.call == nil {
			if err := ctx.Err(); err != nil {
				return Event{}, err // no request sent for a call given up already
			}
			conn, err := w.c.get(ctx)
			if err != nil {
				if ev, err, ok := w.failed(ctx, err); ok {
					return ev, err
				}
				continue
			}
			w.start(conn)
		}
		// Its answer if there is one already, even if ctx has ended.
		select {
		case <-w.call.done:
		default:
			select {
			case <-w.call.done:
			case <-ctx.Done():
				return Event{}, ctx.Err()
			case <-w.ctx.Done():
				<-w.call.done
				w.call = nil
				return Event{}, errs.Errorf("locator %q: watch: %w", w.c.name, simpl.ErrClosed)
			}
		}
		call := w.call
		w.call = nil
		if call.err == nil {
			relocated = false
			if w.lost {
				w.lost = false
				w.pending = append(w.pending, Event{Kind: Restored})
			}
			w.take(call.rep)
			continue
		}
		err := call.err
		w.c.drop(call.conn, err)
		if ownClosed(err) && !relocated && ctx.Err() == nil && w.ctx.Err() == nil {
			// The connection was closed here: by another call of the
			// Client that saw the daemon go, or with the Channel,
			// which locating again tells.
			relocated = true
			continue
		}
		if ev, err, ok := w.failed(ctx, err); ok {
			return ev, err
		}
	}
	ev := w.pending[0]
	w.pending = w.pending[1:]
	return ev, nil
}

// start sends the watch's request through conn, in a goroutine of its
// own that records its answer in w.call. It runs until the locator
// answers, or gives it up (ErrUnresponsive, past its wait), or Close.
func (w *Watch) start(conn *simpl.Conn) {
	call := &watchCall{conn: conn, done: make(chan struct{})}
	req := watchRequest{Pattern: w.pattern, Epoch: w.epoch, After: w.next, Wait: defaultWait}
	w.call = call
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		call.err = fmt.Errorf("watch: %w", simpl.ErrClosed)
		close(call.done)
		return
	}
	w.calls.Go(func() {
		defer close(call.done)
		call.rep, call.err = callWithin[watchRequest, watchReply](w.ctx, w.c, conn, req, defaultWait+w.c.unresponsiveAfter)
	})
}

// failed is what Next makes of err, which stopped it reaching the
// locator: an event or an error to return (ok), or nothing when the
// locator is down or restarting, after waiting to look again.
func (w *Watch) failed(ctx context.Context, err error) (ev Event, _ error, ok bool) {
	switch {
	case ctx.Err() != nil:
		return Event{}, ctx.Err(), true
	case w.ctx.Err() != nil:
		return Event{}, errs.Errorf("locator %q: watch: %w", w.c.name, simpl.ErrClosed), true
	case ownClosed(err):
		return Event{}, errs.Errorf("locator %q: %w", w.c.name, err), true
	case !daemonGone(err):
		return Event{}, w.c.callErr(err), true
	case !w.lost:
		w.lost = true // say so, then look again on the next call
		return Event{Kind: Lost, Err: err}, nil, true
	}
	t := time.NewTimer(retry)
	defer t.Stop()
	select { // the locator is down or restarting: look again shortly
	case <-t.C:
		return Event{}, nil, false
	case <-ctx.Done():
		return Event{}, ctx.Err(), true
	case <-w.ctx.Done():
		return Event{}, errs.Errorf("locator %q: watch: %w", w.c.name, simpl.ErrClosed), true
	}
}

// Close ends the watch: the request in flight, if any, is given up (a
// Next waiting on it returns an error wrapping simpl.ErrClosed), and
// every Next after fails so. It returns once the request's goroutine has.
// Idempotent; safe to call while Next runs in another goroutine. A watch
// not closed lets go of its request by itself within the locator's wait
// (10 s) and WithUnresponsiveAfter, or when its Client or Channel is
// closed.
func (w *Watch) Close() error {
	w.mu.Lock()
	w.closed = true
	w.cancel()
	w.mu.Unlock()
	w.calls.Wait()
	return nil
}

// take records a reply: events as they are, a reset as the differences
// between the snapshot and what the watch knew.
func (w *Watch) take(rep watchReply) {
	w.epoch, w.next = rep.Epoch, rep.Next
	if !rep.Reset {
		for _, ev := range rep.Events {
			k := key{ev.Info.Name, ev.Info.PID}
			if ev.Kind == Appeared {
				w.known[k] = ev.Info
			} else {
				delete(w.known, k)
			}
			w.pending = append(w.pending, ev)
		}
		return
	}
	now := make(map[key]Info, len(rep.Snapshot))
	for _, info := range rep.Snapshot {
		now[key{info.Name, info.PID}] = info
	}
	var gone []Info
	for k, info := range w.known {
		if _, ok := now[k]; !ok {
			gone = append(gone, info)
		}
	}
	sortInfos(gone)
	for _, info := range gone {
		w.pending = append(w.pending, Event{Kind: Disappeared, Info: info, Resync: true})
	}
	for _, info := range rep.Snapshot {
		if _, ok := w.known[key{info.Name, info.PID}]; !ok {
			w.pending = append(w.pending, Event{Kind: Appeared, Info: info, Resync: true})
		}
	}
	w.known = now
}
