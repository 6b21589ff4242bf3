package locator

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// Kind says what happened to a name.
type Kind uint8

const (
	// Appeared: a live process attached the name.
	Appeared Kind = 1
	// Disappeared: the owner detached, exited or was killed.
	Disappeared Kind = 2
	// Lost: a Client's Watch cannot reach the locator (it is not attached,
	// or it went away: Event.Err says why) and hears nothing until
	// Restored. It keeps looking for it. Once per outage; Info is empty.
	Lost Kind = 3
	// Restored: a Client's Watch reaches the locator again after Lost.
	// The Resync events that follow, if any, are what changed meanwhile.
	// Info is empty.
	Restored Kind = 4
)

func (k Kind) String() string {
	switch k {
	case Appeared:
		return "appeared"
	case Disappeared:
		return "disappeared"
	case Lost:
		return "lost"
	case Restored:
		return "restored"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Info describes one attached name as the locator sees it.
type Info struct {
	// Name is the SIMPL name; across hosts (Client.ListHosts,
	// Client.WatchHosts) HOST:NAME, the form that Sends to it.
	Name      string    `msgpack:"name"`
	Host      string    `msgpack:"host,omitempty"` // across hosts: the host it is on; otherwise ""
	PID       int       `msgpack:"pid"`
	UID       int       `msgpack:"uid"`       // owner of its receive FIFO
	Transport string    `msgpack:"transport"` // "shm" (and FIFO) or "fifo" only
	Since     time.Time `msgpack:"since"`     // when it was attached
}

// Event is one change, numbered in the order the locator saw it; or, from
// a Client's Watch only, news of the watch itself (Lost, Restored).
type Event struct {
	Seq  uint64 `msgpack:"seq"`
	Kind Kind   `msgpack:"kind"`
	Info Info   `msgpack:"info"`
	// Resync marks an event a Client made up from a snapshot, at the start
	// of a watch or after the locator restarted or it fell behind: the
	// change happened at some moment since the last event it saw. Seq is
	// 0.
	Resync bool `msgpack:"resync,omitempty"`
	// Err is, for Lost, why the locator could not be reached (e.g.
	// simpl.ErrNotFound: not attached; simpl.ErrPeerGone: it exited while
	// holding the watch). Never sent.
	Err error `msgpack:"-"`
}

// Errors of a watch.
var (
	// ErrGap: the events after the asked position are no longer kept (the
	// watcher fell too far behind, or the locator restarted); start again
	// from a fresh snapshot.
	ErrGap = errors.New("simpl: locator: events were missed")
)

// keep is how many events a Watcher retains for slow readers.
const keep = 4096

// pollEvery is how often owners are checked where pidfds are not
// available.
const pollEvery = 100 * time.Millisecond

// journal is the numbered record of live names and of their changes that
// Serve answers list and watch requests from: a Watcher's, of its
// directory, and a Table's, of names its owner reports. Its methods are
// safe for concurrent use.
type journal struct {
	epoch uint64

	mu      sync.Mutex
	live    map[key]Info // the current live names
	events  []Event      // the last keep events, oldest first
	seq     uint64       // the last event's number
	changed chan struct{}
	closed  bool
	err     error     // why the watch ended, once it has
	counts  [3]uint64 // events by Kind, for metrics

	held atomic.Int64 // watch requests held by Serve, for metrics
}

// init readies j, with a random odd epoch.
func (j *journal) init() {
	var b [8]byte
	rand.Read(b[:])
	j.epoch = binary.LittleEndian.Uint64(b[:]) | 1
	j.live = make(map[key]Info)
	j.changed = make(chan struct{})
}

// Watcher follows one FIFO directory and numbers every name that appears
// or disappears, including owners killed without a chance to clean up: the
// directory is the source of truth, inotify says when it changes and a
// pidfd per owner when the owner dies. Safe for concurrent use; Close is
// idempotent and ends every Next.
type Watcher struct {
	journal
	reg  *naming.Registry
	inot *os.File

	owners map[key]*sys.Pidfd // under mu
	retry  bool               // under mu: the last scan could not read the directory
	// removed are the names whose FIFOs were removed since the scan
	// began (under mu): one there again at the next scan was detached
	// and attached again by the same process in between.
	removed map[key]bool

	rescan chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
}

type key struct {
	name string
	pid  int
}

// NewWatcher starts watching dir ("" means $FIFO_PATH or /var/tmp).
func NewWatcher(dir string) (*Watcher, error) {
	reg, err := naming.Open(dir)
	if err != nil {
		return nil, err
	}
	inot, err := sys.WatchDir(reg.Dir())
	if err != nil {
		return nil, errs.Errorf("locator: %w", err)
	}
	w := &Watcher{
		reg:    reg,
		inot:   inot,
		owners: make(map[key]*sys.Pidfd),
		rescan: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	w.init()
	w.scan()
	w.wg.Add(2)
	go w.readDir()
	go w.loop()
	return w, nil
}

// Epoch identifies this Watcher: a client that sees it change knows the
// locator restarted and its position means nothing any more.
func (w *journal) Epoch() uint64 { return w.epoch }

// Dir is the watched directory.
func (w *Watcher) Dir() string { return w.reg.Dir() }

// readDir turns inotify events into rescans.
func (w *Watcher) readDir() {
	defer w.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := w.inot.Read(buf)
		if err != nil {
			return // closed
		}
		for _, ev := range sys.ParseDirEvents(buf[:n]) {
			if ev.Gone {
				w.fail(errs.Errorf("locator: the directory %s went away", w.reg.Dir()))
				return
			}
			if stem, pid, ok := naming.ParseFIFO(ev.Name); ok && ev.Removed {
				w.mu.Lock()
				if w.removed == nil {
					w.removed = make(map[key]bool)
				}
				w.removed[key{stem, pid}] = true
				w.mu.Unlock()
			}
		}
		w.poke()
	}
}

func (w *Watcher) poke() {
	select {
	case w.rescan <- struct{}{}:
	default:
	}
}

// loop rescans on every poke, and every pollEvery while an owner cannot be
// watched with a pidfd.
func (w *Watcher) loop() {
	defer w.wg.Done()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-w.rescan:
			w.scan()
		case <-tick.C:
			w.mu.Lock()
			polling := len(w.live) > len(w.owners) || w.retry
			w.mu.Unlock()
			if polling {
				w.scan()
			}
		}
	}
}

