package locator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// Client asks a locator daemon. It locates the daemon when first needed
// and again after the daemon restarts. Safe for concurrent use.
type Client struct {
	ch   *simpl.Channel
	name string

	mu   sync.Mutex
	conn *simpl.Conn
}

// NewClient returns a client that sends through ch to the locator attached
// as name ("" means DefaultName).
func NewClient(ch *simpl.Channel, name string) *Client {
	if name == "" {
		name = DefaultName
	}
	return &Client{ch: ch, name: name}
}

func (c *Client) get() (*simpl.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		return c.conn, nil
	}
	conn, err := c.ch.Locate(c.name)
	if err != nil {
		return nil, fmt.Errorf("simpl: locator %q: %w", c.name, err)
	}
	c.conn = conn
	return conn, nil
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
	return errors.Is(err, simpl.ErrPeerGone) || errors.Is(err, simpl.ErrNotFound) ||
		errors.Is(err, simpl.ErrClosed) || (errors.As(err, &e) && e.Code == typed.CodeFailed)
}

func call[Req, Rep typed.Tagged](ctx context.Context, c *Client, req Req) (Rep, error) {
	var zero Rep
	for attempt := 0; ; attempt++ {
		conn, err := c.get()
		if err != nil {
			return zero, err
		}
		rep, err := typed.Call[Req, Rep](ctx, conn, req)
		if err == nil {
			return rep, nil
		}
		c.drop(conn, err)
		if attempt > 0 || !daemonGone(err) || ctx.Err() != nil {
			return zero, fromRemote(err)
		}
		// The daemon restarted since the last call: once more, afresh.
	}
}

// Locate returns the live owner of name, with its metadata.
func (c *Client) Locate(ctx context.Context, name string) (Info, error) {
	rep, err := call[LocateRequest, LocateReply](ctx, c, LocateRequest{Name: name})
	return rep.Info, err
}

// List returns the live names matching pattern ("" or "*" for all; shell
// patterns, see Match), sorted by name and pid.
func (c *Client) List(ctx context.Context, pattern string) ([]Info, error) {
	rep, err := call[ListRequest, ListReply](ctx, c, ListRequest{Pattern: pattern})
	return rep.Infos, err
}

// Watch follows the names matching pattern. Its first events are the names
// already there (Appeared, with Resync set); then each change as the
// locator sees it. It survives the locator's restart: it locates the new
// instance, compares its snapshot with what it knew, and reports the
// differences as Resync events. Not safe for concurrent use.
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
}

// retry bounds how often a watch looks for a restarted locator.
const retry = 100 * time.Millisecond

// Next returns the next event, waiting as long as ctx allows. While the
// locator is down it keeps looking for it; errors other than ctx's are a
// bad pattern (simpl.ErrBadName) or this process's Channel closing.
func (w *Watch) Next(ctx context.Context) (Event, error) {
	for len(w.pending) == 0 {
		conn, err := w.c.get()
		if err == nil {
			var rep WatchReply
			rep, err = typed.Call[WatchRequest, WatchReply](ctx, conn, WatchRequest{
				Pattern: w.pattern, Epoch: w.epoch, After: w.next, Wait: defaultWait,
			})
			if err == nil {
				w.take(rep)
				continue
			}
			w.c.drop(conn, err)
		}
		switch {
		case ctx.Err() != nil:
			return Event{}, ctx.Err()
		case errors.Is(err, simpl.ErrClosed) && !errors.Is(err, simpl.ErrPeerGone):
			return Event{}, err
		case !daemonGone(err):
			return Event{}, fromRemote(err)
		}
		select { // the locator is restarting: look again shortly
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
func (w *Watch) take(rep WatchReply) {
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
