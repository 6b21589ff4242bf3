package pubsub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// Publisher publishes through a Channel to a broker. It locates the broker
// when first needed, and again after a failure that says the broker went
// away, so a restarted broker is found by the next Publish. Safe for
// concurrent use.
type Publisher struct {
	ch     *simpl.Channel
	broker string

	mu     sync.Mutex
	conn   *simpl.Conn
	closed bool
}

// NewPublisher returns a publisher that sends through ch to the broker
// attached as broker ("" means DefaultBroker).
func NewPublisher(ch *simpl.Channel, broker string) *Publisher {
	if broker == "" {
		broker = DefaultBroker
	}
	return &Publisher{ch: ch, broker: broker}
}

func (p *Publisher) get(ctx context.Context) (*simpl.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, errorf("publisher: %w", simpl.ErrClosed)
	case p.conn != nil:
		return p.conn, nil
	}
	conn, err := p.ch.Locate(ctx, p.broker)
	if err != nil {
		return nil, errorf("broker %q: %w", p.broker, err)
	}
	p.conn = conn
	return conn, nil
}

// drop forgets conn after a failure that says the broker went away.
func (p *Publisher) drop(conn *simpl.Conn, err error) {
	if !errors.Is(err, simpl.ErrPeerGone) && !errors.Is(err, simpl.ErrNotFound) {
		return
	}
	p.mu.Lock()
	if p.conn == conn {
		p.conn = nil
		conn.Close()
	}
	p.mu.Unlock()
}

// Publish publishes data on topic and returns once the broker has queued
// it for every matching subscription (the broker never waits for a
// subscriber), with its sequence number in the topic. Errors wrap
// ErrBadTopic, simpl.ErrTooLarge (data over the broker's limit), ErrLimit
// (one topic too many), Send's errors (simpl.ErrPeerGone when the broker
// went away: the message may or may not have been published, and it is
// not sent again), or ctx's.
func (p *Publisher) Publish(ctx context.Context, topic string, data []byte) (uint64, error) {
	if err := CheckTopic(topic); err != nil {
		return 0, err
	}
	conn, err := p.get(ctx)
	if err != nil {
		return 0, err
	}
	rep, err := typed.Call[publishRequest, publishReply](ctx, conn, publishRequest{Topic: topic, Data: data})
	if err != nil {
		p.drop(conn, err)
		return 0, errorf("publish to %q: %w", topic, fromRemote(err))
	}
	return rep.Seq, nil
}

// Close releases the connection to the broker; Publish fails afterwards.
func (p *Publisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	return nil
}

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subConfig)

type subConfig struct {
	req      subscribeRequest
	current  *bool
	batch    int
	maxReply int
}

// WithQueue sets the subscription's queue size in messages (the broker's
// default, DefaultQueue, when 0; at most what the broker allows). When it
// is full the broker drops the oldest message and counts it.
func WithQueue(n int) SubscribeOption { return func(c *subConfig) { c.req.Queue = n } }

// WithMode chooses Queue (the default) or Latest.
func WithMode(m Mode) SubscribeOption { return func(c *subConfig) { c.req.Mode = m } }

// WithLatest is WithMode(Latest).
func WithLatest() SubscribeOption { return WithMode(Latest) }

// WithCurrent(true) starts the subscription with the newest message of
// every matching topic that has one (as many as the queue holds). It is
// the default in Latest mode, not in Queue mode.
func WithCurrent(on bool) SubscribeOption { return func(c *subConfig) { c.current = &on } }

// WithLease sets how long the broker keeps the subscription while no Next
// is waiting (the broker's default when 0). Call Next at least that
// often, or the subscription ends (ErrEnded).
func WithLease(d time.Duration) SubscribeOption { return func(c *subConfig) { c.req.Lease = d } }

// WithBatch bounds the messages one Next fetches from the broker
// (DefaultBatch when 0, at most MaxBatch).
func WithBatch(n int) SubscribeOption { return func(c *subConfig) { c.batch = n } }

// WithMaxReply sets the size of the buffer batches arrive in (1 MiB by
// default). A message larger than it (with its topic and some 64 bytes)
// is dropped for this subscription and counted.
func WithMaxReply(n int) SubscribeOption { return func(c *subConfig) { c.maxReply = n } }

// defaultMaxReply is the default reply buffer of a subscription.
const defaultMaxReply = 1 << 20

