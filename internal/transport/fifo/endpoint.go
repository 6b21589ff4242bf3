package fifo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/errs"
	"io/fs"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// DefaultMaxMessage is the largest request an endpoint accepts unless
// Options.MaxMessage says otherwise.
const DefaultMaxMessage = 64 << 20

// DefaultPerm is the mode of the FIFOs and segments an endpoint creates
// unless Options.Perm says otherwise: only the same user can reach them.
const DefaultPerm os.FileMode = 0o600

// maxCachedSegments bounds how many idle sender segments a receiver keeps
// attached before it checks which senders have gone.
const maxCachedSegments = 64

// How far the reader reads ahead of Receive. It has one credit: one
// request or proxy posted and not yet received. After a small one
// (smallRequest bytes or less) it waits for the credit before it reads
// the next doorbell: Receive taking the request wakes it, and the reader
// is then ready when the next doorbell comes, which makes small FIFO round
// trips about a third faster on a 2-core machine (docs/benchmarks.md).
// After a larger one it reads the next doorbell first and waits for the
// credit after: waking it in the middle of a large reply cost 5-7% of a
// 1 MiB round trip. So readAhead doorbells at most are out of the FIFO
// (one posted, one read and held, its request not yet looked at); the
// rest, and their requests, wait in the FIFO.
const (
	readAhead    = 2
	smallRequest = 64 << 10
)

// sweepEvery is how often a receiver detaches the segments of senders that
// have gone, so their memory is freed while the receiver runs on.
const sweepEvery = 2 * time.Second

// Options configure Attach.
type Options struct {
	// Registry is the FIFO directory; nil means naming.Open("").
	Registry *naming.Registry
	// Perm is the mode of the FIFOs and segments the endpoint creates.
	// Zero means DefaultPerm (0600). C SIMPL creates 0666 FIFOs and 0777
	// segments; ask for 0666 only when peers run as other users, knowing
	// that every local user can then send to the name and read or alter
	// the messages this endpoint sends.
	Perm os.FileMode
	// MaxMessage is the largest request Receive accepts; a larger one
	// fails for its sender with ErrTooLarge. Zero means DefaultMaxMessage.
	MaxMessage int
	// Queue is where the endpoint delivers requests and proxies, shared
	// with the other transports of the name; its owner closes it before
	// the endpoints. Nil means a queue of the endpoint's own, read by
	// Endpoint.Receive.
	Queue *transport.Queue
	// ThreadWait makes a Send wait for its reply in a system call on the
	// calling thread rather than in Go's poller (transport.Config).
	ThreadWait bool
	// ThreadReceive makes a Receive read the receive FIFO and wait for
	// it on its own thread (transport.Config): no reader goroutine, the
	// endpoint is its queue's Feeder (feed.go).
	ThreadReceive bool
}

