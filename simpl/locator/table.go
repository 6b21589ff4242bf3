package locator

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
	"github.com/gosimpl/gosimpl/transport"
)

// Table is a numbered record of names that its owner fills, rather than
// a directory: what a host's gateway keeps of the names on every host
// (host:NAME), and answers the Client's ListHosts and WatchHosts from
// with the locator's own protocol. Safe for concurrent use; Close is
// idempotent and ends the watches it holds.
type Table struct {
	journal
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mux    *typed.Mux

	refused atomic.Pointer[string] // see Refuse
}

// NewTable returns an empty Table.
func NewTable() *Table {
	t := &Table{}
	t.init()
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mux = newMux(t.ctx, &t.journal, func(f func()) {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			f() // answered at once: the Table is closed
			return
		}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			f()
		}()
	})
	return t
}

// Appear records info as live, an Appeared event, unless it is already.
func (t *Table) Appear(info Info) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{info.Name, info.PID}
	if _, ok := t.live[k]; ok || t.closed {
		return
	}
	t.live[k] = info
	t.addLocked(Appeared, info)
}

// Disappear records info as gone, a Disappeared event, if it was live.
func (t *Table) Disappear(info Info) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{info.Name, info.PID}
	old, ok := t.live[k]
	if !ok || t.closed {
		return
	}
	delete(t.live, k)
	t.addLocked(Disappeared, old)
}

// Serve answers one request a program sent (a locate, list or watch, as
// the locator daemon would); it returns at once, holding a watch until it
// has events, its wait passes or the Table closes. Once the Table is
// closed, every request is answered with an error that the Client takes
// as its server gone.
func (t *Table) Serve(m simpl.Message) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		// Its owner is stopping: to the Client, as a daemon gone.
		typed.ReplyError(m, errs.Errorf("locator: its server is stopping: %w", transport.ErrClosed))
		return
	}
	if r := t.refused.Load(); r != nil {
		typed.ReplyError(m, &typed.Error{Code: codeRefused, Message: *r})
		return
	}
	t.mux.ServeMessage(t.ctx, m)
}

// Refuse makes Serve answer every request from now on with reason, which
// the Client returns wrapping ErrHostsOff: the owner cannot fill the
// Table (the gateway, when NATS refuses it the names of other hosts).
func (t *Table) Refuse(reason string) { t.refused.Store(&reason) }

// Close ends the Table: the watches it holds are answered with an error
// (their clients see it gone), and Close returns when they are.
func (t *Table) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.err = errs.Errorf("locator: its server is stopping: %w", transport.ErrClosed)
		close(t.changed)
		t.changed = make(chan struct{})
	}
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	return nil
}
