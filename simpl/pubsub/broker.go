package pubsub

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// Defaults and bounds of a Broker (see the options).
const (
	DefaultMaxTopics        = 65536
	DefaultMaxData          = 64 << 10
	DefaultQueue            = 1024
	DefaultMaxQueue         = 65536
	DefaultMaxSubscriptions = 4096
	DefaultMaxRetained      = 64 << 20
	DefaultLease            = time.Minute
	DefaultSweep            = time.Second
	DefaultMetricTopics     = 1000
	DefaultBatch            = 256
	MaxBatch                = 4096
	MaxLease                = 24 * time.Hour
	DefaultMaxQueueBytes    = 16 << 20
	DefaultMaxQueuedBytes   = 256 << 20
)

// Reply sizes, for batches cut to fit the subscriber's reply buffer: an
// upper bound of a nextReply's encoding without its messages, and of one
// message's beyond its topic and data.
const (
	replyOverhead   = 256
	messageOverhead = 64
)

// Option configures NewBroker.
type Option func(*config)

type config struct {
	maxTopics, maxData, maxQueue, maxSubs int
	maxRetained                           int64
	maxQueueBytes, maxQueuedBytes         int64
	lease, sweep                          time.Duration
	metricTopics                          int
	workers                               int
	logger                                *slog.Logger
	loggerSet                             bool
}

// WithMaxTopics bounds the topics the broker knows (DefaultMaxTopics). A
// topic is kept, with its sequence number and counters, for as long as
// the broker runs; a publish to one more topic fails with ErrLimit.
func WithMaxTopics(n int) Option { return func(c *config) { c.maxTopics = n } }

// WithMaxData bounds a message's data (DefaultMaxData); a larger publish
// fails with simpl.ErrTooLarge.
func WithMaxData(n int) Option { return func(c *config) { c.maxData = n } }

// WithMaxQueue bounds the queue a subscription may ask for
// (DefaultMaxQueue); larger requests get this size.
func WithMaxQueue(n int) Option { return func(c *config) { c.maxQueue = n } }

// WithMaxQueueBytes bounds the data the broker holds for one
// subscription (DefaultMaxQueueBytes), whatever its queue's size in
// messages: its queue and the batch it was sent and has not acknowledged
// yet. Past it, the queue lets go of its oldest messages (counted as
// overflow), keeping the newest at least.
func WithMaxQueueBytes(n int64) Option { return func(c *config) { c.maxQueueBytes = n } }

// WithMaxQueuedBytes bounds the data the broker holds for every
// subscription together (DefaultMaxQueuedBytes; a message in several
// queues counts in each): their queues, and the batches sent and not yet
// acknowledged. Past it, the queue of the subscription holding the most
// lets go of its oldest messages (overflow), keeping its newest at
// least, so that subscribers that stopped taking give way first. A batch
// in flight cannot give way (it was sent), but counts until it is
// acknowledged, so a batch sent while past the budget holds one message.
// So subscribers that do not keep up, or stop, or ask again and again for
// a batch without acknowledging it, cannot make the broker's memory grow
// beyond it and the retained messages' budget (WithMaxRetained), but for
// up to two messages a subscription: the newest of its queue and a batch
// of one.
func WithMaxQueuedBytes(n int64) Option { return func(c *config) { c.maxQueuedBytes = n } }

// WithMaxSubscriptions bounds the open subscriptions
// (DefaultMaxSubscriptions); one more fails with ErrLimit.
func WithMaxSubscriptions(n int) Option { return func(c *config) { c.maxSubs = n } }

// WithMaxRetained bounds the bytes of data kept as the newest message of
// each topic, which subscriptions that ask for Current start with
// (DefaultMaxRetained). Past it, the topics published to least recently
// lose theirs first.
func WithMaxRetained(bytes int64) Option { return func(c *config) { c.maxRetained = bytes } }