// Endpoint is one attached name on the FIFO transport: the receive FIFO
// NAME.PID and the sender identity NAME with its reply FIFO YNAME.PID.
// Safe for concurrent use; Close is idempotent and unblocks every waiter.
type Endpoint struct {
	reg  *naming.Registry
	name string
	pid  int
	perm os.FileMode
	// threadWait: Sends wait for replies on their calling threads
	// (Options.ThreadWait); threadRx: Receive reads the FIFO on its
	// own (Options.ThreadReceive, feed.go).
	threadWait, threadRx bool
	maxMsg               int
	rxPath               string
	rx                   *os.File // the receive FIFO, open read-write so it never sees EOF; nil with threadRx
	rxRaw                syscall.RawConn
	// With threadRx the receive FIFO is rxFD instead, outside Go's
	// poller, read by Receive's thread (feed.go); rxWaker ends its wait.
	rxFD, rxWaker *sys.FD
	token         uint64 // names this receiver in a segment's claim (see segment.go)
	// fifoMode and fifoGID are the receive FIFO's: who else may ring.
	fifoMode, fifoGID uint32

	q          *transport.Queue
	ownQueue   bool
	credit     *transport.Credit // one posted and not yet received (see readAhead)
	done       chan struct{}     // closed by Close
	janDone    chan struct{}     // closed when the janitor has returned
	readerDone chan struct{}
	closeOnce  sync.Once
	dropped    atomic.Int64 // doorbells that named no usable segment
	misaligned atomic.Int64 // stray writes resynchronised from (resync.go)
	shortages  atomic.Int64 // waits for descriptors (see dispatch)

	// The reader's own (resync.go): the bytes of the last read, whether
	// the stream was still aligned after it (set by checkAligned, made
	// once so the check allocates nothing), and the resync buffer.
	readN        int
	isAligned    bool
	checkAligned func(fd uintptr)
	rbuf         []byte

	// Receive's thread reading (feed.go). feedMu guards the fields up to
	// watchDone (watchFirst is the watch goroutine's).
	feedMu     sync.Mutex
	feedClosed bool
	feeding    bool   // in Feed: post hands over to it
	fedWords   []word // doorbells a resync found, served one a Feed
	fedClaim   bool   // they are taken only by their claims
	fedReq     transport.Request
	fedProxy   int
	hasFed     bool
	watchFile  *os.File
	watchDone  chan struct{}
	watchFirst bool
	sleeping   atomic.Bool // a Wait may be in ppoll
	kicked     atomic.Bool // Wake rang the waker
	maybe      atomic.Bool // watching: the FIFO may hold something
	watchOn    atomic.Bool

	mu       sync.Mutex // guards the receiver state below
	closed   bool
	segs     map[int]*rseg
	idleBig  *rseg // the big segment kept attached while idle (see releaseSeg)
	bySender map[senderKey]int
	pending  map[*Request]struct{}

	freeMu   sync.Mutex // guards freeReqs
	freeReqs []*Request // answered, for reuse (request.go)

	replyMu  sync.Mutex // guards replyFDs and every write to them
	replyFDs map[senderKey]*sys.FD
	// reserve is a descriptor held so that a reply can be rung even when
	// this process has run out (see ring); nil while spent. Under replyMu.
	reserve *sys.FD

	spareMu   sync.Mutex   // guards spare, spareUsed and spareGone
	spare     *sys.Mapping // kept for the next large request's copy (see copy.go)
	spareUsed bool         // taken or put back since the janitor last looked
	spareGone bool         // closed: nothing is kept any more

	slotMu sync.Mutex // guards the sender slots below, and abandoned
	free   []*slot
	busy   map[*slot]struct{}
	// abandoned counts, by receiver pid, the requests given up on that
	// the receiver still holds (drain), for maxAbandoned; answered is
	// closed (and replaced) whenever a count drops.
	abandoned    map[int]int
	answered     chan struct{}
	abandonedAll atomic.Int32 // abandoned's sum, for Send's look without the lock
}

type senderKey struct {
	whom string
	pid  int
}

// rseg is a sender's segment attached by this receiver, kept attached
// between messages so a steady sender costs no shmat per message.
type rseg struct {
	segment
	refs  int  // requests still using it
	evict bool // detach when refs drops to 0
	used  bool // taken since the janitor last looked (big segments: see sweepLocked)
	cr    *creator
	// needClaim: some who may ring this receiver could not use the
	// segment themselves, so a request in it is taken only by its claim
	// (see trust.go).
	needClaim bool
}

