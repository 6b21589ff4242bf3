package locator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
	"github.com/gosimpl/gosimpl/transport"
)

// DefaultName is the name the locator daemon (fclocator) attaches.
const DefaultName = "FCLOCATOR"

// The locator's requests and replies, as typed messages (see
// docs/typed.md for the wire form and docs/locator.md for the protocol).
type (
	// locateRequest asks for the live owner of Name.
	locateRequest struct {
		Name string `msgpack:"name"`
	}
	// locateReply is the owner.
	locateReply struct {
		Info Info `msgpack:"info"`
	}
	// listRequest asks for the live names matching Pattern.
	listRequest struct {
		Pattern string `msgpack:"pattern"`
	}
	// listReply is a snapshot: the names, and the epoch and position a
	// watch that must miss nothing after it starts from.
	listReply struct {
		Infos []Info `msgpack:"infos"`
		Epoch uint64 `msgpack:"epoch"`
		Seq   uint64 `msgpack:"seq"`
	}
	// watchRequest asks for the events after position After of the
	// locator instance Epoch whose names match Pattern; the locator holds
	// the request until there is one (or Wait passes). An Epoch that is
	// not the locator's (0 on a first request, another after a restart)
	// or a position it no longer keeps gets a reset: a fresh snapshot.
	watchRequest struct {
		Pattern string        `msgpack:"pattern"`
		Epoch   uint64        `msgpack:"epoch"`
		After   uint64        `msgpack:"after"`
		Max     int           `msgpack:"max"`
		Wait    time.Duration `msgpack:"wait"`
	}
	// watchReply carries events (possibly none, when Wait passed), or a
	// reset with the current snapshot; Next is the position to ask from.
	watchReply struct {
		Events   []Event `msgpack:"events"`
		Reset    bool    `msgpack:"reset"`
		Snapshot []Info  `msgpack:"snapshot"`
		Epoch    uint64  `msgpack:"epoch"`
		Next     uint64  `msgpack:"next"`
	}
)

func (locateRequest) TypeTag() string { return "locator.Locate" }
func (locateReply) TypeTag() string   { return "locator.LocateReply" }
func (listRequest) TypeTag() string   { return "locator.List" }
func (listReply) TypeTag() string     { return "locator.ListReply" }
func (watchRequest) TypeTag() string  { return "locator.Watch" }
func (watchReply) TypeTag() string    { return "locator.WatchReply" }

// Error codes of the locator's error replies.
const (
	codeNotFound   typed.Code = 100 // no live owner (simpl.ErrNotFound)
	codeBadRequest typed.Code = 101 // a bad name or pattern (simpl.ErrBadName)
	codeRefused    typed.Code = 102 // a Table that its owner cannot fill (ErrHostsOff)
)

// Limits of a watch request.
const (
	maxWait      = 30 * time.Second // a held watch is answered (empty) after this
	defaultWait  = 10 * time.Second
	maxEvents    = 256
	workersServe = 4
)

// Serve answers locate, list and watch requests on ch from w until ctx
// ends or ch closes. Watches are held without holding a worker, as many
// as clients wait; when Serve returns, every held watch has been
// answered (as a daemon that stops, which its clients take as gone) and
// nothing of Serve's runs any more.
func Serve(ctx context.Context, ch *simpl.Channel, w *Watcher) error {
	sctx, cancel := context.WithCancel(ctx)
	var held sync.WaitGroup
	defer held.Wait()
	defer cancel()
	mux := newMux(sctx, &w.journal, held.Go)
	return mux.Serve(sctx, ch, typed.WithWorkers(workersServe))
}

// newMux answers locate, list and watch requests from j; spawn runs a
// held watch, which ends when ctx does.
func newMux(ctx context.Context, w *journal, spawn func(func())) *typed.Mux {
	mux := typed.NewMux()
	typed.Handle(mux, func(_ context.Context, req locateRequest, _ simpl.Message) (locateReply, error) {
		info, err := w.Lookup(req.Name)
		if err != nil {
			return locateReply{}, codeOf(err)
		}
		return locateReply{Info: info}, nil
	})
	typed.Handle(mux, func(_ context.Context, req listRequest, _ simpl.Message) (listReply, error) {
		if err := CheckPattern(req.Pattern); err != nil {
			return listReply{}, codeOf(err)
		}
		infos, seq := w.Snapshot(req.Pattern)
		return listReply{Infos: infos, Epoch: w.Epoch(), Seq: seq}, nil
	})
	typed.Handle(mux, func(_ context.Context, req watchRequest, m simpl.Message) (watchReply, error) {
		if err := CheckPattern(req.Pattern); err != nil {
			return watchReply{}, codeOf(err)
		}
		if req.Epoch != w.Epoch() {
			return reset(w, req.Pattern), nil
		}
		spawn(func() { hold(ctx, w, req, m) })
		return watchReply{}, typed.ErrDeferred
	})
	return mux
}

// hold answers a watch once there are events, Wait has passed, or the
// server stops.
func hold(ctx context.Context, w *journal, req watchRequest, m simpl.Message) {
	wait := req.Wait
	if wait <= 0 || wait > maxWait {
		wait = defaultWait
	}
	max := req.Max
	if max <= 0 || max > maxEvents {
		max = maxEvents
	}
	w.held.Add(1)
	defer w.held.Add(-1)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	evs, next, err := w.Next(wctx, req.Pattern, req.After, max)
	switch {
	case err == nil:
		typed.Reply(m, watchReply{Events: evs, Epoch: w.Epoch(), Next: next})
	case errors.Is(err, ErrGap):
		typed.Reply(m, reset(w, req.Pattern))
	case wctx.Err() != nil && ctx.Err() == nil:
		typed.Reply(m, watchReply{Epoch: w.Epoch(), Next: next}) // nothing yet: ask again
	case ctx.Err() != nil:
		// The server is stopping: to the Client, as a daemon gone (it
		// asks again, another daemon or later).
		typed.ReplyError(m, errs.Errorf("locator: the server is stopping: %w", transport.ErrClosed))
	default:
		typed.ReplyError(m, err) // the watcher failed (its directory went away)
	}
}

func reset(w *journal, pattern string) watchReply {
	infos, seq := w.Snapshot(pattern)
	return watchReply{Reset: true, Snapshot: infos, Epoch: w.Epoch(), Next: seq}
}

func codeOf(err error) error {
	switch {
	case errors.Is(err, simpl.ErrNotFound):
		return &typed.Error{Code: codeNotFound, Message: err.Error()}
	case errors.Is(err, simpl.ErrBadName):
		return &typed.Error{Code: codeBadRequest, Message: err.Error()}
	}
	return err
}

// fromRemote maps the locator's error codes back to simpl's sentinels.
func fromRemote(err error) error {
	var e *typed.Error
	if errors.As(err, &e) {
		switch e.Code {
		case codeNotFound:
			return errs.Errorf("%w (%s)", simpl.ErrNotFound, e.Message)
		case codeBadRequest:
			return errs.Errorf("%w (%s)", simpl.ErrBadName, e.Message)
		case codeRefused:
			return errs.Errorf("%w: %s", ErrHostsOff, e.Message)
		}
	}
	return err
}