// WithDefaultLease sets how long a subscription that asks for no lease of its own
// lives without a Next waiting (DefaultLease). A subscriber that does not
// come back for its next batch within its lease is presumed gone.
func WithDefaultLease(d time.Duration) Option { return func(c *config) { c.lease = d } }

// WithSweep sets how often the broker looks for subscriptions whose
// process died or whose lease ran out (DefaultSweep).
func WithSweep(d time.Duration) Option { return func(c *config) { c.sweep = d } }

// WithMetricTopics bounds the topics that get series of their own in the
// broker's metrics (DefaultMetricTopics): the first n topics published
// to; the others are added up under topic="#other" (no topic contains
// '#'). It keeps a scrape's size bounded whatever topics publishers make
// up.
func WithMetricTopics(n int) Option { return func(c *config) { c.metricTopics = n } }

// WithWorkers sets how many requests the broker handles at once (typed's
// default, GOMAXPROCS, when 0). Held Next requests take no worker.
func WithWorkers(n int) Option { return func(c *config) { c.workers = n } }

// WithLogger sets where failures no client hears of are reported, at
// level Error, and, at level Warn, a host with remote subscribers whose
// names cannot be followed (remote.go) (the default is slog.Default();
// nil discards).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.loggerSet = l, true }
}

// Broker is a publish/subscribe broker: it serves a simpl Channel, queues
// every published message for each subscription whose pattern matches
// its topic, and answers each subscription's held Next when there is
// something for it. It never waits for a subscriber: a full queue drops
// its oldest message and counts it; Counts reads the counters (package
// pubsubprom serves them as Prometheus metrics). Safe for concurrent use.
type Broker struct {
	o       config
	epoch   uint64
	now     func() time.Time
	alive   func(pid int, since time.Time) bool
	serving atomic.Bool

	mu       sync.Mutex
	topics   map[string]*topic
	order    []*topic // in the order they were first published to
	subs     map[uint64]*sub
	trie     trie
	lastID   uint64
	retained list.List // of *topic holding a retained message, most recent first
	retBytes int64
	queued   int64 // the data held for subscribers: every queue's and unacknowledged batch's, under mu
	ended    [numEndReasons]uint64
	stopping bool
	scratch  []*sub

	// Remote subscribers (remote.go): a watch of each host that has
	// some, while it does.
	remote   *simpl.Channel  // what the watches send through; nil until Serve
	rctx     context.Context // ends when Serve does
	watchers sync.WaitGroup  // the watches' goroutines
	hosts    map[string]*hostWatch
}

// topic is what the broker keeps of a topic.
type topic struct {
	name      string
	index     int // in Broker.order
	seq       uint64
	published uint64
	delivered uint64
	dropped   [numDropReasons]uint64
	last      entry         // the newest message, when retained
	lru       *list.Element // in Broker.retained, when retained
}

// Why messages are dropped: the label reason of simpl_pubsub_dropped_total.
const (
	dropOverflow  = iota // a full queue let go of its oldest
	dropConflated        // replaced by a newer one of its topic (latest mode)
	dropTooLarge         // larger than the subscriber's reply buffer
	dropClosed           // queued or unacknowledged when the subscription ended
	numDropReasons
)

// Why subscriptions end: the label reason of simpl_pubsub_subscriptions_ended_total.
const (
	endUnsubscribed = iota
	endDead         // the subscriber's process is gone
	endLease        // no Next within the lease
	numEndReasons
)

var endNames = [numEndReasons]string{"unsubscribed", "dead", "lease"}

// sub is a subscription.
type sub struct {
	id       uint64
	pattern  string
	mode     Mode
	pid      int
	from     origin    // a remote subscriber's host and pid there (pid is then 0)
	since    time.Time // when it subscribed, for naming.Alive
	lease    time.Duration
	lastSeen time.Time
	q        queue

	held     *held   // the waiting Next, if any
	batch    uint64  // the number of the last batch sent
	flight   []entry // that batch, until acknowledged
	inflight int64   // its data, counted in Broker.queued until acknowledged
	dropped  uint64  // lost, as the subscriber sees it
	deliv    uint64
}