// Attach attaches name in this process. Stale FIFOs of dead owners are
// reaped first; a live owner makes it ErrNameInUse.
func Attach(name string, opts Options) (*Endpoint, error) {
	if err := naming.CheckLocal(name); err != nil {
		return nil, err
	}
	reg := opts.Registry
	if reg == nil {
		var err error
		if reg, err = naming.Open(""); err != nil {
			return nil, err
		}
	}
	e := &Endpoint{
		reg:        reg,
		name:       name,
		pid:        os.Getpid(),
		perm:       opts.Perm,
		threadWait: opts.ThreadWait,
		threadRx:   opts.ThreadReceive,
		maxMsg:     opts.MaxMessage,
		q:          opts.Queue,
		credit:     transport.NewCredit(readAhead - 1),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		segs:       make(map[int]*rseg),
		bySender:   make(map[senderKey]int),
		pending:    make(map[*Request]struct{}),
		replyFDs:   make(map[senderKey]*sys.FD),
		busy:       make(map[*slot]struct{}),
	}
	if e.perm == 0 {
		e.perm = DefaultPerm
	}
	if e.maxMsg <= 0 {
		e.maxMsg = DefaultMaxMessage
	}
	if e.q == nil {
		e.q, e.ownQueue = transport.NewQueue(name, true), true
	}
	if _, err := reg.Reap(name); err != nil {
		return nil, errs.Errorf("attach %q: reaping stale owners: %w", name, err)
	}
	// Other names' FIFOs left by dead processes, a bounded number per
	// attach. Failing to is no reason not to attach.
	reg.ReapSome(naming.SweepLimit)
	// Segments of senders killed while making them (see reclaim.go). An
	// error here is no reason not to attach.
	ReclaimSegments()
	if owner, err := reg.Lookup(name); err == nil {
		return nil, errs.Errorf("%w: %q is attached by pid %d", transport.ErrNameInUse, name, owner.PID)
	}
	e.rxPath = reg.ReceivePath(name, e.pid)
	if err := mkfifoOwn(e.rxPath, e.perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, errs.Errorf("%w: %s exists", transport.ErrNameInUse, e.rxPath)
		}
		return nil, errs.Errorf("attach %q: %w", name, err)
	}
	primary, err := e.newSlot(name)
	if err != nil {
		os.Remove(e.rxPath)
		if errors.Is(err, fs.ErrExist) {
			return nil, errs.Errorf("%w: %q: its reply FIFO is taken by another name of this process", transport.ErrNameInUse, name)
		}
		return nil, errs.Errorf("attach %q: %w", name, err)
	}
	fail := func(err error) (*Endpoint, error) {
		primary.destroy()
		os.Remove(e.rxPath)
		return nil, err
	}
	if err := e.openRx(); err != nil {
		return fail(errs.Errorf("attach %q: %w", name, err))
	}
	var ferr error
	e.rxControl(func(fd int) { e.token, e.fifoMode, e.fifoGID, ferr = fifoToken(fd, e.pid) })
	if ferr != nil {
		e.closeRx()
		return fail(errs.Errorf("attach %q: %w", name, ferr))
	}
	// Two processes may have attached at the same moment; the earlier FIFO
	// wins and the later one backs out.
	if err := e.checkRace(); err != nil {
		e.closeRx()
		return fail(err)
	}
	if e.threadRx {
		if err := e.q.SetFeeder(e); err != nil {
			e.closeRx()
			return fail(errs.Errorf("attach %q: %w", name, err))
		}
	}
	e.free = append(e.free, primary)
	e.reserve, _ = sys.Reserve() // none is no reason not to attach
	e.checkAligned = func(fd uintptr) { e.isAligned = aligned(int(fd), e.readN) }
	if e.threadRx {
		close(e.readerDone) // Receive's thread reads (feed.go)
	} else {
		go e.readLoop()
	}
	e.janDone = make(chan struct{})
	go e.janitor()
	return e, nil
}

// openRx opens the receive FIFO: in Go's poller for the reader goroutine,
// or outside it, with a waker, for Receive's thread (threadRx).
func (e *Endpoint) openRx() error {
	if !e.threadRx {
		var err error
		if e.rx, err = openOwnFIFO(e.rxPath); err != nil {
			return err
		}
		if e.rxRaw, err = e.rx.SyscallConn(); err != nil {
			e.rx.Close()
			return err
		}
		return nil
	}
	fd, err := sys.OpenReader(e.rxPath)
	if err != nil {
		return err
	}
	if e.rxWaker, err = sys.NewWaker(); err != nil {
		fd.Close()
		return err
	}
	e.rxFD = fd
	return nil
}

// rxControl calls fn with the receive FIFO's descriptor.
func (e *Endpoint) rxControl(fn func(fd int)) {
	if e.rxFD != nil {
		e.rxFD.Control(fn)
		return
	}
	e.rxRaw.Control(func(fd uintptr) { fn(int(fd)) })
}

// closeRx closes the receive FIFO (and the waker).
func (e *Endpoint) closeRx() {
	if e.rxFD != nil {
		e.rxFD.Close()
		e.rxWaker.Close()
		return
	}
	e.rx.Close()
}

// openOwnFIFO opens a FIFO this process made, read-write, in Go's poller:
// not through a symbolic link, and only a FIFO (something else put in its
// place in a directory others may write is refused).
func openOwnFIFO(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		f.Close()
		return nil, fmt.Errorf("open %s: not a FIFO", path)
	}
	return f, nil
}

