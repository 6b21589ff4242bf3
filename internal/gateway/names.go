package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
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
// change is missed or reported twice. A snapshot too large for one NATS
// message comes in parts (netwire.NamesPart), all taken at one position
// by the answering gateway and sent in order to an inbox of the asker's
// own; the asker applies it only once every part is in, so the
// guarantee is the same whatever the number of parts, and a part
// missing, out of order or not of the same snapshot fails the whole
// (asked again by the sweeper). A name is in the Table while one
// run or more reports it.
//
// Memory is bounded against a hostile or mistaken peer: at most
// Options.maxNames names of one host (all its runs together, a snapshot
// being put together included; over it the host's runs are followed
// without names, counted and told, and asked again every overRetry), at
// most maxRuns runs of one host, and at most that many names in the
// messages waiting for a snapshot (more are dropped: the next message's
// position shows the gap, and a new snapshot is asked). A run not heard from for netwire.NamesSilence
// (its gateway killed, or cut off) is dropped with its names, checked
// every namesSweep; a goodbye drops it at once.
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

	hostNames map[string]int // names held of each host, all its runs together
	hostRuns  map[string]int // runs followed of each host
	maxNames  int            // Options.maxNames
	partMax   int            // the largest names message: NATS's payload limit

	own     run           // this gateway's run
	ownSeen chan struct{} // closed when the Table has this host's names
	ownOnce sync.Once

	bad   atomic.Int64 // names messages (and snapshots) that could not be read
	runsN atomic.Int64 // runs followed, from their first message
	asked atomic.Int64 // snapshots asked for
	over  atomic.Int64 // snapshots and events refused for going over maxNames, and runs over maxRuns
	parts atomic.Int64 // snapshots that came in more than one part
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
	waiting int       // the records in pending
	over    time.Time // when the run went over maxNames: not asked again before overRetry
	tried   time.Time // when its snapshot was last asked for
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

// maxBatch bounds the events the publisher takes at once; they go in as
// many messages as NATS's payload limit needs (256 of the longest names is
// about 15 KiB).
const maxBatch = 256

// maxRuns bounds the runs followed of one host: a few gateways serving
// it, and their restarts within NamesSilence.
const maxRuns = 16

// overRetry is how long a run over maxNames waits before its snapshot is
// asked again.
const overRetry = 10 * time.Second

// startNames starts publishing this host's names and following every
// host's.
func startNames(g *Gateway) (*names, error) {
	w, err := locator.NewWatcher(g.ch.Dir())
	if err != nil {
		return nil, fmt.Errorf("gateway: watching the names of %s: %w", g.ch.Dir(), err)
	}
	n := &names{g: g, w: w, table: locator.NewTable(), runs: make(map[run]*follow), count: make(map[nameKey]int),
		hostNames: make(map[string]int), hostRuns: make(map[string]int), maxNames: g.o.maxNames, partMax: int(g.nc.MaxPayload()),
		own: run{g.host, w.Epoch()}, ownSeen: make(chan struct{})}
	if n.partMax < netwire.MinPart {
		w.Close()
		n.table.Close()
		return nil, fmt.Errorf("gateway: the NATS server's payload limit %d is too small for names across hosts: want %d or more", n.partMax, netwire.MinPart)
	}
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
	bound(n.evSub)
	list := netwire.NamesListSubject(g.host, w.Epoch())
	if n.listSub, err = g.nc.Subscribe(list, n.onList); err != nil {
		return fail(fmt.Errorf("gateway: subscribing to %s: %w", list, err))
	}
	bound(n.listSub)
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
	InParts   int64 // snapshots that came in more than one part
	Bad       int64 // names messages and snapshots that could not be read
	OverCap   int64 // snapshots and events refused for a host's names over WithMaxHostNames, and runs of a host over 16
	Names     int   // names on every host now
}

// NamesStats returns the counts so far.
func (g *Gateway) NamesStats() NamesStats {
	n := g.names
	if n == nil {
		return NamesStats{}
	}
	s := NamesStats{Runs: n.runsN.Load(), Snapshots: n.asked.Load(), InParts: n.parts.Load(), Bad: n.bad.Load(), OverCap: n.over.Load()}
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
			n.sendEvents(gen, pos, next, evs)
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

// sendEvents publishes the events after from up to to in as many
// messages as NATS's payload limit needs, each covering the positions
// after the previous one's up to its last record's (the last one's up to
// to), so a follower sees no gap between them.
func (n *names) sendEvents(gen, from, to uint64, evs []locator.Event) {
	m := netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: from}
	size := m.NamesSize()
	for _, ev := range evs {
		if own(ev.Info) {
			continue
		}
		r := record(ev)
		rs := r.Size()
		if len(m.Records) > 0 && size+rs > n.partMax {
			m.To = m.Records[len(m.Records)-1].Seq
			n.send(&m)
			m = netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: m.To}
			size = m.NamesSize()
		}
		m.Records = append(m.Records, r)
		size += rs
	}
	m.To = to
	n.send(&m)
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