// Subscription receives the messages of the topics matching a pattern, in
// publish order per topic. Next fetches them in batches with Send, each
// held by the broker until there is something (QNX's way: the broker
// answers the subscriber's Send when a message is there, and never waits
// on it). Next and TryNext are for one goroutine at a time; Dropped,
// Close and the accessors may be called from any.
type Subscription struct {
	conn    *simpl.Conn
	broker  string
	pattern string
	id      uint64
	epoch   uint64
	queue   int
	batch   int
	lim     typed.Limits

	dropped atomic.Uint64

	mu      sync.Mutex // guards ack and closed against Close
	ack     uint64     // the number of the last batch received
	closed  bool
	pending []Message // received, not yet returned by Next
	err     error     // why the subscription ended, once it has
}

// Subscribe opens a subscription on pattern (see CheckPattern) at the
// broker attached as broker ("" means DefaultBroker), sending through ch.
// The subscription belongs to this process: the broker ends it when the
// process dies, or when no Next comes within the lease. Errors wrap
// ErrBadTopic, ErrLimit, simpl.ErrNotFound (no broker), Send's errors or
// ctx's.
func Subscribe(ctx context.Context, ch *simpl.Channel, broker, pattern string, opts ...SubscribeOption) (*Subscription, error) {
	if broker == "" {
		broker = DefaultBroker
	}
	cfg := subConfig{req: subscribeRequest{Pattern: pattern, Mode: Queue}, maxReply: defaultMaxReply}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.req.Current = cfg.req.Mode == Latest
	if cfg.current != nil {
		cfg.req.Current = *cfg.current
	}
	if cfg.req.Mode != Queue && cfg.req.Mode != Latest {
		return nil, errorf("mode %q: want %q or %q", cfg.req.Mode, Queue, Latest)
	}
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	conn, err := ch.Locate(ctx, broker)
	if err != nil {
		return nil, errorf("broker %q: %w", broker, err)
	}
	rep, err := typed.Call[subscribeRequest, subscribeReply](ctx, conn, cfg.req)
	if err != nil {
		conn.Close()
		return nil, errorf("subscribe to %q: %w", pattern, fromRemote(err))
	}
	return &Subscription{
		conn: conn, broker: broker, pattern: pattern, id: rep.ID, epoch: rep.Epoch,
		queue: rep.Queue, batch: cfg.batch,
		lim: typed.Limits{MaxSize: max(cfg.maxReply, replyOverhead+messageOverhead)},
	}, nil
}

// ID is the subscription's number at its broker.
func (s *Subscription) ID() uint64 { return s.id }

// Pattern is the pattern subscribed to.
func (s *Subscription) Pattern() string { return s.pattern }

// QueueSize is the queue size the broker granted.
func (s *Subscription) QueueSize() int { return s.queue }

// Dropped is how many messages this subscription has lost so far: pushed
// out of a full queue, replaced by a newer one in Latest mode, or too
// large for the reply buffer. It is the broker's count as of the last
// batch received, so Dropped plus the messages Next has returned and will
// return from that batch is everything published on matching topics
// since the subscription began.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Next returns the next message, waiting for one as long as ctx allows.
// Per topic, messages come in publish order (Seq increasing; a gap is a
// drop). Errors: ctx's (the subscription goes on: nothing is lost, the
// broker sends an unacknowledged batch again); ErrEnded when the
// subscription is over (the broker went away — then it matches
// simpl.ErrPeerGone too — or stopped, or let the lease run out), and
// simpl.ErrClosed after Close. Once ended, Next returns the same error.
func (s *Subscription) Next(ctx context.Context) (Message, error) {
	m, _, err := s.next(ctx, false)
	return m, err
}

// TryNext is Next without waiting: ok is false when nothing is queued at
// the broker now. It suits a control loop that runs at its own pace and
// takes what came since its last turn (Latest mode: the current value of
// each topic that changed).
func (s *Subscription) TryNext(ctx context.Context) (m Message, ok bool, err error) {
	return s.next(ctx, true)
}