// mkfifoOwn makes the FIFO at path, a path with this process's pid in its
// name. A file there of another user was forged ahead of us (that user
// cannot be this process): it is removed if this process may, and
// otherwise the error names its owner and wraps ErrNameInUse. A file of
// this process's own user is left: ErrExist.
func mkfifoOwn(path string, perm os.FileMode) error {
	err := sys.Mkfifo(path, perm)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	uid, oerr := sys.Owner(path)
	if oerr != nil || uid == os.Geteuid() {
		return err
	}
	if rerr := os.Remove(path); rerr != nil {
		return errs.Errorf("%w: %s was made by uid %d, not by this process, and cannot be removed: %w", transport.ErrNameInUse, path, uid, rerr)
	}
	return sys.Mkfifo(path, perm)
}

// janitor periodically detaches idle segments whose senders are gone, and
// the big segments of this endpoint's idle sender slots.
func (e *Endpoint) janitor() {
	defer close(e.janDone)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
			e.mu.Lock()
			if !e.closed {
				e.sweepLocked()
			}
			e.mu.Unlock()
			e.shrinkIdle()
			e.dropSpare(false)
		}
	}
}

func (e *Endpoint) checkRace() error {
	all, err := e.reg.Entries(e.name)
	if err != nil {
		return err
	}
	var mine *naming.Entry
	for i := range all {
		if all[i].Name == e.name && all[i].PID == e.pid {
			mine = &all[i]
		}
	}
	if mine == nil {
		return errs.Errorf("attach %q: receive FIFO vanished", e.name)
	}
	for _, other := range all {
		if other.Name == e.name && other.PID != e.pid && other.Alive && naming.Earlier(other, *mine) {
			return errs.Errorf("%w: %q was attached by pid %d at the same moment", transport.ErrNameInUse, e.name, other.PID)
		}
	}
	return nil
}

// Name is the attached name.
func (e *Endpoint) Name() string { return e.name }

// Dropped counts doorbells that named no usable segment or a corrupt
// header and so could not be answered.
func (e *Endpoint) Dropped() int64 { return e.dropped.Load() }

// readLoop reads doorbells and posts each to the queue, holding at most
// readAhead of them out of the FIFO: it posts one only when the queue has
// taken the one before, and reads no further meanwhile. Each doorbell is
// one read of up to 4 bytes, checked for alignment (resync.go).
func (e *Endpoint) readLoop() {
	defer close(e.readerDone)
	var b [4]byte
	early := true // take the credit before reading the next doorbell
	for {
		if early && !e.q.TakeCredit(e.credit, e.done) {
			return
		}
		n, err := e.rx.Read(b[:])
		if err != nil {
			if early {
				e.credit.Return()
			}
			return
		}
		e.readN = n
		if cerr := e.rxRaw.Control(e.checkAligned); cerr != nil || !e.isAligned {
			if !e.resyncRead(b[:n], early) {
				return
			}
			early = true
			continue
		}
		v := int32(binary.NativeEndian.Uint32(b[:]))
		if !early && !e.q.TakeCredit(e.credit, e.done) {
			e.dispatch(v, true, false) // closing: answered, not posted
			return
		}
		size, nothing := e.dispatchRead(v)
		if nothing {
			// Counting what the FIFO holds cannot tell two stray writes
			// whose lengths add up to whole doorbells from none: a word
			// that names nothing is checked as a stray would be.
			if !e.recheckRead(b[:], false) {
				return
			}
			early = true
			continue
		}
		early = size <= smallRequest
	}
}

// resyncRead resynchronises after the misaligned bytes hand (resync.go)
// and dispatches what it found, a credit for each; held: the reader holds
// one already. It returns false when the endpoint is closing, having
// answered the rest.
func (e *Endpoint) resyncRead(hand []byte, held bool) bool {
	var words []word
	e.rxRaw.Control(func(fd uintptr) { words = e.resync(int(fd), hand, len(hand) < 4) })
	return e.dispatchWords(words, held, true)
}

// recheckRead checks the doorbell stream after a word that named nothing
// (hand, 4 bytes read while the FIFO seemed aligned; see recheck) and
// dispatches what it found, as resyncRead does.
func (e *Endpoint) recheckRead(hand []byte, held bool) bool {
	var words []word
	mustClaim := false
	e.rxRaw.Control(func(fd uintptr) { words, mustClaim = e.recheck(int(fd), hand) })
	return e.dispatchWords(words, held, mustClaim)
}