// held is a Next the broker holds until there is a message for it.
type held struct {
	m      simpl.Message
	max    int // messages
	budget int // bytes of messages the reply may carry
}

// wake is a reply to a held Next, sent outside the lock.
type wake struct {
	s   *sub
	h   *held
	rep nextReply
	err error // an error reply instead
}

// NewBroker returns a broker with the given options. Serve it on a
// Channel; for its metrics, register pubsubprom.NewCollector(b) on a
// Prometheus registry.
func NewBroker(opts ...Option) *Broker {
	o := config{
		maxTopics: DefaultMaxTopics, maxData: DefaultMaxData, maxQueue: DefaultMaxQueue,
		maxSubs: DefaultMaxSubscriptions, maxRetained: DefaultMaxRetained,
		maxQueueBytes: DefaultMaxQueueBytes, maxQueuedBytes: DefaultMaxQueuedBytes,
		lease: DefaultLease, sweep: DefaultSweep, metricTopics: DefaultMetricTopics,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.maxTopics = max(o.maxTopics, 1)
	o.maxData = max(o.maxData, 0)
	o.maxQueue = max(o.maxQueue, 1)
	o.maxSubs = max(o.maxSubs, 1)
	o.maxRetained = max(o.maxRetained, 0)
	if o.maxQueueBytes <= 0 {
		o.maxQueueBytes = DefaultMaxQueueBytes
	}
	if o.maxQueuedBytes <= 0 {
		o.maxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.lease <= 0 {
		o.lease = DefaultLease
	}
	o.lease = min(o.lease, MaxLease)
	if o.sweep <= 0 {
		o.sweep = DefaultSweep
	}
	o.metricTopics = max(o.metricTopics, 0)
	b := &Broker{
		o:      o,
		epoch:  rand.Uint64() | 1,
		now:    time.Now,
		alive:  naming.Alive,
		topics: make(map[string]*topic),
		subs:   make(map[uint64]*sub),
		hosts:  make(map[string]*hostWatch),
	}
	return b
}

// Serve runs the broker on ch until ctx ends (returning ctx.Err()) or ch
// is closed (an error wrapping simpl.ErrClosed). On the way out every held
// Next is answered with codeStopping, so subscribers hear at once that
// their subscription ended. A Broker serves once.
func Serve(ctx context.Context, ch *simpl.Channel, opts ...Option) error {
	return NewBroker(opts...).Serve(ctx, ch)
}

// Serve runs b on ch; see the function Serve.
func (b *Broker) Serve(ctx context.Context, ch *simpl.Channel) error {
	if !b.serving.CompareAndSwap(false, true) {
		return errors.New(prefix + "a Broker serves once")
	}
	var mopts []typed.MuxOption
	mopts = append(mopts, typed.WithLimits(typed.Limits{MaxSize: b.o.maxData + MaxTopicLen + 1024}))
	if b.o.loggerSet {
		mopts = append(mopts, typed.WithLogger(b.o.logger))
	}
	mux := typed.NewMux(mopts...)
	typed.Handle(mux, b.handlePublish)
	typed.Handle(mux, b.handleSubscribe)
	typed.Handle(mux, b.handleNext)
	typed.Handle(mux, b.handleUnsubscribe)
	typed.Handle(mux, func(ctx context.Context, _ statsRequest, _ simpl.Message) (Stats, error) {
		return b.Stats(), nil
	})

	sctx, stopSweep := context.WithCancel(ctx)
	b.mu.Lock()
	b.remote, b.rctx = ch, sctx
	b.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { b.sweeper(sctx) })
	var sopts []typed.ServeOption
	if b.o.workers > 0 {
		sopts = append(sopts, typed.WithWorkers(b.o.workers))
	}
	err := mux.Serve(ctx, ch, sopts...)
	stopSweep()
	wg.Wait()
	b.stop()
	b.watchers.Wait()
	return err
}

// sender is who sent m: a local process's pid, as the kernel says when it
// can, or a remote sender's origin (its host and pid there; pid is then
// 0), as this host's gateway vouches for it (Cred.Remote).
func sender(m simpl.Message) (pid int, from origin) {
	if c, ok := m.Cred(); ok {
		if c.Remote() {
			return 0, origin{host: c.Host, pid: c.HostPID}
		}
		return c.PID, origin{}
	}
	_, pid = m.Sender()
	return pid, origin{}
}

func (b *Broker) handlePublish(ctx context.Context, req publishRequest, m simpl.Message) (publishReply, error) {
	if err := CheckTopic(req.Topic); err != nil {
		return publishReply{}, codeErr(codeBadTopic, err)
	}
	if len(req.Data) > b.o.maxData {
		return publishReply{}, &typed.Error{Code: typed.CodeTooLarge,
			Message: fmt.Sprintf("%d bytes of data, the limit is %d", len(req.Data), b.o.maxData)}
	}
	rep, wakes, err := b.publish(req.Topic, req.Data)
	if err != nil {
		return publishReply{}, err
	}
	// The publisher first: it is the one blocked. Then the subscribers.
	typed.Reply(m, rep)
	b.wakeAll(wakes)
	return publishReply{}, typed.ErrDeferred
}

// publish queues data on topic for every matching subscription and
// returns the replies owed to the Next requests it satisfies.
func (b *Broker) publish(name string, data []byte) (publishReply, []wake, error) {
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[name]
	if t == nil {
		if len(b.topics) >= b.o.maxTopics {
			return publishReply{}, nil, codeErr(codeLimit, fmt.Errorf("topic %q would be one more than the %d allowed", name, b.o.maxTopics))
		}
		t = &topic{name: name, index: len(b.order)}
		b.topics[name] = t
		b.order = append(b.order, t)
	}
	t.seq++
	t.published++
	e := entry{t: t, seq: t.seq, time: now, data: data}
	b.retain(t, e)
	b.scratch = b.trie.match(b.scratch[:0], name)
	var wakes []wake
	for _, s := range b.scratch {
		b.enqueue(s, e)
		if s.held != nil {
			wakes = append(wakes, b.cut(s))
		}
	}
	n := len(b.scratch)
	clear(b.scratch)
	return publishReply{Seq: e.seq, Subscribers: n}, wakes, nil
}

// enqueue puts e in s's queue, counting what it pushes out.
func (b *Broker) enqueue(s *sub, e entry) {
	lost, replaced, dropped := s.q.push(e)
	switch {
	case replaced:
		lost.t.dropped[dropConflated]++
		s.dropped++
	case dropped:
		lost.t.dropped[dropOverflow]++
		s.dropped++
	}
	for s.q.n > 1 && s.holds() > b.o.maxQueueBytes {
		b.overflow(s)
	}
	// Past the budget of every queue together, the largest queue gives
	// way, not the one this message went to: a subscriber that stopped
	// taking with a full queue must not leave every other one a single
	// message. Unacknowledged batches count, but cannot give way: they
	// were sent.
	for b.queued > b.o.maxQueuedBytes {
		big := b.largest()
		if big == nil {
			break // each holds only its newest
		}
		b.overflow(big)
	}
}

// overflow lets go of s's oldest queued message, counted as overflow.
func (b *Broker) overflow(s *sub) {
	lost := s.q.pop()
	lost.t.dropped[dropOverflow]++
	s.dropped++
}

// largest is the subscription that holds the most data (its queue and
// its unacknowledged batch), of those whose queue holds more than one
// message; nil if none does. A scan: it runs only while the queues are
// past their shared budget.
func (b *Broker) largest() *sub {
	var big *sub
	for _, s := range b.subs {
		if s.q.n > 1 && (big == nil || s.holds() > big.holds()) {
			big = s
		}
	}
	return big
}

// holds is the data the broker holds for s: its queue's and its
// unacknowledged batch's.
func (s *sub) holds() int64 { return s.q.bytes + s.inflight }

// trim lets go, uncounted, of s's oldest queued messages while its
// queue, or every queue together, holds more data than allowed
// (WithMaxQueueBytes, WithMaxQueuedBytes), keeping the newest: for a new
// subscription's current values, which were published before it and are
// not counted as offered to it.
func (b *Broker) trim(s *sub) {
	for s.q.n > 1 && (s.q.bytes > b.o.maxQueueBytes || b.queued > b.o.maxQueuedBytes) {
		s.q.pop()
	}
}

// retain keeps e as t's newest message, within the retained budget.
func (b *Broker) retain(t *topic, e entry) {
	if t.lru != nil {
		b.retBytes -= int64(len(t.last.data))
		b.retained.Remove(t.lru)
		t.lru, t.last = nil, entry{}
	}
	if int64(len(e.data)) > b.o.maxRetained {
		return
	}
	t.last = e
	t.lru = b.retained.PushFront(t)
	b.retBytes += int64(len(e.data))
	for b.retBytes > b.o.maxRetained {
		old := b.retained.Back().Value.(*topic)
		b.retBytes -= int64(len(old.last.data))
		b.retained.Remove(old.lru)
		old.lru, old.last = nil, entry{}
	}
}

// cut takes s's held Next and answers it with the next batch; s's queue
// must not be empty.
func (b *Broker) cut(s *sub) wake {
	h := s.held
	s.held = nil
	s.lastSeen = b.now() // the lease runs from the answer
	return wake{s: s, h: h, rep: b.batch(s, h.max, h.budget)}
}

// batch moves up to max queued messages (budget bytes of them) into a new
// in-flight batch. A message that could never fit is dropped.
func (b *Broker) batch(s *sub, maxMsgs, budget int) nextReply {
	var msgs []Message
	var flight []entry
	for s.q.n > 0 && len(msgs) < maxMsgs {
		e := s.q.peek()
		size := len(e.t.name) + len(e.data) + messageOverhead
		if size > budget {
			if len(msgs) > 0 {
				break
			}
			lost := s.q.pop()
			lost.t.dropped[dropTooLarge]++
			s.dropped++
			continue
		}
		budget -= size
		ent := s.q.pop()
		flight = append(flight, ent)
		msgs = append(msgs, Message{Topic: ent.t.name, Seq: ent.seq, Data: ent.data, Time: time.Unix(0, ent.time)})
	}
	if len(msgs) == 0 {
		return nextReply{Dropped: s.dropped}
	}
	s.batch++
	s.flight = flight
	// Its data stays counted against the budgets until it is
	// acknowledged: a subscriber that stops, or asks again and again with
	// an old Ack, must not pin a reply buffer's worth beyond them.
	var size int64
	for _, e := range flight {
		size += int64(len(e.data))
	}
	s.inflight = size // the batch before was acknowledged: none is in flight
	b.queued += size
	return nextReply{Batch: s.batch, Messages: msgs, Dropped: s.dropped}
}

// resend is the in-flight batch again.
func (s *sub) resend() nextReply {
	msgs := make([]Message, len(s.flight))
	for i, e := range s.flight {
		msgs[i] = Message{Topic: e.t.name, Seq: e.seq, Data: e.data, Time: time.Unix(0, e.time)}
	}
	return nextReply{Batch: s.batch, Messages: msgs, Dropped: s.dropped}
}

// ack records that the subscriber has the in-flight batch.
func (b *Broker) ack(s *sub) {
	for _, e := range s.flight {
		e.t.delivered++
	}
	s.deliv += uint64(len(s.flight))
	b.land(s)
}

// land lets go of s's in-flight batch, and uncounts its data.
func (b *Broker) land(s *sub) {
	s.flight = nil
	b.queued -= s.inflight
	s.inflight = 0
}

// wakeAll sends the replies; a subscriber that is not there to take its
// batch gets it again with its next Next, or is found dead.
func (b *Broker) wakeAll(wakes []wake) {
	for _, w := range wakes {
		var err error
		if w.err != nil {
			err = typed.ReplyError(w.h.m, w.err)
		} else {
			err = typed.Reply(w.h.m, w.rep)
		}
		if errors.Is(err, simpl.ErrPeerGone) && w.s != nil {
			b.checkAlive(w.s)
		}
	}
}

// checkAlive ends s if its process is gone.
func (b *Broker) checkAlive(s *sub) {
	if s.pid <= 0 || b.alive(s.pid, s.since) {
		return
	}
	b.mu.Lock()
	var wakes []wake
	if b.subs[s.id] == s {
		wakes = b.end(s, endDead, wakes)
	}
	b.mu.Unlock()
	b.wakeAll(wakes)
}

func (b *Broker) handleSubscribe(ctx context.Context, req subscribeRequest, m simpl.Message) (subscribeReply, error) {
	if err := CheckPattern(req.Pattern); err != nil {
		return subscribeReply{}, codeErr(codeBadTopic, err)
	}
	pid, from := sender(m)
	return b.subscribeFrom(pid, from, req)
}

func (b *Broker) subscribe(pid int, req subscribeRequest) (subscribeReply, error) {
	return b.subscribeFrom(pid, origin{}, req)
}

// subscribeFrom opens a subscription for local process pid, or for the
// remote subscriber from.
func (b *Broker) subscribeFrom(pid int, from origin, req subscribeRequest) (subscribeReply, error) {
	switch req.Mode {
	case "":
		req.Mode = Queue
	case Queue, Latest:
	default:
		return subscribeReply{}, &typed.Error{Code: typed.CodeFailed, Message: fmt.Sprintf("mode %q: want %q or %q", req.Mode, Queue, Latest)}
	}
	size := req.Queue
	if size <= 0 {
		size = min(DefaultQueue, b.o.maxQueue)
	}
	size = min(size, b.o.maxQueue)
	lease := req.Lease
	if lease <= 0 {
		lease = b.o.lease
	}
	lease = min(lease, MaxLease)
	now := b.now()

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopping {
		return subscribeReply{}, &typed.Error{Code: codeStopping, Message: "the broker is stopping"}
	}
	if len(b.subs) >= b.o.maxSubs {
		return subscribeReply{}, codeErr(codeLimit, fmt.Errorf("%d subscriptions already, the limit", len(b.subs)))
	}
	b.lastID++
	s := &sub{
		id: b.lastID, pattern: req.Pattern, mode: req.Mode, pid: pid, from: from, since: now,
		lease: lease, lastSeen: now, q: newQueue(size, req.Mode == Latest, &b.queued),
	}
	if req.Current {
		// The newest retained messages that match, oldest first, as many
		// as the queue holds; they were published before, so none is
		// counted as dropped.
		var cur []*topic
		for el := b.retained.Front(); el != nil && len(cur) < size; el = el.Next() {
			if t := el.Value.(*topic); Match(req.Pattern, t.name) {
				cur = append(cur, t)
			}
		}
		for i := len(cur) - 1; i >= 0; i-- {
			s.q.push(cur[i].last)
		}
		b.trim(s)
	}
	b.subs[s.id] = s
	b.trie.add(s)
	b.watchFromLocked(s)
	return subscribeReply{ID: s.id, Epoch: b.epoch, Queue: size, Lease: lease}, nil
}

// lookup finds subscription id of epoch for its owner: local process pid,
// or the remote sender from.
func (b *Broker) lookup(id, epoch uint64, pid int, from origin) (*sub, error) {
	if b.stopping {
		return nil, &typed.Error{Code: codeStopping, Message: "the broker is stopping"}
	}
	s := b.subs[id]
	switch {
	case epoch != b.epoch:
		return nil, codeErr(codeNoSubscription, fmt.Errorf("subscription %d is another broker's", id))
	case s == nil:
		return nil, codeErr(codeNoSubscription, fmt.Errorf("no subscription %d (ended, or its lease ran out)", id))
	case !s.ownedBy(pid, from):
		return nil, codeErr(codeNoSubscription, fmt.Errorf("subscription %d belongs to another process", id))
	}
	return s, nil
}

// ownedBy reports whether a request from local process pid, or from the
// remote sender from, may take s's messages or end it: the same process
// as the one that subscribed. When either side is remote that is the
// same host and pid there; between local ones the same pid. Only when
// neither side's credentials are known (pid 0 on both, neither remote)
// is there nothing to compare.
func (s *sub) ownedBy(pid int, from origin) bool {
	if s.from.host != "" || from.host != "" {
		return s.from == from
	}
	return s.pid == pid
}

func (b *Broker) handleNext(ctx context.Context, req nextRequest, m simpl.Message) (nextReply, error) {
	h := &held{m: m, max: req.Max, budget: m.MaxReply() - replyOverhead}
	pid, from := sender(m)
	rep, old, err := b.next(pid, from, req, h)
	if old != nil {
		// Its sender gave up on it and asked again: it gets nothing.
		b.wakeAll([]wake{{h: old, rep: nextReply{}}})
	}
	switch {
	case err != nil:
		return nextReply{}, err
	case rep == nil:
		return nextReply{}, typed.ErrDeferred
	}
	return *rep, nil
}

// next answers a Next from local process pid or remote sender from: with
// a batch at once (rep), or by holding h (rep nil). old is a Next of the
// same subscription that h replaces.
func (b *Broker) next(pid int, from origin, req nextRequest, h *held) (rep *nextReply, old *held, err error) {
	if h.max <= 0 {
		h.max = DefaultBatch
	}
	h.max = min(h.max, MaxBatch)
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.lookup(req.ID, req.Epoch, pid, from)
	if err != nil {
		return nil, nil, err
	}
	s.lastSeen = b.now()
	old, s.held = s.held, nil
	if s.flight != nil {
		if req.Ack != s.batch {
			r := s.resend() // the subscriber did not get it
			return &r, old, nil
		}
		b.ack(s)
	}
	if s.q.n > 0 {
		r := b.batch(s, h.max, h.budget)
		if r.Batch != 0 || req.NoWait {
			return &r, old, nil
		}
		// Everything queued was too large and is dropped: wait on.
	}
	if req.NoWait {
		return &nextReply{Dropped: s.dropped}, old, nil
	}
	s.held = h
	return nil, old, nil
}

func (b *Broker) handleUnsubscribe(ctx context.Context, req unsubscribeRequest, m simpl.Message) (unsubscribeReply, error) {
	pid, from := sender(m)
	rep, wakes, err := b.unsubscribe(pid, from, req)
	b.wakeAll(wakes)
	return rep, err
}

// unsubscribe ends a subscription at the request of local process pid or
// remote sender from.
func (b *Broker) unsubscribe(pid int, from origin, req unsubscribeRequest) (unsubscribeReply, []wake, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, err := b.lookup(req.ID, req.Epoch, pid, from)
	if err != nil {
		return unsubscribeReply{}, nil, err
	}
	if s.flight != nil && req.Ack == s.batch {
		b.ack(s)
	}
	return unsubscribeReply{Dropped: s.dropped}, b.end(s, endUnsubscribed, nil), nil
}

// end removes s, counting what it still held as dropped, and adds the
// answer its held Next is owed to wakes.
func (b *Broker) end(s *sub, why int, wakes []wake) []wake {
	delete(b.subs, s.id)
	b.trie.remove(s)
	b.unwatchFromLocked(s)
	b.ended[why]++
	for _, e := range s.flight {
		e.t.dropped[dropClosed]++
	}
	b.land(s)
	s.q.drain(func(e entry) { e.t.dropped[dropClosed]++ })
	if s.held != nil {
		wakes = append(wakes, wake{s: s, h: s.held, err: codeErr(codeNoSubscription, fmt.Errorf("subscription %d ended: %s", s.id, endNames[why]))})
		s.held = nil
	}
	return wakes
}

// stop answers every held Next with codeStopping and refuses new ones.
func (b *Broker) stop() {
	b.mu.Lock()
	b.stopping = true
	var wakes []wake
	for _, s := range b.subs {
		if s.held != nil {
			wakes = append(wakes, wake{s: s, h: s.held, err: &typed.Error{Code: codeStopping, Message: "the broker is stopping"}})
			s.held = nil
		}
	}
	b.mu.Unlock()
	b.wakeAll(wakes)
}

// sweeper ends, every sweep interval, the subscriptions whose process is
// gone or whose lease ran out.
func (b *Broker) sweeper(ctx context.Context) {
	t := time.NewTicker(b.o.sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.sweep()
		}
	}
}

