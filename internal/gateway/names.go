package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/nats-io/nats.go"
)

// Names across hosts (issue 13, item 7). A gateway
//
//   - follows its host's FIFO directory with a locator.Watcher (the code
//     the locator daemon runs, in-process: no daemon needed) and
//     publishes every change on netwire.NamesSubject(host), numbered by
//     the Watcher, with a presence message whenever it has published
//     nothing for netwire.NamesHeartbeat, and a goodbye when it closes;
//   - answers a request on netwire.NamesListSubject(host, gen) with a
//     snapshot of its names and the position it reflects;
//   - hears every host's messages (its own too), keeps their names as
//     HOST:NAME in a locator.Table, and answers the locator Client's
//     ListHosts and WatchHosts from it: typed locator requests that local
//     programs send to its name, told apart from envelopes by their
//     magic.
//
// Each gateway run (a host and a generation, the Watcher's epoch: a
// restarted gateway is a new run, and several gateways of one host are
// one each) is followed on its own, from the position of the last event
// applied. A snapshot (list request) sets it; events continue from it;
// an event message that skips some, or a presence ahead of it, asks for a
// new snapshot, and the messages that arrive meanwhile wait for it, so no
// change is missed or reported twice. A name is in the Table while one
// run or more reports it. A run not heard from for netwire.NamesSilence
// (its gateway killed, or cut off) is dropped with its names, checked
// every NamesHeartbeat/2; a goodbye drops it at once.
type names struct {
	g     *Gateway
	w     *locator.Watcher
	table *locator.Table

	ctx    context.Context // ends with close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the publisher, the sweeper and the snapshots asked for

	evSub, listSub *nats.Subscription

	mu    sync.Mutex
	runs  map[run]*follow
	count map[nameKey]int // how many runs report each name

	own     run           // this gateway's run
	ownSeen chan struct{} // closed when the Table has this host's names
	ownOnce sync.Once

	bad   atomic.Int64 // names messages (and snapshots) that could not be read
	runsN atomic.Int64 // runs followed, from their first message
	asked atomic.Int64 // snapshots asked for
	off   error        // why names across hosts are off, if they are
}

// run is one gateway's run: its host and generation.
type run struct {
	host string
	gen  uint64
}

// follow is what a gateway knows of one run's names.
type follow struct {
	pos     uint64 // the last event applied
	synced  bool   // a snapshot was applied
	syncing bool   // a snapshot is asked for; messages wait in pending
	pending []netwire.Names
	heard   time.Time
	names   map[nameKey]locator.Info // as the Table holds them: HOST:NAME
}

type nameKey struct {
	name string
	pid  int
}

// ownWait bounds how long startNames waits for this host's names to come
// back over NATS.
const ownWait = 2 * time.Second

// maxBatch bounds the events one message carries: 256 of the longest
// names is under 75 KiB, well within NATS's payload limit.
const maxBatch = 256

// startNames starts publishing this host's names and following every
// host's.
func startNames(g *Gateway) (*names, error) {
	w, err := locator.NewWatcher(g.ch.Dir())
	if err != nil {
		return nil, fmt.Errorf("gateway: watching the names of %s: %w", g.ch.Dir(), err)
	}
	n := &names{g: g, w: w, table: locator.NewTable(), runs: make(map[run]*follow), count: make(map[nameKey]int),
		own: run{g.host, w.Epoch()}, ownSeen: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*names, error) {
		for _, s := range []*nats.Subscription{n.evSub, n.listSub} {
			if s != nil {
				s.Unsubscribe()
			}
		}
		n.cancel()
		n.table.Close()
		w.Close()
		return nil, err
	}
	if n.evSub, err = g.nc.Subscribe(netwire.NamesAllSubjects, n.onNames); err != nil {
		return fail(fmt.Errorf("gateway: subscribing to %s: %w", netwire.NamesAllSubjects, err))
	}
	n.evSub.SetPendingLimits(-1, -1)
	list := netwire.NamesListSubject(g.host, w.Epoch())
	if n.listSub, err = g.nc.Subscribe(list, n.onList); err != nil {
		return fail(fmt.Errorf("gateway: subscribing to %s: %w", list, err))
	}
	if err := g.nc.Flush(); err != nil {
		return fail(fmt.Errorf("gateway: subscribing to names: %w", err))
	}
	if lerr := g.nc.LastError(); errors.Is(lerr, nats.ErrPermissionViolation) {
		// A deployment whose permissions predate names across hosts:
		// the gateway carries Sends without them, and says so.
		if _, err := fail(nil); err != nil {
			return nil, err
		}
		const what = "names across hosts are off: "
		off := fmt.Errorf(what+"NATS refuses the subscriptions to %s and %s (%w)", netwire.NamesAllSubjects, list, lerr)
		t := locator.NewTable()
		t.Refuse(strings.TrimPrefix(off.Error(), what))
		return &names{g: g, table: t, off: off}, nil
	}
	n.wg.Add(2)
	go n.publish()
	go n.sweep()
	// This host's names come back over NATS like any host's: wait (a
	// little) for them, so that a program asking the new gateway does not
	// see its own host empty.
	t := time.NewTimer(ownWait)
	select {
	case <-n.ownSeen:
	case <-t.C:
	}
	t.Stop()
	return n, nil
}