// dispatchWords dispatches words, a credit for each (held: the reader
// holds one already). It returns false when the endpoint is closing,
// having answered the rest.
func (e *Endpoint) dispatchWords(words []word, held, mustClaim bool) bool {
	for i, w := range words {
		if !held && !e.q.TakeCredit(e.credit, e.done) {
			for _, w := range words[i:] {
				e.dispatch(w.v, true, mustClaim)
			}
			return false
		}
		held = false
		e.dispatch(w.v, false, mustClaim)
	}
	if held {
		e.credit.Return()
	}
	return true
}

// dispatch turns one doorbell into a request or a proxy and posts it to
// the queue. When closing, it fails requests at once instead. mustClaim:
// the doorbell came out of a resync, and a segment with a claim is taken
// only by it (see accept).
// The reader holds a credit slot for it unless closing.
// It returns the size of the request it posted (0 for anything else).
//
// A request this receiver cannot check for want of descriptors (its own
// shortage, never the sender's fault) waits: the reader retries it, the
// wait doubling from 1 ms up to 100 ms, until descriptors are free again
// (counted in Shortages). The doorbells behind it wait in the FIFO
// meanwhile, as they would behind a slow Receive. Close ends the wait and
// answers the request as closed.
func (e *Endpoint) dispatch(v int32, closing, mustClaim bool) int {
	n, _ := e.dispatchOne(v, closing, mustClaim, false)
	return n
}

// dispatchRead is dispatch for a word the reader read from a stream that
// looked aligned. A word that names nothing a sender could have rung (a
// proxy over 65535, a segment this receiver cannot attach) is not dropped
// but reported (nothing), having posted nothing and given back the
// credit, for the reader to check the stream again (see recheck). So the
// check costs a round trip nothing: the segment is looked up once, where
// dispatch attaches it anyway.
func (e *Endpoint) dispatchRead(v int32) (size int, nothing bool) {
	return e.dispatchOne(v, false, false, true)
}

func (e *Endpoint) dispatchOne(v int32, closing, mustClaim, check bool) (int, bool) {
	if v < 0 && check && rateProxyWord(v) == rateNone {
		e.credit.Return()
		return 0, true
	}
	if v < 0 {
		if v == math.MinInt32 || closing {
			e.dropped.Add(1)
			if !closing {
				e.credit.Return()
			}
			return 0, false
		}
		e.post(transport.Request{}, int(-v))
		return 0, false
	}
	held := !closing // the credit
	req, err := e.accept(int(v), mustClaim, closing)
	for wait := time.Millisecond; errors.Is(err, errShortage); wait = min(2*wait, 100*time.Millisecond) {
		e.shortages.Add(1)
		if !closing && !e.pause(wait) {
			closing = true
		}
		req, err = e.accept(int(v), mustClaim, closing)
		if closing && errors.Is(err, errShortage) {
			break
		}
	}
	if err != nil || closing {
		if held {
			e.credit.Return()
		}
		switch {
		case err == nil:
			req.answerClosed()
		case check && !closing && errors.Is(err, errNoSegment):
			return 0, true
		default:
			e.dropped.Add(1)
		}
		return 0, false
	}
	n, gen := req.hdr.nbytes, req.gen
	if !e.post(transport.NewRequest(req, gen), 0) {
		req.answerClosed()
	}
	return n, false
}

// pause waits d, or until the endpoint closes: false then.
func (e *Endpoint) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.done:
		return false
	case <-t.C:
		return true
	}
}

// Shortages counts the waits for descriptors this receiver ran out of:
// the reader's before it could check a request (see dispatch), and a
// reply's before it could open the sender's reply FIFO (see ring).
func (e *Endpoint) Shortages() int64 { return e.shortages.Load() }

// Receive waits for the next request or proxy on the endpoint's own
// queue (Options.Queue nil).
func (e *Endpoint) Receive(ctx context.Context) (transport.Request, int, error) {
	return e.q.Receive(ctx)
}