// onList answers a request for this host's names: in parts when the
// request says the asker takes them (a netwire.NamesList: parts of at
// most its size and this connection's payload limit), else in one
// message (an asker that predates parts), or with nothing when that
// would not fit. The parts are of one snapshot, taken once, and are
// published in order to the request's reply subject (NATS keeps one
// publisher's messages to one subscriber in order).
func (n *names) onList(m *nats.Msg) {
	if !strings.HasPrefix(m.Reply, netwire.InboxPrefix) {
		// Nobody to answer, or a subject that is no host's inbox (one
		// requests or names events go on): not published to.
		if m.Reply != "" {
			n.bad.Add(1)
		}
		return
	}
	var list netwire.NamesList
	if len(m.Data) > 0 {
		var err error
		if list, err = netwire.DecodeNamesList(m.Data); err != nil {
			n.bad.Add(1)
			return
		}
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
	if list.MaxPart == 0 {
		if s.NamesSize() > n.g.limit {
			// Too many names for one message: the asker counts the
			// empty answer as bad and asks again later.
			_ = m.Respond(nil)
			return
		}
		b, err := netwire.AppendNames(nil, &s)
		if err == nil {
			_ = m.Respond(b)
		}
		return
	}
	parts, err := netwire.SplitSnapshot(&s, min(list.MaxPart, n.partMax))
	if err != nil {
		return // MaxPart was checked, and partMax at the start: cannot happen
	}
	var b []byte
	for i := range parts {
		if b, err = netwire.AppendNamesPart(b[:0], &parts[i]); err != nil {
			return
		}
		// Publish copies b out before it returns. A part that cannot go
		// (the connection lost) fails the whole at the asker, which asks
		// again.
		if err := n.g.nc.Publish(m.Reply, b); err != nil {
			return
		}
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
		if n.hostRuns[host] >= maxRuns {
			// More runs of one host than gateways and their restarts
			// make: not followed (each message counted).
			n.over.Add(1)
			return
		}
		// A new run (or the first heard of): start from its snapshot.
		f = &follow{names: make(map[nameKey]locator.Info)}
		n.runs[r] = f
		n.hostRuns[host]++
		n.runsN.Add(1)
		n.syncLocked(r, f)
	}
	f.heard = time.Now()
	if f.syncing {
		if f.waiting+len(msg.Records) > n.maxNames || len(f.pending) >= n.maxNames {
			// More waiting than a host may have names: dropped. The
			// position of the first message applied after the snapshot
			// (or of the next presence) shows the gap, and a snapshot
			// is asked again.
			f.pending, f.waiting = nil, 0
		}
		f.pending = append(f.pending, msg)
		f.waiting += len(msg.Records)
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
					if !n.appearLocked(f, k, info) {
						n.overLocked(r, f, n.hostNames[r.host]+1)
						return
					}
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
// to others: it is left out. It returns false, recording nothing, if
// info's host has maxNames names already.
func (n *names) appearLocked(f *follow, k nameKey, info locator.Info) bool {
	if _, ok := f.names[k]; ok || info.Name == info.Host+":"+netwire.GatewayName {
		return true
	}
	if n.hostNames[info.Host] >= n.maxNames {
		return false
	}
	f.names[k] = info
	n.hostNames[info.Host]++
	n.count[k]++
	if n.count[k] == 1 {
		n.table.Appear(info)
	}
	return true
}

// disappearLocked records that f's run no longer reports k; the Table
// loses it with the last run that did.
func (n *names) disappearLocked(f *follow, k nameKey) {
	info, ok := f.names[k]
	if !ok {
		return
	}
	delete(f.names, k)
	if n.hostNames[info.Host]--; n.hostNames[info.Host] == 0 {
		delete(n.hostNames, info.Host)
	}
	n.count[k]--
	if n.count[k] == 0 {
		delete(n.count, k)
		n.table.Disappear(info)
	}
}

// overLocked stops following run r's names: with its host's other runs,
// it reports more (total, at least) than maxNames. Its names go (those
// of the host's other runs stay); it is still heard from, so it is not
// taken as gone, and its snapshot is asked again after overRetry.
func (n *names) overLocked(r run, f *follow, total int) {
	for k := range f.names {
		n.disappearLocked(f, k)
	}
	f.synced, f.pending, f.waiting, f.over = false, nil, 0, time.Now()
	n.over.Add(1)
	if note := n.g.o.hooks.Note; note != nil {
		note(fmt.Sprintf("names across hosts: host %s has %d names or more (gateway run %x), over the %d followed of one host: its names are not listed; asking again in %v",
			r.host, total, r.gen, n.maxNames, overRetry))
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
	if n.hostRuns[r.host]--; n.hostRuns[r.host] <= 0 {
		delete(n.hostRuns, r.host)
	}
}

// syncLocked asks run r's gateway for a snapshot, unless one is asked
// for already; messages wait for it in f.pending.
func (n *names) syncLocked(r run, f *follow) {
	if f.syncing || n.ctx.Err() != nil {
		return // asked already, or closing: close waits for the asks under way
	}
	f.syncing, f.synced, f.tried = true, false, time.Now()
	// The snapshot may bring the host to maxNames, with what its other
	// runs hold.
	room := n.maxNames - (n.hostNames[r.host] - len(f.names))
	n.asked.Add(1)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		s, err := n.fetch(r, room)
		if errors.Is(err, errBadSnapshot) {
			n.bad.Add(1)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if f != n.runs[r] || n.ctx.Err() != nil {
			return // dropped meanwhile
		}
		f.syncing = false
		var over overCap
		switch {
		case errors.As(err, &over):
			n.overLocked(r, f, int(over))
		case err != nil:
			// Not answered (gone, or not yet subscribed), or answered
			// wrong: the sweeper asks again.
		default:
			n.resetLocked(r, f, s)
		}
	}()
}

// errBadSnapshot is fetch's error for an answer it cannot take: counted
// as bad. Its other errors (no answer, or not in time) are not.
var errBadSnapshot = errors.New("bad snapshot")

// overCap is fetch's error for a snapshot of more names than it has room
// for: how many it has.
type overCap int

func (o overCap) Error() string { return fmt.Sprintf("a snapshot of %d names: too many", int(o)) }

// fetch asks run r's gateway for a snapshot, in parts, and puts them
// together; it takes at most room names. The parts come to an inbox of
// this request's own, in order: a part missing (NATS dropped it), out of
// place, or of another snapshot fails the whole, as does a wait of
// NamesSilence for the next part. Held meanwhile: the records of at most
// room names, and what NATS holds unread for the inbox, bounded to the
// parts of room names.
func (n *names) fetch(r run, room int) (netwire.Names, error) {
	var s netwire.Names
	req, err := netwire.AppendNamesList(nil, netwire.NamesList{MaxPart: n.partMax})
	if err != nil {
		return s, err // partMax was checked at the start: cannot happen
	}
	inbox := n.g.inbox + ".n." + strconv.FormatUint(unguessable(), 10)
	sub, err := n.g.nc.SubscribeSync(inbox)
	if err != nil {
		return s, err
	}
	defer sub.Unsubscribe()
	// At worst each name comes alone in a part of MinPart bytes.
	if err := sub.SetPendingLimits(-1, (max(room, 0)+1)*netwire.MinPart+n.partMax); err != nil {
		return s, err
	}
	if err := n.g.nc.PublishRequest(netwire.NamesListSubject(r.host, r.gen), inbox, req); err != nil {
		return s, err
	}
	var first netwire.NamesPart
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(n.ctx, netwire.NamesSilence)
		m, err := sub.NextMsgWithContext(ctx)
		cancel()
		if err != nil {
			return s, err
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return s, nats.ErrNoResponders
		}
		p, err := netwire.DecodeNamesPart(m.Data)
		if err != nil && i == 0 {
			// A gateway that predates parts answers with one message.
			if one, err1 := netwire.DecodeNames(m.Data); err1 == nil && one.Type == netwire.NamesSnapshot && one.Gen == r.gen {
				if len(one.Records) > room {
					return s, overCap(len(one.Records))
				}
				return one, nil
			}
		}
		switch {
		case err != nil:
			return s, fmt.Errorf("%w: part %d: %w", errBadSnapshot, i, err)
		case p.Part != i || p.Names.Gen != r.gen:
			return s, fmt.Errorf("%w: part %d of generation %x where part %d of %x was due", errBadSnapshot, p.Part, p.Names.Gen, i, r.gen)
		case i == 0:
			if p.Total > room {
				return s, overCap(p.Total)
			}
			first = p
			s = netwire.Names{Type: netwire.NamesSnapshot, Gen: r.gen, To: p.Names.To, Records: make([]netwire.NameRecord, 0, p.Total)}
		case p.Parts != first.Parts || p.Total != first.Total || p.Names.To != first.Names.To:
			return s, fmt.Errorf("%w: part %d of %d, %d names at %d, in a snapshot of %d parts, %d names at %d",
				errBadSnapshot, i, p.Parts, p.Total, p.Names.To, first.Parts, first.Total, first.Names.To)
		}
		if len(s.Records)+len(p.Names.Records) > p.Total {
			return s, fmt.Errorf("%w: more than the %d names of the snapshot", errBadSnapshot, p.Total)
		}
		s.Records = append(s.Records, p.Names.Records...)
		if p.Part == p.Parts-1 {
			if len(s.Records) != p.Total {
				return s, fmt.Errorf("%w: %d names in the snapshot's %d parts, want %d", errBadSnapshot, len(s.Records), p.Parts, p.Total)
			}
			if p.Parts > 1 {
				n.parts.Add(1)
			}
			return s, nil
		}
	}
}

// resetLocked makes f's names those of snapshot s, reporting the
// differences, then applies what waited for it.
func (n *names) resetLocked(r run, f *follow, s netwire.Names) {
	now := make(map[nameKey]locator.Info, len(s.Records))
	for _, rec := range s.Records {
		info := infoOf(r.host, rec)
		now[nameKey{info.Name, info.PID}] = info
	}
	if total := n.hostNames[r.host] - len(f.names) + len(now); total > n.maxNames {
		n.overLocked(r, f, total) // the host's other runs grew meanwhile
		return
	}
	for k := range f.names {
		if _, ok := now[k]; !ok {
			n.disappearLocked(f, k)
		}
	}
	for k, info := range now {
		if !n.appearLocked(f, k, info) {
			n.overLocked(r, f, n.maxNames+1)
			return
		}
	}
	f.pos, f.synced, f.over = s.To, true, time.Time{}
	if r == n.own {
		n.ownOnce.Do(func() { close(n.ownSeen) })
	}
	waiting := f.pending
	f.pending, f.waiting = nil, 0
	// A presence that waited is made good by the events that waited
	// after it (it came first): it asks for a snapshot only if they do
	// not reach its position. (An event missing among them shows as a
	// gap in theirs.)
	var reach uint64
	for _, m := range waiting {
		if m.Type == netwire.NamesEvents {
			reach = max(reach, m.To)
		}
	}
	for _, m := range waiting {
		if m.Type == netwire.NamesPresence && m.To <= reach {
			continue
		}
		if f.syncing {
			f.pending = append(f.pending, m)
			f.waiting += len(m.Records)
			continue
		}
		n.applyLocked(r, f, m)
	}
}

// namesSweep is how often silent runs are looked for: a run is dropped
// within NamesSilence + namesSweep of its last message, 1.6 s. (What
// waits on that, a broker dropping a remote subscriber whose gateway is
// killed, has 2 s.)
const namesSweep = 100 * time.Millisecond

// resyncEvery is how often a snapshot that failed is asked again.
const resyncEvery = netwire.NamesHeartbeat / 2

// sweep drops the runs gone silent, every namesSweep, and asks again for
// the snapshots that failed, every resyncEvery.
func (n *names) sweep() {
	defer n.wg.Done()
	t := time.NewTicker(namesSweep)
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
				case !f.synced && !f.syncing && now.Sub(f.over) >= overRetry && now.Sub(f.tried) >= resyncEvery:
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
	n.g.unsub(n.listSub)
	n.g.unsub(n.evSub)
	n.send(&netwire.Names{Type: netwire.NamesBye, Gen: n.w.Epoch()})
	// Under mu: syncLocked starts no ask once ctx has ended, so none
	// starts after Wait.
	n.mu.Lock()
	n.cancel()
	n.mu.Unlock()
	n.wg.Wait()
	n.table.Close()
	n.w.Close()
}