// scan reads the directory and records the difference from what it knew
// as events.
func (w *Watcher) scan() {
	if h := testHookScan.Load(); h != nil {
		(*h)()
	}
	w.mu.Lock()
	gone := w.removed // removed before the directory is read: seen by this scan
	w.removed = nil
	w.mu.Unlock()
	entries, err := w.reg.List()
	if errors.Is(err, fs.ErrNotExist) {
		w.fail(errs.Errorf("locator: %w", err)) // the directory is gone: nothing more to watch
		return
	}
	if err != nil {
		// Out of descriptors or memory, say: for now. What the last
		// scan found stands, and the loop tries again within
		// pollEvery, as if polling an owner.
		if h := testHookScanFailed.Load(); h != nil {
			(*h)(err)
		}
		w.mu.Lock()
		w.retry = true
		for k := range gone { // for the next scan
			if w.removed == nil {
				w.removed = make(map[key]bool)
			}
			w.removed[k] = true
		}
		w.mu.Unlock()
		return
	}
	now := liveInfos(w.reg, entries)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retry = false
	if w.closed {
		return
	}
	var fresh []key
	for k, info := range w.live {
		if _, ok := now[k]; !ok {
			w.addLocked(Disappeared, info)
			delete(w.live, k)
			if f := w.owners[k]; f != nil {
				f.Close()
				delete(w.owners, k)
			}
		}
	}
	for k, info := range now {
		if old, ok := w.live[k]; ok {
			if gone[k] {
				// Detached (its FIFO removed) and attached again by
				// the same process between two scans: both are told.
				w.addLocked(Disappeared, old)
				w.live[k] = info
				w.addLocked(Appeared, info)
				continue
			}
			if old.Transport != info.Transport { // its shm listener came up after its FIFO
				w.live[k] = info
			}
			continue
		}
		w.live[k] = info
		w.addLocked(Appeared, info)
		fresh = append(fresh, k)
	}
	for _, k := range fresh {
		p, err := sys.OpenPidfd(k.pid)
		if err != nil {
			continue // polled instead (or it died already: the next scan says so)
		}
		w.owners[k] = p
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			switch err := p.Wait(); {
			case err == nil:
				w.poke()
			case !errors.Is(err, os.ErrClosed):
				// The kernel cannot poll this pidfd: without it, loop
				// checks the owner every pollEvery instead.
				w.mu.Lock()
				if w.owners[k] == p {
					delete(w.owners, k)
					p.Close()
				}
				w.mu.Unlock()
			}
		}()
	}
}