// accept attaches the segment a doorbell names, checks who may have rung
// it and its header (see trust.go), and copies the request out, so a
// sender changing its segment later cannot change what the receiver
// already read. A request that fails the checks of trust.go is dropped
// unanswered: the only reply FIFO it names is one it may not reach.
// mustClaim: a segment with a trailer is taken only by its claim, even on
// a private receiver (the doorbell came out of a resync). An error
// wrapping errShortage is this receiver's own want of descriptors: the
// request is left as it was found, to be tried again; closing takes it on
// what can be checked without one (see creator.verify).
func (e *Endpoint) accept(id int, mustClaim, closing bool) (*Request, error) {
	seg, err := e.attachSeg(id)
	if err != nil {
		return nil, err
	}
	trailer := seg.hasTrailer()
	claimed := false
	if seg.needClaim || (mustClaim && trailer) {
		// Before the header is read: the claim orders the sender's writes
		// before this reader's, whoever rang.
		if !trailer || !seg.takeClaim(e.token) {
			e.releaseSeg(seg)
			return nil, errs.Errorf("%w: segment %d: no request in it for this receiver", transport.ErrBadMessage, id)
		}
		claimed = true
	}
	h, err := seg.readHeader()
	if h.pid > 0 {
		if verr := seg.cr.verify(h.pid, closing); verr != nil {
			if errors.Is(verr, errShortage) {
				if claimed {
					seg.putClaim(e.token) // as found: tried again
				}
				e.releaseSeg(seg)
				return nil, verr
			}
			if seg.cr.bad != nil {
				// Its creator has gone or failed for good: nothing in the
				// segment will be served again, so it goes now.
				e.mu.Lock()
				seg.evict = true
				e.mu.Unlock()
			}
			e.releaseSeg(seg)
			return nil, fmt.Errorf("segment %d: %w", id, verr)
		}
	}
	if err == nil && h.nbytes > e.maxMsg {
		err = transport.TooLarge(h.nbytes, e.maxMsg)
	}
	if trailer {
		// A reply never overwrites the claim.
		h.ybytes = min(h.ybytes, seg.room())
	}
	if err != nil {
		if h.pid > 0 && checkWhom(h.whom) == nil {
			code := int32(codeBadHeader)
			if errors.Is(err, transport.ErrTooLarge) {
				code = codeTooLarge
			}
			seg.put(offNBytes, code)
			e.ring(h, -1)
		}
		e.releaseSeg(seg)
		return nil, err
	}
	e.noteSender(seg, h)
	r := e.newRequest(seg, h)
	r.seg, r.hdr = seg, h
	if h.nbytes <= eagerCopy {
		r.copyData()
	}
	r.mu.Unlock()
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.pending[r] = struct{}{}
	}
	e.mu.Unlock()
	if closed {
		r.answerClosed()
		return nil, transport.ErrClosed
	}
	return r, nil
}

func (e *Endpoint) attachSeg(id int) (*rseg, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.segs[id]; ok {
		s.refs++
		s.evict = false
		s.used = true
		return s, nil
	}
	if len(e.segs) >= maxCachedSegments {
		e.sweepLocked()
	}
	mem, err := sys.ShmAttach(id)
	if err != nil {
		return nil, errs.Errorf("%w: doorbell names segment %d, %w: %w", transport.ErrBadMessage, id, errNoSegment, err)
	}
	// While it is attached its id cannot name another segment: what is
	// learnt of it now holds for as long as it is kept.
	info, err := sys.ShmStat(id)
	if err != nil {
		sys.ShmDetach(mem)
		return nil, errs.Errorf("%w: doorbell names segment %d: %w", transport.ErrBadMessage, id, err)
	}
	s := &rseg{
		segment:   segment{id: id, mem: mem},
		refs:      1,
		cr:        newCreator(info),
		needClaim: !ringersMayUse(e.fifoMode, e.fifoGID, info),
	}
	e.segs[id] = s
	return s, nil
}

// noteSender records that the sender identity in h now uses seg; the
// segment it used before was replaced and is detached once idle.
func (e *Endpoint) noteSender(seg *rseg, h header) {
	k := senderKey{h.whom, h.pid}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old, ok := e.bySender[k]; ok && old != seg.id {
		if o := e.segs[old]; o != nil {
			o.evict = true
			e.maybeDetachLocked(o)
		}
	}
	e.bySender[k] = seg.id
}

func (e *Endpoint) releaseSeg(s *rseg) {
	e.mu.Lock()
	s.refs--
	if s.refs == 0 && len(s.mem) > bigSegment && !s.evict && e.idleBig != s {
		// One idle big segment stays attached, the last one used: a steady
		// sender of large messages keeps its own, and a crowd of them (a
		// flood of large requests from many processes) costs this
		// process's memory one at a time, not all at once.
		if o := e.idleBig; o != nil && o.refs == 0 {
			o.evict = true
			e.maybeDetachLocked(o)
		}
		e.idleBig = s
	}
	e.maybeDetachLocked(s)
	e.mu.Unlock()
}

