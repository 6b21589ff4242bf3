package locator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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
		err = fmt.Errorf("%w: locator %q, within %v", ErrUnresponsive, c.name, d)
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
			return rep, false, fmt.Errorf("simpl: locator %q: %w", c.name, err)
		}
		rep, err = callWithin[Req, Rep](ctx, c, conn, req, c.unresponsiveAfter)
		if err == nil {
			return rep, true, nil
		}
		c.drop(conn, err)
		switch {
		case ctx.Err() != nil || !daemonGone(err):
			return rep, false, fromRemote(err)
		case attempt > 0 || errors.Is(err, ErrUnresponsive):
			// It went away again, or does not answer: the directory does.
			return rep, false, nil
		}
		// The daemon restarted or went since the last call: once more,
		// afresh.
	}
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
// again. Not safe for concurrent use.
func (c *Client) Watch(pattern string) *Watch {
	return &Watch{c: c, pattern: pattern, known: make(map[key]Info)}
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
// nothing. Errors other than ctx's are a bad pattern (simpl.ErrBadName) or
// this process's Channel closing; after one, Next fails again.
func (w *Watch) Next(ctx context.Context) (Event, error) {
	relocated := false
	for len(w.pending) == 0 {
		conn, err := w.c.get(ctx)
		if err == nil {
			var rep watchReply
			rep, err = callWithin[watchRequest, watchReply](ctx, w.c, conn, watchRequest{
				Pattern: w.pattern, Epoch: w.epoch, After: w.next, Wait: defaultWait,
			}, defaultWait+w.c.unresponsiveAfter)
			if err == nil {
				relocated = false
				if w.lost {
					w.lost = false
					w.pending = append(w.pending, Event{Kind: Restored})
				}
				w.take(rep)
				continue
			}
			w.c.drop(conn, err)
			if ownClosed(err) && !relocated && ctx.Err() == nil {
				// The connection was closed here: by another call of the
				// Client that saw the daemon go, or with the Channel,
				// which locating again tells.
				relocated = true
				continue
			}
		}
		switch {
		case ctx.Err() != nil:
			return Event{}, ctx.Err()
		case ownClosed(err):
			return Event{}, fmt.Errorf("simpl: locator %q: %w", w.c.name, err)
		case !daemonGone(err):
			return Event{}, fromRemote(err)
		case !w.lost:
			w.lost = true // say so, then look again on the next call
			return Event{Kind: Lost, Err: err}, nil
		}
		select { // the locator is down or restarting: look again shortly
		case <-time.After(retry):
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
	ev := w.pending[0]
	w.pending = w.pending[1:]
	return ev, nil
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