// NamesOff says why this gateway does not follow names across hosts
// (NATS refused its subscriptions to them), or nil if it does. A
// program's ListHosts and WatchHosts are then answered with that reason
// (locator.ErrHostsOff).
func (g *Gateway) NamesOff() error {
	if g.names == nil {
		return errNoServing
	}
	return g.names.off
}

// errNoServing is NamesOff of a gateway made WithoutServing.
var errNoServing = errors.New("gateway: made without serving (WithoutServing): no names across hosts")

// NamesStats count what a gateway did for names across hosts. Read them
// with Gateway.NamesStats.
type NamesStats struct {
	Runs      int64 // gateway runs followed (this one's too; a restarted gateway is a new run)
	Snapshots int64 // snapshots asked for: one per run, and one per gap
	Bad       int64 // names messages and snapshots that could not be read
	Names     int   // names on every host now
}

// NamesStats returns the counts so far.
func (g *Gateway) NamesStats() NamesStats {
	n := g.names
	if n == nil {
		return NamesStats{}
	}
	s := NamesStats{Runs: n.runsN.Load(), Snapshots: n.asked.Load(), Bad: n.bad.Load()}
	s.Names = n.table.Counts().Names
	return s
}

// take answers msg if it is a locator request (a typed message): true if
// it was one.
func (n *names) take(msg simpl.Message) bool {
	d := msg.Data()
	if msg.Proxy() > 0 || len(d) < 2 || d[0] != 'G' || d[1] != 'T' {
		return false
	}
	n.table.Serve(msg)
	return true
}

// send publishes one names message of this host's.
func (n *names) send(m *netwire.Names) {
	b, err := netwire.AppendNames(nil, m)
	if err != nil {
		return // the Watcher's names are valid local names: cannot happen
	}
	// A failed publish (the connection lost) is made good by the next
	// presence: its position tells the others to ask for a snapshot.
	_ = n.g.nc.Publish(netwire.NamesSubject(n.g.host), b)
}

// publish sends the Watcher's events as they come, and a presence when
// there were none for a heartbeat, until close.
func (n *names) publish() {
	defer n.wg.Done()
	gen := n.w.Epoch()
	_, pos := n.w.Snapshot("")
	n.send(&netwire.Names{Type: netwire.NamesPresence, Gen: gen, To: pos})
	last := time.Now()
	for {
		ctx, cancel := context.WithDeadline(n.ctx, last.Add(netwire.NamesHeartbeat))
		evs, next, err := n.w.Next(ctx, "", pos, maxBatch)
		cancel()
		switch {
		case err == nil:
			m := netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: pos, To: next}
			for _, ev := range evs {
				if !own(ev.Info) {
					m.Records = append(m.Records, record(ev))
				}
			}
			n.send(&m)
			pos = next
		case errors.Is(err, locator.ErrGap):
			// Fell behind the Watcher's memory: the others see the
			// position jump and ask for a snapshot.
			_, pos = n.w.Snapshot("")
			n.send(&netwire.Names{Type: netwire.NamesPresence, Gen: gen, To: pos})
		case n.ctx.Err() != nil:
			return
		case ctx.Err() != nil:
			n.send(&netwire.Names{Type: netwire.NamesPresence, Gen: gen, To: pos})
		default:
			// The directory went away: this host has no names to tell;
			// its silence drops them elsewhere.
			<-n.ctx.Done()
			return
		}
		last = time.Now()
	}
}