// Tests' hooks: testHookScan, if set, is called as each scan begins;
// testHookScanFailed is told each time a scan cannot read the directory
// for now.
var (
	testHookScan       atomic.Pointer[func()]
	testHookScanFailed atomic.Pointer[func(error)]
)

// liveInfos is the metadata of the entries (read from reg) whose owners
// live: a dead owner's name, its FIFOs left behind, is not among them. The
// one reading of the directory that a Watcher's scans and the one-shot
// ScanDir and LocateDir share.
func liveInfos(reg *naming.Registry, entries []naming.Entry) map[key]Info {
	var shmListeners *shm.Listeners
	read := false
	now := make(map[key]Info, len(entries))
	for _, e := range entries {
		if !e.Alive {
			continue
		}
		uid, err := sys.Owner(e.Path)
		if err != nil {
			continue // gone meanwhile
		}
		if !read {
			// A table that cannot be read (no /proc/net/unix) holds
			// no receiver: every name is then reported as "fifo".
			shmListeners, _ = shm.ReadListeners()
			read = true
		}
		info := Info{Name: e.Name, PID: e.PID, UID: uid, Transport: "fifo", Since: e.Created}
		if shmListeners.Has(reg.Dir(), e.Name, e.PID) {
			info.Transport = "shm"
		}
		now[key{e.Name, e.PID}] = info
	}
	return now
}

// ScanDir reads the FIFO directory dir ("" means $FIFO_PATH or /var/tmp)
// once, with no locator and no Watcher: the live names matching pattern
// (see Match), sorted by name and pid, with the metadata a Watcher gives
// them. Names whose owners died, their FIFOs left behind, are not listed.
// It is what Client.List answers from when no locator runs.
func ScanDir(dir, pattern string) ([]Info, error) {
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	reg, err := naming.Open(dir)
	if err != nil {
		return nil, err
	}
	entries, err := reg.List()
	if err != nil {
		return nil, errs.Errorf("locator: %w", err)
	}
	var out []Info
	for _, info := range liveInfos(reg, entries) {
		if Match(pattern, info.Name) {
			out = append(out, info)
		}
	}
	sortInfos(out)
	return out, nil
}

// LocateDir reads the FIFO directory dir ("" means $FIFO_PATH or
// /var/tmp) once, with no locator and no Watcher: the live owner of name,
// as Watcher.Lookup gives it, or simpl.ErrNotFound. It is what
// Client.Locate answers from when no locator runs.
func LocateDir(dir, name string) (Info, error) {
	if err := naming.CheckLocal(name); err != nil {
		return Info{}, err
	}
	reg, err := naming.Open(dir)
	if err != nil {
		return Info{}, err
	}
	entries, err := reg.Entries(name)
	if err != nil {
		return Info{}, errs.Errorf("locator: %w", err)
	}
	info, ok := earliest(liveInfos(reg, entries), name)
	if !ok {
		return Info{}, fmt.Errorf("%w: %q in %s", transport.ErrNotFound, name, reg.Dir())
	}
	return info, nil
}

// earliest is the owner of name in live, the earliest attach when two
// processes claim it (naming.Earlier's order: the older FIFO, then the
// lower pid).
func earliest(live map[key]Info, name string) (Info, bool) {
	var best Info
	found := false
	for k, info := range live {
		if k.name != name {
			continue
		}
		if !found || info.Since.Before(best.Since) || (info.Since.Equal(best.Since) && info.PID < best.PID) {
			best, found = info, true
		}
	}
	return best, found
}