func (e *Endpoint) maybeDetachLocked(s *rseg) {
	if s.refs > 0 || !(s.evict || e.closed) {
		return
	}
	if e.idleBig == s {
		e.idleBig = nil
	}
	sys.ShmDetach(s.mem)
	s.cr.close()
	delete(e.segs, s.id)
	for k, id := range e.bySender {
		if id == s.id {
			delete(e.bySender, k)
		}
	}
}

// sweepLocked detaches idle segments whose owner has detached (we are the
// only process left on them), and segments of more than bigSegment bytes
// not used since the sweep before: the pages of a big one, once read,
// count against this process for as long as it stays attached, but
// attaching it again for every message would cost more than the message
// (its pages faulted in anew each time: twice the time of a 1 MiB round
// trip).
func (e *Endpoint) sweepLocked() {
	for _, s := range e.segs {
		if s.refs > 0 {
			continue
		}
		if len(s.mem) > bigSegment {
			if !s.used {
				s.evict = true
				e.maybeDetachLocked(s)
				continue
			}
			s.used = false
		}
		if n, err := sys.ShmAttached(s.id); err != nil || n <= 1 {
			s.evict = true
			e.maybeDetachLocked(s)
		}
	}
}

// ring writes v to the reply FIFO of the sender in h. The FIFO stays open
// for the next reply; a cached descriptor whose reader has gone (EPIPE) is
// reopened once, which is how a new process that reused the pid and name
// is reached.
func (e *Endpoint) ring(h header, v int32) error { return e.ringOpt(h, v, true) }

// ringOpt is ring; without wait it does not wait for descriptors when
// this process is out of them, and fails instead.
func (e *Endpoint) ringOpt(h header, v int32, wait bool) error {
	k := senderKey{h.whom, h.pid}
	e.replyMu.Lock()
	defer e.replyMu.Unlock()
	var pause time.Duration
	for reopened := false; ; {
		fd, ok := e.replyFDs[k]
		if !ok {
			raw, err := sys.OpenWriter(e.reg.ReplyPath(h.whom, h.pid))
			switch {
			case errors.Is(err, sys.ErrNoReader), errors.Is(err, fs.ErrNotExist):
				// No reader, or no reply FIFO: the sender has gone.
				return errs.Errorf("%w: sender %s (pid %d): %w", transport.ErrPeerGone, h.whom, h.pid, err)
			case sys.IsShortage(err) && len(e.replyFDs) > 0:
				// This receiver is out of descriptors: the reply FIFOs
				// it keeps open for other senders go first (they are
				// opened again when needed), then its reserve.
				for k2, fd2 := range e.replyFDs {
					fd2.Close()
					delete(e.replyFDs, k2)
				}
				continue
			case sys.IsShortage(err) && e.reserve != nil:
				e.reserve.Close()
				e.reserve = nil
				continue
			case sys.IsShortage(err):
				// And then it waits for descriptors while it is open,
				// as the reader does (dispatch): the sender is waiting
				// for this answer, and its loss would hang it.
				pause = min(max(2*pause, time.Millisecond), 100*time.Millisecond)
				if wait && e.pause(pause) {
					e.shortages.Add(1)
					continue
				}
				return errs.Errorf("answering sender %s (pid %d): %w", h.whom, h.pid, err)
			case err != nil:
				// Out of descriptors, say: the sender may well be alive
				// and waiting, so it is not reported gone.
				return errs.Errorf("answering sender %s (pid %d): %w", h.whom, h.pid, err)
			}
			if len(e.replyFDs) >= maxCachedSegments {
				for k2, fd2 := range e.replyFDs {
					fd2.Close()
					delete(e.replyFDs, k2)
				}
			}
			fd = sys.NewFD(raw)
			e.replyFDs[k] = fd
		}
		// replyMu orders every Close of fd after this write.
		err := sys.WriteInt32(fd.Int(), v)
		if err == nil {
			if e.reserve == nil && !e.isClosed() {
				e.reserve, _ = sys.Reserve() // again, once there is room
			}
			return nil
		}
		fd.Close()
		delete(e.replyFDs, k)
		if sys.IsBrokenPipe(err) && !reopened {
			reopened = true
			continue
		}
		if sys.IsBrokenPipe(err) {
			return errs.Errorf("%w: sender %s (pid %d)", transport.ErrPeerGone, h.whom, h.pid)
		}
		return errs.Errorf("reply to %s (pid %d): %w", h.whom, h.pid, err)
	}
}