// own reports whether the gateway's process holds the name: its own
// _gosimpl_gw, and for C SIMPL programs _simplProtoRouter and the
// surrogates' names. They are the gateway's workings, not names this host
// serves, and are not published. (A record left out of a batch of events
// leaves no gap: positions are the batch's From and To.)
func own(info locator.Info) bool {
	if info.PID != os.Getpid() {
		return false
	}
	switch {
	case info.Name == netwire.GatewayName, info.Name == RouterName:
		return true
	case strings.HasPrefix(info.Name, surrogatePrefix(info.PID)):
		return true
	}
	return false
}

// record is a Watcher's event as it goes over NATS.
func record(ev locator.Event) netwire.NameRecord {
	r := netwire.NameRecord{Kind: netwire.NameAppeared, Transport: netwire.NameFIFO, Name: ev.Info.Name,
		PID: ev.Info.PID, UID: ev.Info.UID, Seq: ev.Seq, Since: ev.Info.Since.UnixNano()}
	if ev.Kind == locator.Disappeared {
		r.Kind = netwire.NameDisappeared
	}
	if ev.Info.Transport == "shm" {
		r.Transport = netwire.NameShm
	}
	return r
}

// onList answers a request for this host's names.
func (n *names) onList(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	infos, seq := n.w.Snapshot("")
	s := netwire.Names{Type: netwire.NamesSnapshot, Gen: n.w.Epoch(), To: seq}
	for _, info := range infos {
		if own(info) {
			continue
		}
		r := record(locator.Event{Kind: locator.Appeared, Info: info})
		s.Records = append(s.Records, r)
	}
	if s.NamesSize() > n.g.limit {
		// Too many names for one message: the asker counts the empty
		// answer as bad and asks again later.
		_ = m.Respond(nil)
		return
	}
	b, err := netwire.AppendNames(nil, &s)
	if err == nil {
		_ = m.Respond(b)
	}
}