func (s *Subscription) next(ctx context.Context, noWait bool) (Message, bool, error) {
	for {
		s.mu.Lock()
		ack, closed, ended := s.ack, s.closed, s.err
		s.mu.Unlock()
		if closed {
			// What was not returned is discarded, as Close says.
			return Message{}, false, errorf("subscription %d: %w", s.id, simpl.ErrClosed)
		}
		if len(s.pending) > 0 {
			break
		}
		if ended != nil {
			return Message{}, false, ended
		}
		rep, err := typed.Call[nextRequest, nextReply](ctx, s.conn,
			nextRequest{ID: s.id, Epoch: s.epoch, Ack: ack, Max: s.batch, NoWait: noWait},
			typed.WithReplyLimits(s.lim))
		if err != nil {
			return Message{}, false, s.fail(ctx, err)
		}
		s.mu.Lock()
		if s.closed {
			// Close came meanwhile, acknowledging only what came
			// before: the broker counts this batch as dropped when the
			// subscription closed, so none of it is returned.
			s.mu.Unlock()
			return Message{}, false, errorf("subscription %d: %w", s.id, simpl.ErrClosed)
		}
		if rep.Batch != 0 {
			s.ack = rep.Batch
		}
		s.mu.Unlock()
		s.dropped.Store(rep.Dropped)
		s.pending = rep.Messages
		if noWait && len(s.pending) == 0 {
			return Message{}, false, nil
		}
	}
	m := s.pending[0]
	s.pending[0] = Message{}
	s.pending = s.pending[1:]
	return m, true, nil
}

// fail turns a failed Next into its error, recording the end of the
// subscription when it is one.
func (s *Subscription) fail(ctx context.Context, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *typed.Error
	switch {
	case s.closed:
		return errorf("subscription %d: %w", s.id, simpl.ErrClosed)
	case ctx.Err() != nil && !errors.Is(err, simpl.ErrPeerGone):
		return err
	case errors.Is(err, simpl.ErrPeerGone):
		s.err = errorf("subscription %d: %w: broker %q gone: %w", s.id, ErrEnded, s.broker, simpl.ErrPeerGone)
	case errors.As(err, &e) && (e.Code == codeNoSubscription || e.Code == codeStopping):
		s.err = errorf("subscription %d: %w", s.id, fromRemote(err))
	case errors.Is(err, simpl.ErrClosed):
		s.err = errorf("subscription %d: %w", s.id, err)
	default:
		return errorf("subscription %d: %w", s.id, err)
	}
	return s.err
}

// Close ends the subscription at the broker (acknowledging the last batch
// received; what was not returned by Next yet is discarded) and releases
// the connection. A Next waiting in another goroutine returns an error
// wrapping simpl.ErrClosed. Closing a subscription that already ended
// returns nil; Close waits at most 5 s for the broker (Unsubscribe takes
// a bound of the caller's).
func (s *Subscription) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Unsubscribe(ctx)
}

// Unsubscribe is Close waiting for the broker only until ctx ends. A
// subscription whose broker did not answer in time is closed all the
// same; the broker drops it when it finds this process gone or its lease
// run out (WithLease). Safe to call with Close or Unsubscribe in other
// goroutines: one of them asks the broker, the others return nil.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ack, ended := s.ack, s.err
	s.mu.Unlock()
	defer s.conn.Close()
	if ended != nil {
		return nil
	}
	_, err := typed.Call[unsubscribeRequest, unsubscribeReply](ctx, s.conn, unsubscribeRequest{ID: s.id, Epoch: s.epoch, Ack: ack})
	var e *typed.Error
	if err == nil || errors.Is(err, simpl.ErrPeerGone) ||
		(errors.As(err, &e) && (e.Code == codeNoSubscription || e.Code == codeStopping)) {
		return nil
	}
	return errorf("unsubscribe %d: %w", s.id, err)
}

// BrokerStats asks the broker attached as broker ("" means DefaultBroker)
// for a snapshot of its topics and subscriptions.
func BrokerStats(ctx context.Context, ch *simpl.Channel, broker string) (Stats, error) {
	if broker == "" {
		broker = DefaultBroker
	}
	conn, err := ch.Locate(ctx, broker)
	if err != nil {
		return Stats{}, errorf("broker %q: %w", broker, err)
	}
	defer conn.Close()
	st, err := typed.Call[statsRequest, Stats](ctx, conn, statsRequest{}, typed.WithReplyLimits(typed.Limits{MaxSize: 16 << 20}))
	if err != nil {
		return Stats{}, errorf("stats: %w", fromRemote(err))
	}
	return st, nil
}