// Close detaches the name: its FIFOs go, waiting Receives and this
// endpoint's own blocked Sends return ErrClosed, and every sender whose
// message was read but not answered, or still sits in the FIFO, gets a
// "receiver detached" error.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(e.close)
	return nil
}

// Close reads its FIFO until it is empty, but at most maxCloseDrain bytes
// (a pipe holds 1 MiB at most unless root raised the limit: this is that
// many times over) and for at most closeDrainFor.
const (
	maxCloseDrain = 16 << 20
	closeDrainFor = time.Second
)

func (e *Endpoint) close() {
	close(e.done)
	<-e.janDone // a sweep under way ends before the slots go
	if e.ownQueue {
		e.q.Close()
	}
	// Reply FIFOs lose their names before the receive FIFO does: for a
	// moment, a lone YNAME.PID would read as a name of its own to whoever
	// lists the directory (a name may begin with Y).
	e.slotMu.Lock()
	for _, s := range e.free {
		os.Remove(s.path)
	}
	for s := range e.busy {
		os.Remove(s.path)
	}
	e.slotMu.Unlock()
	os.Remove(e.rxPath)
	if e.threadRx {
		e.closeFeed()
		// Doorbells a resync found and no Feed served yet.
		for _, w := range e.fedWords {
			e.dispatch(w.v, true, e.fedClaim)
		}
		e.fedWords = nil
	} else {
		e.rx.SetReadDeadline(time.Unix(1, 0))
	}
	<-e.readerDone
	// Answer the doorbells still in the FIFO, resynchronising as the
	// reader does (resync.go), until it is empty. The reader has stopped:
	// its state is ours. Conns keep their descriptors after the FIFO
	// loses its name, so a writer that keeps ringing (a loop of proxies)
	// could keep it from ever being empty: past maxCloseDrain bytes or
	// closeDrainFor, Close stops reading, and what is written later is
	// lost with the FIFO (its writers see the read side close:
	// ErrPeerGone for a Trigger; a Send whose doorbell was lost waits
	// until its context ends).
	e.rxControl(func(fd int) {
		var b [4]byte
		left, until := maxCloseDrain, time.Now().Add(closeDrainFor)
		for i := 0; left > 0; i++ {
			if i&1023 == 1023 && time.Now().After(until) {
				return
			}
			n, err := sys.ReadNonblock(int(fd), b[:])
			if err != nil || n == 0 {
				return
			}
			left -= n
			if aligned(int(fd), n) {
				v := int32(binary.NativeEndian.Uint32(b[:]))
				if e.plausible(v) {
					e.dispatch(v, true, false)
					continue
				}
				words, mustClaim := e.recheck(int(fd), b[:])
				for _, w := range words {
					e.dispatch(w.v, true, mustClaim)
				}
				continue
			}
			for _, w := range e.resync(int(fd), b[:n], n < 4) {
				e.dispatch(w.v, true, true)
			}
		}
	})
	e.closeRx()

	e.mu.Lock()
	e.closed = true
	reqs := make([]*Request, 0, len(e.pending))
	for r := range e.pending {
		reqs = append(reqs, r)
	}
	e.mu.Unlock()
	for _, r := range reqs {
		r.answerClosed()
	}

	e.slotMu.Lock()
	free := e.free
	e.free = nil
	busy := make([]*slot, 0, len(e.busy))
	for s := range e.busy {
		busy = append(busy, s)
	}
	e.slotMu.Unlock()
	for _, s := range free {
		s.destroy()
	}
	// Busy slots belong to Sends in progress (or to drainers of Sends
	// that gave up): closing their reply FIFO wakes them, and they destroy
	// the slot on the way out. The FIFO's name goes now, so a process that
	// exits right after Close leaves nothing behind.
	for _, s := range busy {
		os.Remove(s.path)
		s.endWait()
	}

	e.mu.Lock()
	for _, s := range e.segs {
		e.maybeDetachLocked(s)
	}
	e.mu.Unlock()
	e.replyMu.Lock()
	for k, fd := range e.replyFDs {
		fd.Close()
		delete(e.replyFDs, k)
	}
	if e.reserve != nil {
		e.reserve.Close()
		e.reserve = nil
	}
	e.replyMu.Unlock()
	e.dropSpare(true)
}