// onNames takes one host's names message (this host's too).
func (n *names) onNames(m *nats.Msg) {
	host, err := netwire.ParseNamesSubject(m.Subject)
	var msg netwire.Names
	if err == nil {
		msg, err = netwire.DecodeNames(m.Data)
	}
	if err == nil && msg.Type == netwire.NamesSnapshot {
		err = errors.New("a snapshot published")
	}
	if err != nil {
		n.bad.Add(1)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	r := run{host, msg.Gen}
	f := n.runs[r]
	if msg.Type == netwire.NamesBye {
		if f != nil {
			n.dropLocked(r, f)
		}
		return
	}
	if f == nil {
		// A new run (or the first heard of): start from its snapshot.
		f = &follow{names: make(map[nameKey]locator.Info)}
		n.runs[r] = f
		n.runsN.Add(1)
		n.syncLocked(r, f)
	}
	f.heard = time.Now()
	if f.syncing {
		f.pending = append(f.pending, msg)
		return
	}
	n.applyLocked(r, f, msg)
}

// applyLocked applies an events or presence message of run r, or asks
// for a snapshot when it shows that some were missed.
func (n *names) applyLocked(r run, f *follow, msg netwire.Names) {
	if !f.synced {
		return
	}
	switch msg.Type {
	case netwire.NamesPresence:
		if msg.To > f.pos {
			n.syncLocked(r, f)
		}
	case netwire.NamesEvents:
		switch {
		case msg.To <= f.pos: // all before the snapshot
		case msg.From > f.pos:
			n.syncLocked(r, f)
		default:
			for _, rec := range msg.Records {
				if rec.Seq <= f.pos {
					continue
				}
				info := infoOf(r.host, rec)
				k := nameKey{info.Name, info.PID}
				if rec.Kind == netwire.NameAppeared {
					n.appearLocked(f, k, info)
				} else {
					n.disappearLocked(f, k)
				}
			}
			f.pos = msg.To
		}
	}
}

// appearLocked records that f's run reports info; the Table has it from
// the first run that does. The gateway's own name is not one it serves
// to others: it is left out.
func (n *names) appearLocked(f *follow, k nameKey, info locator.Info) {
	if _, ok := f.names[k]; ok || info.Name == info.Host+":"+netwire.GatewayName {
		return
	}
	f.names[k] = info
	n.count[k]++
	if n.count[k] == 1 {
		n.table.Appear(info)
	}
}

// disappearLocked records that f's run no longer reports k; the Table
// loses it with the last run that did.
func (n *names) disappearLocked(f *follow, k nameKey) {
	info, ok := f.names[k]
	if !ok {
		return
	}
	delete(f.names, k)
	n.count[k]--
	if n.count[k] == 0 {
		delete(n.count, k)
		n.table.Disappear(info)
	}
}

// infoOf is a record of host's as the Table holds it.
func infoOf(host string, r netwire.NameRecord) locator.Info {
	info := locator.Info{Name: host + ":" + r.Name, Host: host, PID: r.PID, UID: r.UID, Transport: "fifo", Since: r.SinceTime()}
	if r.Transport == netwire.NameShm {
		info.Transport = "shm"
	}
	return info
}

// dropLocked forgets run r and its names.
func (n *names) dropLocked(r run, f *follow) {
	for k := range f.names {
		n.disappearLocked(f, k)
	}
	delete(n.runs, r)
}

// syncLocked asks run r's gateway for a snapshot, unless one is asked
// for already; messages wait for it in f.pending.
func (n *names) syncLocked(r run, f *follow) {
	if f.syncing {
		return
	}
	f.syncing, f.synced = true, false
	n.asked.Add(1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, netwire.NamesSilence)
		defer cancel()
		rep, err := n.g.nc.RequestWithContext(ctx, netwire.NamesListSubject(r.host, r.gen), nil)
		var s netwire.Names
		if err == nil {
			s, err = netwire.DecodeNames(rep.Data)
			if err == nil && (s.Type != netwire.NamesSnapshot || s.Gen != r.gen) {
				err = fmt.Errorf("a type %d message of generation %x for a snapshot of %x", s.Type, s.Gen, r.gen)
			}
			if err != nil {
				n.bad.Add(1)
			}
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if f != n.runs[r] || n.ctx.Err() != nil {
			return // dropped meanwhile
		}
		f.syncing = false
		if err != nil {
			return // the sweeper asks again
		}
		n.resetLocked(r, f, s)
	}()
}

// resetLocked makes f's names those of snapshot s, reporting the
// differences, then applies what waited for it.
func (n *names) resetLocked(r run, f *follow, s netwire.Names) {
	now := make(map[nameKey]locator.Info, len(s.Records))
	for _, rec := range s.Records {
		info := infoOf(r.host, rec)
		now[nameKey{info.Name, info.PID}] = info
	}
	for k := range f.names {
		if _, ok := now[k]; !ok {
			n.disappearLocked(f, k)
		}
	}
	for k, info := range now {
		n.appearLocked(f, k, info)
	}
	f.pos, f.synced = s.To, true
	if r == n.own {
		n.ownOnce.Do(func() { close(n.ownSeen) })
	}
	waiting := f.pending
	f.pending = nil
	for _, m := range waiting {
		if f.syncing {
			f.pending = append(f.pending, m)
			continue
		}
		n.applyLocked(r, f, m)
	}
}

// sweep drops the runs gone silent, and asks again for the snapshots
// that failed, every half heartbeat.
func (n *names) sweep() {
	defer n.wg.Done()
	t := time.NewTicker(netwire.NamesHeartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			n.mu.Lock()
			for r, f := range n.runs {
				switch {
				case now.Sub(f.heard) > netwire.NamesSilence:
					n.dropLocked(r, f)
				case !f.synced && !f.syncing:
					n.syncLocked(r, f)
				}
			}
			n.mu.Unlock()
		}
	}
}

// close says goodbye to the other hosts, stops following them and ends
// the watches the Table holds.
func (n *names) close() {
	if n.off != nil {
		n.table.Close()
		return
	}
	n.listSub.Unsubscribe()
	n.evSub.Unsubscribe()
	n.send(&netwire.Names{Type: netwire.NamesBye, Gen: n.w.Epoch()})
	n.cancel()
	n.wg.Wait()
	n.table.Close()
	n.w.Close()
}