// sweep checks every subscription once. The liveness checks run outside
// the lock, once per process however many subscriptions it holds (see
// deadSubs).
func (b *Broker) sweep() {
	b.mu.Lock()
	byPID := make(map[int][]*sub)
	for _, s := range b.subs {
		if s.pid > 0 {
			byPID[s.pid] = append(byPID[s.pid], s)
		}
	}
	b.mu.Unlock()
	dead := make(map[*sub]bool)
	for pid, subs := range byPID {
		for _, s := range b.deadSubs(pid, subs) {
			dead[s] = true
		}
	}
	now := b.now()
	var wakes []wake
	b.mu.Lock()
	for _, s := range b.subs {
		// A subscription made after the check is not judged by it.
		switch {
		case dead[s]:
			wakes = b.end(s, endDead, wakes)
		case s.held == nil && now.Sub(s.lastSeen) > s.lease:
			wakes = b.end(s, endLease, wakes)
		case s.held != nil && now.Sub(s.lastSeen) > s.lease:
			// Held a whole lease: answered with nothing, so that a
			// subscriber that gave up on it (a Next with a deadline, then
			// the subscription forgotten) is not kept for good; one that
			// still waits asks again at once, and the lease runs from
			// this answer.
			wakes = append(wakes, wake{s: s, h: s.held, rep: nextReply{Dropped: s.dropped}})
			s.held = nil
			s.lastSeen = now
		}
	}
	b.mu.Unlock()
	b.wakeAll(wakes)
}