func (w *journal) addLocked(kind Kind, info Info) {
	w.seq++
	if int(kind) < len(w.counts) {
		w.counts[kind]++
	}
	w.events = append(w.events, Event{Seq: w.seq, Kind: kind, Info: info})
	if len(w.events) > keep {
		w.events = append(w.events[:0], w.events[len(w.events)-keep:]...)
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *journal) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// Snapshot returns the live names matching pattern (see Match), sorted,
// and the number of the last event they reflect: a watch from that
// position misses nothing.
func (w *journal) Snapshot(pattern string) ([]Info, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Info
	for _, info := range w.live {
		if Match(pattern, info.Name) {
			out = append(out, info)
		}
	}
	sortInfos(out)
	return out, w.seq
}

// Lookup returns the live owner of name, the earliest attach when two
// processes claim it (the older FIFO, then the lower pid).
func (w *journal) Lookup(name string) (Info, error) {
	if err := naming.CheckLocal(name); err != nil {
		return Info{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	best, found := earliest(w.live, name)
	if !found {
		return Info{}, fmt.Errorf("%w: %q", transport.ErrNotFound, name)
	}
	return best, nil
}

// Next waits until there are events after position after whose names match
// pattern, and returns them (at most max, if max > 0) with the position to ask from
// next time. It returns ErrGap when events after the position are no longer
// kept, ctx.Err() when ctx ends, and ErrClosed or the reason the watch
// ended.
func (w *journal) Next(ctx context.Context, pattern string, after uint64, max int) ([]Event, uint64, error) {
	for {
		w.mu.Lock()
		switch {
		case w.closed:
			err := w.err // a Table's says why
			w.mu.Unlock()
			if err == nil {
				err = errs.Errorf("locator: %w", transport.ErrClosed)
			}
			return nil, after, err
		case w.err != nil:
			err := w.err
			w.mu.Unlock()
			return nil, after, err
		case after > w.seq:
			w.mu.Unlock()
			return nil, after, fmt.Errorf("%w: position %d is past the last event %d", ErrGap, after, w.seq)
		case len(w.events) > 0 && after+1 < w.events[0].Seq:
			w.mu.Unlock()
			return nil, after, fmt.Errorf("%w: position %d, the oldest kept is %d", ErrGap, after, w.events[0].Seq)
		}
		var out []Event
		pos := after
		for _, ev := range w.events {
			if ev.Seq <= after {
				continue
			}
			if max > 0 && len(out) == max {
				break
			}
			pos = ev.Seq
			if Match(pattern, ev.Info.Name) {
				out = append(out, ev)
			}
		}
		changed := w.changed
		w.mu.Unlock()
		if len(out) > 0 {
			return out, pos, nil
		}
		after = pos
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, after, ctx.Err()
		}
	}
}

// Close stops watching and ends every Next.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.changed)
	w.changed = make(chan struct{})
	for k, f := range w.owners {
		f.Close()
		delete(w.owners, k)
	}
	w.mu.Unlock()
	close(w.done)
	w.inot.Close()
	w.wg.Wait()
	return nil
}

// Match reports whether name matches pattern: "" and "*" match every name,
// otherwise shell-style with * ? and [...] (path.Match; names hold no '/').
// A malformed pattern matches nothing. A name across hosts, HOST:NAME, is
// matched whole by a pattern with a colon ("b:SRV*", "*:SRV"), and by its
// NAME alone otherwise ("SRV*" matches b:SRV1).
func Match(pattern, name string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	if i := strings.IndexByte(name, ':'); i >= 0 && !strings.Contains(pattern, ":") {
		name = name[i+1:]
	}
	ok, err := path.Match(pattern, name)
	return err == nil && ok
}

// CheckPattern reports a malformed pattern.
func CheckPattern(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%w: pattern %q: %v", transport.ErrBadName, pattern, err)
	}
	return nil
}

func sortInfos(s []Info) {
	slices.SortFunc(s, func(a, b Info) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.PID - b.PID
	})
}