// deadSubs returns those of subs, the subscriptions of process pid, whose
// process is gone: all of them when pid has exited, those made before it
// started when it is another process's now (a reused pid). b.alive(pid,
// since) is false for a time since before the process started, and true
// for every later one while it runs, so the check with the oldest
// subscription's time settles a running process's, the usual case, with
// one look at it (a signal 0 and a read of /proc): all alive. Only when
// that one is not alive, a second look with the newest subscription's
// time tells a process gone (no subscription alive) from a reused pid,
// whose first live subscription is then found by bisection.
func (b *Broker) deadSubs(pid int, subs []*sub) []*sub {
	sort.Slice(subs, func(i, j int) bool { return subs[i].since.Before(subs[j].since) })
	k := len(subs)
	switch {
	case b.alive(pid, subs[0].since):
		return nil
	case k == 1 || !b.alive(pid, subs[k-1].since):
		return subs
	}
	// subs[0] is dead, subs[k-1] alive: the first alive is in 1..k-1.
	first := 1 + sort.Search(k-2, func(i int) bool { return b.alive(pid, subs[1+i].since) })
	return subs[:first]
}

// Stats is a snapshot of the broker.
func (b *Broker) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{Epoch: b.epoch, Topics: len(b.topics), RetainedBytes: b.retBytes}
	for _, s := range b.subs {
		st.Subscriptions = append(st.Subscriptions, SubscriptionInfo{
			ID: s.id, Pattern: s.pattern, Mode: s.mode, PID: s.pid, Host: s.from.host, HostPID: s.from.pid, Size: s.q.size,
			Queued: s.q.n + len(s.flight), Delivered: s.deliv, Dropped: s.dropped, Waiting: s.held != nil,
		})
	}
	sort.Slice(st.Subscriptions, func(i, j int) bool { return st.Subscriptions[i].ID < st.Subscriptions[j].ID })
	return st
}
