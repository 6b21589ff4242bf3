package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/procfs"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/transport"
	"github.com/nats-io/nats.go"
)

// Defaults of the Options.
const (
	DefaultMaxInflight = 1024 // envelopes being carried out at once
	DefaultMaxInbound  = 256  // local Sends made for other hosts at once
	DefaultHeartbeat   = 500 * time.Millisecond
	DefaultSilence     = 1500 * time.Millisecond
	DefaultDrain       = 5 * time.Second   // how long Close waits for what is in flight
	DedupeWindow       = time.Minute       // request ids are remembered this long...
	DedupeMax          = 1 << 18           // ...and at most this many
	headerRoom         = 1024              // what a message's headers may take of NATS's payload limit
	queueGroup         = "gosimpl-gateway" // the inbound subscription's: gateways of one host share the work
)

// Options configure a Gateway.
type Options struct {
	maxInflight int
	maxInbound  int
	heartbeat   time.Duration
	silence     time.Duration
	drain       time.Duration
	maxBytes    int64
	hooks       Hooks
	policy      *Policy
	outOnly     bool
	bridge      Bridge
	maxNames    int // names across hosts: the most names followed of one host (names.go)
}

// A Bridge carries requests to hosts that are not reached over NATS: C
// SIMPL hosts, through their own TCP surrogates (internal/surrogate's
// Routes). The gateway asks it first of every outbound request. Its
// methods are called concurrently.
type Bridge interface {
	// Takes says whether n's host is reached through the bridge.
	Takes(n naming.Name) bool
	// Send sends req to n; the reply goes in reply, its size returned.
	Send(ctx context.Context, n naming.Name, req, reply []byte) (int, error)
	Trigger(ctx context.Context, n naming.Name, proxy int) error
	// Locate says whether a process holds n on its host.
	Locate(ctx context.Context, n naming.Name) error
}

// WithBridge has the gateway carry the requests b takes through b
// rather than NATS.
func WithBridge(b Bridge) Option {
	return func(o *Options) error {
		o.bridge = b
		return nil
	}
}

// Option configures New. One that cannot apply fails New.
type Option func(*Options) error

// WithMaxInflight bounds the envelopes from local programs carried out at
// once (default 1024); one more is answered StatusBusy at once, having
// sent nothing.
func WithMaxInflight(n int) Option {
	return func(o *Options) error {
		if n < 1 {
			return fmt.Errorf("gateway: most requests in flight %d: must be 1 or more", n)
		}
		o.maxInflight = n
		return nil
	}
}

// WithMaxInbound bounds the local Sends made for other hosts at once
// (default 256); one more request is answered StatusBusy, undelivered.
// With WithMaxBytes it bounds the gateway's memory: each holds its
// request and a reply buffer, and those larger than one NATS message
// count against WithMaxBytes.
func WithMaxInbound(n int) Option {
	return func(o *Options) error {
		if n < 1 {
			return fmt.Errorf("gateway: most inbound requests %d: must be 1 or more", n)
		}
		o.maxInbound = n
		return nil
	}
}

// WithTiming sets the heartbeat interval and the silence after which a
// request's outcome is unknown (default 500 ms and 1.5 s); silence must
// be longer than heartbeat.
func WithTiming(heartbeat, silence time.Duration) Option {
	return func(o *Options) error {
		if heartbeat <= 0 || silence <= heartbeat {
			return fmt.Errorf("gateway: heartbeat %v, silence %v: want 0 < heartbeat < silence", heartbeat, silence)
		}
		o.heartbeat, o.silence = heartbeat, silence
		return nil
	}
}

// WithDrain sets how long Close waits for requests in flight before it
// gives up on them (default 5 s).
func WithDrain(d time.Duration) Option {
	return func(o *Options) error {
		if d < 0 {
			return fmt.Errorf("gateway: drain %v: must be 0 or more", d)
		}
		o.drain = d
		return nil
	}
}

// WithoutServing makes a gateway that only carries its Channel's
// envelopes out: it serves no names to other hosts and follows no names
// across hosts, and takes its answers under ProgramInbox, so that NATS
// permissions of a host's program (send only) suffice. A program that
// goes straight to NATS (simpl/netdirect) runs one in its own process.
func WithoutServing() Option {
	return func(o *Options) error {
		o.outOnly = true
		return nil
	}
}

// WithPolicy has the gateway serve other hosts' requests only as p
// allows (see Policy); the others are answered StatusDenied, counted
// and not delivered. Without it every host NATS admits is served.
func WithPolicy(p *Policy) Option {
	return func(o *Options) error {
		o.policy = p
		return nil
	}
}

// DefaultMaxHostNames is the most names a gateway follows of one host
// (names across hosts; WithMaxHostNames).
const DefaultMaxHostNames = 100000

// WithMaxHostNames sets the most names a gateway follows of one host, in
// all its gateways' runs together (default DefaultMaxHostNames). It
// bounds the memory another host can make this one spend on its names:
// a host that reports more is followed without its names (they are not
// listed), counted in NamesStats.OverCap and told to Hooks.Note, and
// asked again every 10 s.
func WithMaxHostNames(n int) Option {
	return func(o *Options) error {
		if n < 1 {
			return fmt.Errorf("gateway: at most %d names of a host: want 1 or more", n)
		}
		o.maxNames = n
		return nil
	}
}

// Hooks observe a gateway; each is optional and called from the
// goroutine that handled the request, so it must not block for long.
type Hooks struct {
	// Done is called once per request when its answer is given.
	Done func(Event)
	// Note is called with a line for the operator about something the
	// gateway did not do (a host's names over WithMaxHostNames).
	Note func(msg string)
}

// WithHooks installs hooks.
func WithHooks(h Hooks) Option { return func(o *Options) error { o.hooks = h; return nil } }

// Event is one request a gateway handled.
type Event struct {
	Inbound bool           // from another host to a local name (else: from a local program out)
	Kind    netwire.Kind   // send, trigger or locate
	Target  string         // host:NAME for outbound, NAME for inbound
	From    string         // host:NAME (pid N) of the sending program
	Status  netwire.Status // how it ended
	Detail  int
	Elapsed time.Duration
}

// Stats count what a gateway saw. Read them with Gateway.Stats.
type Stats struct {
	Out, In        int64 // requests handled each way
	BadEnvelopes   int64 // envelopes from local programs it could not read
	BadRequests    int64 // requests from the network it could not read (bad headers, subject or size)
	BadAnswers     int64 // answers from the network it could not read
	Duplicates     int64 // requests whose id it had seen: answered, not delivered
	Denied         int64 // requests its policy refused: answered, not delivered
	Busy           int64 // requests refused for its limits
	Unknown        int64 // outbound requests whose outcome is unknown (silence, shutdown)
	Unreachable    int64 // outbound requests no gateway took (no responders), or whose chunks stopped short
	StrayAnswers   int64 // answers for no request in flight (late, after silence), and chunks or acknowledgements for no message
	ProxiesToSelf  int64 // proxies sent to the gateway's own name, ignored
	Partial        int64 // requests in chunks dropped before they were whole (chunks stopped or were bad): never delivered
	PartialReplies int64 // replies in chunks given up before they were whole, either side
	Held           int64 // bytes now held of WithMaxBytes
	MostHeld       int64 // the most bytes ever held of it
	Dropped        int64 // messages from the network NATS dropped, more than the gateway had yet read (a flood)
	Batches        int64 // batches of requests sent (batch.go)...
	Batched        int64 // ...and the requests in them
	AnswerBatches  int64 // batches of answers sent...
	BatchedAnswers int64 // ...and the answers and heartbeats in them
}

// Gateway carries a host's remote Sends out over NATS and serves its
// local names to the network. Safe for concurrent use; Close is
// idempotent.
type Gateway struct {
	ch    *simpl.Channel
	nc    *nats.Conn
	reg   *naming.Registry
	host  string
	o     Options
	limit int // the largest request or reply carried

	idPrefix string
	inbox    string
	dedupe   *seen
	policy   atomic.Pointer[Policy] // nil: serve every host
	batchMax int                    // requests and answers of at most this many bytes go in batches (batch.go)
	w        *writer

	hard    context.Context // ends when Close gives up on what is in flight
	hardEnd context.CancelFunc

	mu      sync.Mutex
	closing bool
	waiters map[uint64]*waiter
	streams map[uint64]func(*nats.Msg) // messages in chunks, by their subject's last token
	conns   map[string]*cached
	wg      sync.WaitGroup // every request's goroutine

	outN, inN      atomic.Int64 // in flight each way
	held, mostHeld atomic.Int64 // bytes of WithMaxBytes

	inSub, inboxSub, streamSub *nats.Subscription
	recvStop                   context.CancelFunc
	recvDone                   chan struct{}
	closeOnce                  sync.Once
	names                      *names // this host's names out, every host's in (names.go)

	stats struct {
		out, in, badEnv, badReq, badAns, dup, denied, busy, unknown, unreachable, stray, proxies, partial, partialReplies atomic.Int64
		dropped                                                                                                           atomic.Int64 // by NATS, of ended subscriptions
		batches, batched, answerBatches, batchedAnswers                                                                   atomic.Int64
	}
}

// New starts a gateway for host: it serves host's names (the subjects
// netwire.HostSubjects(host), in a queue group) from nc and carries out
// the envelopes local programs send to ch, which must have attached
// netwire.GatewayName. It returns once the subscriptions are in place
// (flushed to the server). The caller keeps ch and nc: Close them after
// the Gateway.
func New(ch *simpl.Channel, nc *nats.Conn, host string, opts ...Option) (*Gateway, error) {
	o := Options{maxInflight: DefaultMaxInflight, maxInbound: DefaultMaxInbound, heartbeat: DefaultHeartbeat, silence: DefaultSilence, drain: DefaultDrain, maxBytes: DefaultMaxBytes, maxNames: DefaultMaxHostNames}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := checkHost(host); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	reg, err := naming.Open(ch.Dir())
	if err != nil {
		return nil, err
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	limit := int(nc.MaxPayload()) - headerRoom
	if limit < 1 {
		return nil, fmt.Errorf("gateway: the NATS server's payload limit %d leaves no room for messages", nc.MaxPayload())
	}
	g := &Gateway{
		ch: ch, nc: nc, reg: reg, host: host, o: o, limit: limit,
		idPrefix: hex.EncodeToString(rnd[:]),
		// Under the host's own inbox prefix, the only one its NATS
		// user may subscribe to (netwire.Permissions).
		inbox:    netwire.Inbox(host) + ".gw" + hex.EncodeToString(rnd[:]),
		dedupe:   newSeen(DedupeWindow, DedupeMax),
		waiters:  make(map[uint64]*waiter),
		streams:  make(map[uint64]func(*nats.Msg)),
		conns:    make(map[string]*cached),
		recvDone: make(chan struct{}),
	}
	if o.outOnly {
		// A program's inbox (auth.go), apart from its host gateway's.
		g.inbox = ProgramInbox(host) + "." + hex.EncodeToString(rnd[:])
	}
	g.hard, g.hardEnd = context.WithCancel(context.Background())
	g.batchMax = batchMaxFor(limit)
	g.policy.Store(o.policy)
	g.w = newWriter(g)
	started := false
	defer func() {
		if !started {
			g.w.close()
		}
	}()
	if g.inboxSub, err = nc.Subscribe(g.inbox+".*", g.onAnswer); err != nil {
		g.hardEnd()
		return nil, fmt.Errorf("gateway: subscribing to its inbox: %w", err)
	}
	if g.streamSub, err = nc.Subscribe(g.inbox+".c.*", g.onStream); err != nil {
		g.inboxSub.Unsubscribe()
		g.hardEnd()
		return nil, fmt.Errorf("gateway: subscribing to its inbox: %w", err)
	}
	if !o.outOnly {
		if g.inSub, err = nc.QueueSubscribe(netwire.HostSubjects(host), queueGroup, g.onRequest); err != nil {
			g.inboxSub.Unsubscribe()
			g.streamSub.Unsubscribe()
			g.hardEnd()
			return nil, fmt.Errorf("gateway: subscribing to %s: %w", netwire.HostSubjects(host), err)
		}
		bound(g.inSub)
	}
	bound(g.inboxSub)
	bound(g.streamSub)
	err = nc.Flush()
	if err == nil {
		// The server answers a subscription its permissions refuse
		// (a deployment whose user for this gateway may serve another
		// host only) before the Flush's PONG.
		if lerr := nc.LastError(); errors.Is(lerr, nats.ErrPermissionViolation) {
			err = fmt.Errorf("NATS refuses this gateway's subscriptions (may its user serve host %s?): %w", host, lerr)
		}
	}
	if err != nil {
		g.unsubscribe()
		g.hardEnd()
		return nil, fmt.Errorf("gateway: subscribing: %w", err)
	}
	if !o.outOnly {
		if g.names, err = startNames(g); err != nil {
			g.unsubscribe()
			g.hardEnd()
			return nil, err
		}
	}
	rctx, stop := context.WithCancel(context.Background())
	g.recvStop = stop
	go g.receive(rctx)
	started = true
	return g, nil
}

// unsubscribe drops the gateway's subscriptions.
func (g *Gateway) unsubscribe() {
	for _, s := range []*nats.Subscription{g.inSub, g.inboxSub, g.streamSub} {
		g.unsub(s)
	}
}

// The most a subscription holds that its handler has not taken yet: what
// a peer publishing faster than the gateway reads can make it hold. Past
// either, NATS drops what comes (counted: Stats.Dropped), and a request
// or answer dropped so ends its sender's Send as silence does: outcome
// unknown. Each handler takes a message in microseconds (a request's
// delivery runs in a goroutine of its own), so only a flood reaches them.
// Variables for the tests.
var (
	pendingMsgs  = 1 << 16
	pendingBytes = 64 << 20
)

// bound puts the pending limits on s.
func bound(s *nats.Subscription) { s.SetPendingLimits(pendingMsgs, pendingBytes) }

// unsub ends s (nil: none), keeping the count of what it dropped.
func (g *Gateway) unsub(s *nats.Subscription) {
	if s == nil {
		return
	}
	if n, err := s.Dropped(); err == nil {
		g.stats.dropped.Add(int64(n))
	}
	s.Unsubscribe()
}

// subs are the gateway's subscriptions that take messages from the
// network.
func (g *Gateway) subs() []*nats.Subscription {
	subs := []*nats.Subscription{g.inSub, g.inboxSub, g.streamSub}
	if n := g.names; n != nil {
		subs = append(subs, n.evSub, n.listSub)
	}
	return subs
}

// checkHost accepts a host name a gateway can serve.
func checkHost(host string) error {
	if host == "" || len(host) > naming.MaxHostLen || strings.ContainsAny(host, ": \t\n") {
		return fmt.Errorf("host name %q: want 1 to %d bytes, no colon or space", host, naming.MaxHostLen)
	}
	return nil
}

// SetPolicy replaces the policy (WithPolicy) for the requests taken from
// now on; nil serves every host.
func (g *Gateway) SetPolicy(p *Policy) { g.policy.Store(p) }

// Policy is the policy in force (SetPolicy): nil, every host served.
func (g *Gateway) Policy() *Policy { return g.policy.Load() }

// Limit is the largest request or reply the gateway carries in one NATS
// message: the NATS payload limit less room for the headers. Larger ones,
// up to netwire.MaxPayload, go in chunks of this size.
func (g *Gateway) Limit() int { return g.limit }

// Stats returns the counts so far.
func (g *Gateway) Stats() Stats {
	s := &g.stats
	return Stats{
		Out: s.out.Load(), In: s.in.Load(), BadEnvelopes: s.badEnv.Load(), BadRequests: s.badReq.Load(),
		BadAnswers: s.badAns.Load(), Duplicates: s.dup.Load(), Denied: s.denied.Load(), Busy: s.busy.Load(), Unknown: s.unknown.Load(),
		Unreachable: s.unreachable.Load(), StrayAnswers: s.stray.Load(), ProxiesToSelf: s.proxies.Load(),
		Partial: s.partial.Load(), PartialReplies: s.partialReplies.Load(), Held: g.held.Load(), MostHeld: g.mostHeld.Load(),
		Batches: s.batches.Load(), Batched: s.batched.Load(), AnswerBatches: s.answerBatches.Load(), BatchedAnswers: s.batchedAnswers.Load(),
		Dropped: g.dropped(),
	}
}

// dropped counts what NATS dropped for the gateway's subscriptions, ended
// ones included.
func (g *Gateway) dropped() int64 {
	n := g.stats.dropped.Load()
	for _, s := range g.subs() {
		if s == nil || !s.IsValid() {
			continue
		}
		if d, err := s.Dropped(); err == nil {
			n += int64(d)
		}
	}
	return n
}

// receive takes the envelopes local programs send until ctx ends.
func (g *Gateway) receive(ctx context.Context) {
	defer close(g.recvDone)
	for {
		msg, err := g.ch.Receive(ctx)
		if err != nil {
			return
		}
		if g.names != nil && g.names.take(msg) { // a locator request: names across hosts
			continue
		}
		g.outbound(msg, time.Now())
	}
}

// reply answers a program with status, detail and (for StatusOK) data.
// A StatusBadMessage is BadMessageCarried here whatever its detail: only
// unreadable answers the program's unreadable envelope with detail 0,
// the one answer a program may take for "never carried" and send again.
func reply(msg simpl.Message, s netwire.Status, detail int, data []byte) {
	if s == netwire.StatusBadMessage {
		detail = netwire.BadMessageCarried
	}
	answerProgram(msg, s, detail, data)
}

// unreadable answers a program whose envelope this gateway could not
// read: StatusBadMessage with detail 0, nothing carried.
func unreadable(msg simpl.Message) { answerProgram(msg, netwire.StatusBadMessage, 0, nil) }

func answerProgram(msg simpl.Message, s netwire.Status, detail int, data []byte) {
	b := make([]byte, 0, netwire.ReplyHeaderSize+len(data))
	b = netwire.AppendReplyHeader(b, s, detail)
	// The sender may have given up (its deadline): nobody to tell.
	_ = msg.Reply(append(b, data...))
}

// outbound takes one envelope from a local program.
func (g *Gateway) outbound(msg simpl.Message, at time.Time) {
	if msg.Proxy() > 0 {
		g.stats.proxies.Add(1) // nothing to carry: a proxy has no target
		return
	}
	env, err := netwire.DecodeEnvelope(msg.Data())
	if err != nil {
		g.stats.badEnv.Add(1)
		unreadable(msg)
		return
	}
	g.mu.Lock()
	closing := g.closing
	if !closing {
		if g.outN.Load() >= int64(g.o.maxInflight) {
			g.mu.Unlock()
			g.stats.busy.Add(1)
			reply(msg, netwire.StatusBusy, g.o.maxInflight, nil)
			return
		}
		g.outN.Add(1)
		g.wg.Add(1)
	}
	g.mu.Unlock()
	if closing {
		reply(msg, netwire.StatusClosed, 0, nil)
		return
	}
	// The deadline counts from when the program made the envelope: the
	// time it waited for this gateway is gone from it too.
	start := at
	if env.Sent > 0 {
		waited := time.Duration(sys.MonoNow() - env.Sent)
		if waited > 0 && env.Timeout > 0 && waited >= env.Timeout {
			// Past its deadline already, by this clock: unless the
			// program reads another (a time namespace of its own, whose
			// offset would fail every Send it makes).
			if _, pid := msg.Sender(); !procfs.SameClocks(pid) {
				waited = 0
			}
		}
		if waited > 0 {
			start = at.Add(-waited)
		}
	}
	go func() {
		defer g.wg.Done()
		g.stats.out.Add(1)
		s, d := g.forward(msg, env, start)
		g.done(Event{Kind: env.Kind, Target: env.Target.Host + ":" + env.Target.Name, From: g.from(msg), Status: s, Detail: d, Elapsed: time.Since(at)})
	}()
}

func (g *Gateway) from(msg simpl.Message) string {
	name, pid := msg.Sender()
	return fmt.Sprintf("%s:%s (pid %d)", g.host, name, pid)
}

func (g *Gateway) done(e Event) {
	if g.o.hooks.Done != nil {
		g.o.hooks.Done(e)
	}
}

// waiter is one outbound request waiting for its answer: its flow holds
// the acknowledgements of a request in chunks and the final answer, and
// is noted of every message (capacity 1).
type waiter struct {
	flow
	batch  atomic.Uint64   // the batch it went out in (0: alone)
	direct *netwire.Answer // the final answer, when it came in an answer batch (under mu)
}

// answered says whether the final answer came.
func (w *waiter) answered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.final != nil || w.direct != nil
}

// settle gives w its final answer a, unless it has one.
func (w *waiter) settle(a *netwire.Answer) {
	w.mu.Lock()
	if w.final == nil && w.direct == nil {
		w.direct = a
	}
	w.mu.Unlock()
	w.notify()
}

// onAnswer takes a message on the inbox: a heartbeat or an answer, for
// the request whose number is the subject's last token.
func (g *Gateway) onAnswer(m *nats.Msg) {
	tok := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	switch {
	case tok == "a":
		g.onAnswers(m)
		return
	case strings.HasPrefix(tok, "x"):
		// Only NATS's "no responders" to a batch comes here, in the
		// server's own form. A batch's number is never 0 (0 is "went out
		// alone"): a forged x0 would settle every lone request.
		k, err := strconv.ParseUint(tok[1:], 10, 64)
		if err != nil || k == 0 || len(m.Data) != 0 || m.Header.Get(natsStatus) != noResponders {
			g.stats.badAns.Add(1)
			return
		}
		g.batchLost(k, netwire.StatusUnreachable, 0)
		return
	}
	n, err := strconv.ParseUint(tok, 10, 64)
	g.mu.Lock()
	w := g.waiters[n]
	g.mu.Unlock()
	if err != nil || w == nil {
		g.stats.stray.Add(1)
		return
	}
	switch m.Header.Get(netwire.HeaderStatus) {
	case StatusWorking:
	case StatusMore:
		w.take(m) // an acknowledgement of the request's chunks
		return
	default:
		w.mu.Lock()
		if w.final == nil {
			w.final = m
		}
		w.mu.Unlock()
	}
	w.notify()
}

// onAnswers takes an answer batch: each answer goes to its request's
// waiter. One it cannot read ends its request's wait with the outcome
// unknown, as a single answer it cannot read does.
func (g *Gateway) onAnswers(m *nats.Msg) {
	err := netwire.DecodeAnswers(m.Data, func(a netwire.Answer, err error) {
		g.mu.Lock()
		w := g.waiters[a.Seq]
		g.mu.Unlock()
		switch {
		case w == nil:
			g.stats.stray.Add(1)
		case err != nil:
			g.stats.badAns.Add(1)
			w.settle(&netwire.Answer{Status: netwire.StatusUnknown})
		case a.Working:
			w.notify()
		default:
			w.settle(&a)
		}
	})
	if err != nil {
		g.stats.badAns.Add(1) // the answers after the bad framing stay in silence
	}
}

// batchLost ends the wait of every request that went out in batch k: it
// was not delivered (s, with detail).
func (g *Gateway) batchLost(k uint64, s netwire.Status, detail int) {
	g.mu.Lock()
	var lost []*waiter
	for _, w := range g.waiters {
		if w.batch.Load() == k {
			lost = append(lost, w)
		}
	}
	g.mu.Unlock()
	for _, w := range lost {
		w.settle(&netwire.Answer{Status: s, Detail: detail})
	}
}

// forward carries env to the gateway of its host and answers msg with
// what comes back. The request leaves the count in flight before the
// program hears the answer, so the program's next request, however soon,
// finds its place free. at is when the program made the envelope (its
// deadline's start).
func (g *Gateway) forward(msg simpl.Message, env netwire.Envelope, at time.Time) (s netwire.Status, detail int) {
	var data []byte   // a reply that came whole
	var framed []byte // a reply that came in chunks, after room for the reply header
	var cost int64    // what it holds of WithMaxBytes, until the program has its reply
	defer func() {
		g.outN.Add(-1)
		if framed != nil && s == netwire.StatusOK {
			_ = msg.Reply(netwire.AppendReplyHeader(framed[:0], s, detail)[:len(framed)])
		} else {
			reply(msg, s, detail, data)
		}
		g.release(cost)
	}()
	if len(env.Payload) > netwire.MaxPayload {
		return netwire.StatusTooLarge, netwire.MaxPayload
	}
	if env.Kind == netwire.KindSend {
		c := g.cost(len(env.Payload), env.MaxReply)
		if !g.reserve(c) {
			g.stats.busy.Add(1)
			return netwire.StatusFull, g.fullKiB()
		}
		cost = c
	}
	if env.Timeout > 0 && time.Since(at) >= env.Timeout {
		return netwire.StatusDeadline, 0 // by either path: never carried
	}
	if b := g.o.bridge; b != nil && b.Takes(env.Target) {
		s, detail, data = g.bridged(b, env, at)
		return s, detail
	}
	r := request{kind: env.Kind, maxReply: env.MaxReply, proxy: env.Proxy, fromHost: g.host}
	r.fromName, r.fromPID = msg.Sender()
	if r.fromPID < 1 {
		r.fromPID = 1 // never a pid of the receiving host anyway
	}
	if len(r.fromName) > maxFromName {
		r.fromName = r.fromName[:maxFromName]
	}
	if env.Timeout > 0 {
		left := env.Timeout - time.Since(at)
		if left <= 0 {
			return netwire.StatusDeadline, 0
		}
		r.timeout = left
	}
	first := env.Payload
	if len(first) > g.limit {
		first, r.size = first[:g.limit], len(first)
	}
	w := &waiter{flow: newFlow(netwire.Inbox(env.Target.Host) + ".")}
	g.mu.Lock()
	n := unguessable()
	for g.waiters[n] != nil {
		n = unguessable()
	}
	g.waiters[n] = w
	g.mu.Unlock()
	r.id = g.idPrefix + "-" + strconv.FormatUint(n, 10)
	defer func() {
		g.mu.Lock()
		delete(g.waiters, n)
		g.mu.Unlock()
	}()
	queued := false
	if len(env.Payload) <= g.batchMax {
		e := netwire.BatchEntry{Kind: r.kind, Name: env.Target.Name, FromName: r.fromName, FromPID: r.fromPID,
			Timeout: r.timeout, Proxy: r.proxy, Seq: n, Payload: env.Payload}
		if r.kind == netwire.KindSend {
			e.MaxReply = r.maxReply
		}
		var err error
		if queued, err = g.w.request(netwire.Subject(env.Target.Host, "", g.host), &e, w); err != nil {
			g.stats.badEnv.Add(1)
			return netwire.StatusBadMessage, 0
		}
	}
	if !queued {
		m := &nats.Msg{
			Subject: netwire.Subject(env.Target.Host, env.Target.Name, g.host),
			Reply:   g.inbox + "." + strconv.FormatUint(n, 10),
			Header:  r.header(),
			Data:    first,
		}
		if err := g.nc.PublishMsg(m); err != nil {
			// Not sent: no server took it.
			g.stats.unreachable.Add(1)
			return netwire.StatusUnreachable, netwire.UnreachableLocal
		}
	}
	if r.size > 0 {
		sent, err := g.pump(&w.flow, env.Payload, len(first), w.answered)
		if errors.Is(err, errBadHeader) {
			g.stats.badAns.Add(1) // an acknowledgement it could not read
		}
		switch {
		case err == nil:
			// All of it arrived: its answer, as below.
		case errors.Is(err, errStopped):
			// The answer came (pump took its note): as below.
			w.notify()
		case sent < len(env.Payload):
			// The receiving gateway delivers whole requests only.
			g.stats.unreachable.Add(1)
			return netwire.StatusUnreachable, sent
		default:
			// All sent, not all acknowledged: it may be whole there.
			g.stats.unknown.Add(1)
			return netwire.StatusUnknown, 0
		}
	}
	silence := time.NewTimer(g.o.silence)
	defer silence.Stop()
	for {
		select {
		case <-w.note:
			w.mu.Lock()
			final, direct := w.final, w.direct
			w.mu.Unlock()
			if final == nil && direct == nil {
				silence.Reset(g.o.silence) // a heartbeat or an acknowledgement
				continue
			}
			var a answer
			var err error
			var got []byte
			if direct != nil {
				a, got = answer{status: direct.Status, detail: direct.Detail}, direct.Data
			} else {
				a, err = parseAnswer(final)
				got = final.Data
			}
			switch {
			case err != nil:
				// Whatever the remote gateway did, it may have
				// delivered the request.
				g.stats.badAns.Add(1)
				g.stats.unknown.Add(1)
				return netwire.StatusUnknown, 0
			case a.working:
				silence.Reset(g.o.silence)
				continue
			case a.status == netwire.StatusUnreachable:
				g.stats.unreachable.Add(1)
			case a.status == netwire.StatusOK && max(a.size, len(got)) > env.MaxReply:
				return netwire.StatusReplyTooLarge, max(a.size, len(got))
			case a.status == netwire.StatusOK && a.size > 0:
				if !strings.HasPrefix(a.acksTo, netwire.Inbox(env.Target.Host)+".") {
					// Acknowledgements go to the answering host's
					// inbox only, never where some host would have
					// this gateway publish.
					g.stats.badAns.Add(1)
					g.stats.unknown.Add(1)
					return netwire.StatusUnknown, 0
				}
				return g.replyChunks(final, a, &framed)
			case a.status == netwire.StatusOK:
				data = got
			}
			return a.status, a.detail
		case <-silence.C:
			g.stats.unknown.Add(1)
			return netwire.StatusUnknown, 0
		case <-g.hard.Done():
			g.stats.unknown.Add(1)
			return netwire.StatusUnknown, 0
		}
	}
}

// bridged carries env through b, within what was left of its deadline.
func (g *Gateway) bridged(b Bridge, env netwire.Envelope, at time.Time) (netwire.Status, int, []byte) {
	var ctx context.Context
	var cancel context.CancelFunc
	if env.Timeout > 0 {
		ctx, cancel = context.WithDeadline(g.hard, at.Add(env.Timeout))
	} else {
		ctx, cancel = context.WithCancel(g.hard)
	}
	defer cancel()
	var err error
	var reply []byte
	switch env.Kind {
	case netwire.KindLocate:
		err = b.Locate(ctx, env.Target)
	case netwire.KindTrigger:
		err = b.Trigger(ctx, env.Target, env.Proxy)
	default:
		// Reserved with the request (cost) where large.
		buf := make([]byte, min(env.MaxReply, netwire.MaxPayload))
		var n int
		n, err = b.Send(ctx, env.Target, env.Payload, buf)
		reply = buf[:n]
	}
	if errors.Is(err, context.Canceled) && g.hard.Err() != nil {
		err = transport.ErrOutcomeUnknown // the gateway gave up on it
	}
	if err != nil {
		if errors.Is(err, transport.ErrOutcomeUnknown) {
			g.stats.unknown.Add(1)
		}
		s, d := netwire.StatusOf(err)
		return s, d, nil
	}
	return netwire.StatusOK, 0, reply
}

// replyChunks takes a reply in chunks whose first is final, into a
// buffer with room for the reply header before it (*framed). Its
// memory was reserved with the request (cost).
func (g *Gateway) replyChunks(final *nats.Msg, a answer, framed *[]byte) (netwire.Status, int) {
	buf := make([]byte, netwire.ReplyHeaderSize+a.size)
	as, stop := g.newAssembly(buf[netwire.ReplyHeaderSize:], final.Data, a.acksTo)
	defer stop()
	if err := as.wait(); err != nil {
		// The request was delivered; its reply is lost.
		if !errors.Is(err, errSilence) && !errors.Is(err, errGaveUp) {
			g.stats.badAns.Add(1)
		}
		g.stats.partialReplies.Add(1)
		g.stats.unknown.Add(1)
		return netwire.StatusUnknown, 0
	}
	*framed = buf
	return netwire.StatusOK, 0
}

// onRequest takes one request from another host's gateway (or this
// host's, for its own host name), or a batch of them.
func (g *Gateway) onRequest(m *nats.Msg) {
	host, name, from, err := netwire.ParseSubject(m.Subject)
	if err == nil && host != g.host {
		err = fmt.Errorf("subject %q: not this host's", m.Subject)
	}
	if err == nil && name == "" {
		g.onBatch(m, from)
		return
	}
	if err != nil {
		// The sending host is the subject's last token, which NATS's
		// permissions bind to the publisher, even in a subject that
		// does not parse (a bad name token): its inbox gets the answer.
		from = ""
		if i := strings.LastIndexByte(m.Subject, '.'); i >= 0 {
			from, _ = netwire.Untoken(m.Subject[i+1:])
		}
	}
	if m.Reply == "" || from == "" || !strings.HasPrefix(m.Reply, netwire.Inbox(from)+".") {
		// Nobody to answer, or an answer subject not the sending
		// host's: answers go to its inbox only, never where it would
		// have this gateway publish (another host's inbox, a subject
		// names are followed on).
		g.stats.badReq.Add(1)
		return
	}
	if err == nil {
		err = naming.CheckLocal(name)
	}
	var r request
	if err == nil {
		r, err = parseRequest(m.Header)
	}
	if err == nil && r.fromHost != from {
		// The subject's sending host is the one NATS vouches for.
		err = fmt.Errorf("%w: %s %q on a subject from %q", errBadHeader, netwire.HeaderFromHost, r.fromHost, from)
	}
	if err == nil && r.kind != netwire.KindSend && len(m.Data) != 0 {
		err = fmt.Errorf("%w: a %v with %d bytes", errBadHeader, r.kind, len(m.Data))
	}
	if err == nil && r.size > 0 && (len(m.Data) == 0 || len(m.Data) >= r.size) {
		err = fmt.Errorf("%w: a first chunk of %d bytes of a request of %d", errBadHeader, len(m.Data), r.size)
	}
	if err != nil {
		g.stats.badReq.Add(1)
		g.answer(m.Reply, netwire.StatusBadMessage, 0, nil)
		return
	}
	g.admit(replyTo{subject: m.Reply}, r, name, m)
}

// onBatch takes a batch of requests from host from's gateway: each is
// taken as if it had come alone, and answered in a batch. A batch whose
// framing or inbox it cannot read is counted and dropped: its senders
// hear silence, their outcome unknown.
func (g *Gateway) onBatch(m *nats.Msg, from string) {
	badInbox := false
	_, err := netwire.DecodeBatch(m.Data, func(h netwire.Batch, e netwire.BatchEntry, err error) bool {
		if subject("inbox", h.Inbox) != nil || !strings.HasPrefix(h.Inbox, netwire.Inbox(from)+".") {
			badInbox = true // nowhere to answer (see onRequest)
			return false
		}
		rt := replyTo{inbox: h.Inbox, seq: e.Seq}
		if err == nil {
			err = naming.CheckLocal(e.Name)
		}
		if err != nil {
			g.stats.badReq.Add(1)
			g.answerTo(rt, netwire.StatusBadMessage, 0, nil)
			return true
		}
		r := request{kind: e.Kind, timeout: e.Timeout, maxReply: e.MaxReply, proxy: e.Proxy, fromHost: from,
			fromName: e.FromName, fromPID: e.FromPID, id: h.IDPrefix + "-" + strconv.FormatUint(e.Seq, 10)}
		g.admit(rt, r, e.Name, &nats.Msg{Data: e.Payload})
		return true
	})
	if err != nil || badInbox {
		g.stats.badReq.Add(1)
	}
}

// replyTo is where a request's answer goes: the reply subject of one
// that came alone, or, for one that came in a batch, its sending
// gateway's inbox and its number there.
type replyTo struct {
	subject string
	inbox   string
	seq     uint64
}

// answerTo answers a request where rt says: one that came in a batch in
// an answer batch, unless its reply is too large for one (then alone,
// on the inbox's subject for its number, in chunks where it must).
func (g *Gateway) answerTo(rt replyTo, s netwire.Status, detail int, data []byte) {
	if rt.inbox == "" {
		g.answer(rt.subject, s, detail, data)
		return
	}
	if len(data) <= g.batchMax {
		if err := g.w.answer(rt.inbox, &netwire.Answer{Seq: rt.seq, Status: s, Detail: detail, Data: data}); err == nil {
			return
		}
	}
	g.answer(rt.inbox+"."+strconv.FormatUint(rt.seq, 10), s, detail, data)
}

// heartbeat tells the requester its request is still at the receiver.
func (g *Gateway) heartbeat(rt replyTo) {
	if rt.inbox == "" {
		_ = g.nc.PublishMsg(&nats.Msg{Subject: rt.subject, Header: answerHeader(StatusWorking, 0)})
		return
	}
	_ = g.w.answer(rt.inbox, &netwire.Answer{Seq: rt.seq, Working: true})
}

// admit takes a request whose headers (or batch entry) were read: as
// the policy, at most once and the limits allow, it is delivered to the
// local name in a goroutine of its own. m holds its data (its first
// chunk, for one in chunks).
func (g *Gateway) admit(rt replyTo, r request, name string, m *nats.Msg) {
	if ok, _ := g.policy.Load().Allows(r.fromHost, r.fromName, name); !ok {
		g.stats.denied.Add(1)
		g.answerTo(rt, netwire.StatusDenied, 0, nil)
		g.done(Event{Inbound: true, Kind: r.kind, Target: name, From: fmt.Sprintf("%s:%s (pid %d)", r.fromHost, r.fromName, r.fromPID), Status: netwire.StatusDenied})
		return
	}
	if !g.dedupe.add(r.fromHost+"/"+r.id, time.Now()) {
		g.stats.dup.Add(1)
		g.answerTo(rt, netwire.StatusBadMessage, 0, nil)
		return
	}
	var cost int64
	if r.kind == netwire.KindSend {
		cost = g.cost(max(r.size, len(m.Data)), r.maxReply)
	}
	g.mu.Lock()
	closing := g.closing
	if !closing {
		if g.inN.Load() >= int64(g.o.maxInbound) {
			g.mu.Unlock()
			g.stats.busy.Add(1)
			g.answerTo(rt, netwire.StatusBusy, g.o.maxInbound, nil)
			return
		}
		if !g.reserve(cost) {
			g.mu.Unlock()
			g.stats.busy.Add(1)
			g.answerTo(rt, netwire.StatusFull, g.fullKiB(), nil)
			return
		}
		g.inN.Add(1)
		g.wg.Add(1)
	}
	g.mu.Unlock()
	if closing {
		g.answerTo(rt, netwire.StatusClosed, 0, nil)
		return
	}
	go func() {
		defer g.wg.Done()
		defer g.release(cost)
		g.stats.in.Add(1)
		t0 := time.Now()
		var s netwire.Status
		var d int
		if req, ok := g.whole(m, r); ok {
			s, d = g.serve(rt, r, name, req, t0)
		} else {
			s = netwire.StatusUnreachable
		}
		g.done(Event{Inbound: true, Kind: r.kind, Target: name, From: fmt.Sprintf("%s:%s (pid %d)", r.fromHost, r.fromName, r.fromPID), Status: s, Detail: d, Elapsed: time.Since(t0)})
	}()
}

// whole is the request whose first message is m: m's data, or, for a
// request in chunks, all of them put together. A request in chunks that
// does not come whole is dropped and counted, and leaves the count in
// flight; its sender is answered if it sent a bad chunk or the gateway
// is closing.
func (g *Gateway) whole(m *nats.Msg, r request) ([]byte, bool) {
	if r.size == 0 {
		return m.Data, true
	}
	req := make([]byte, r.size)
	as, stop := g.newAssembly(req, m.Data, m.Reply)
	err := as.wait()
	stop()
	if err == nil {
		return req, true
	}
	g.stats.partial.Add(1)
	g.inN.Add(-1)
	switch {
	case errors.Is(err, errGaveUp):
		g.answer(m.Reply, netwire.StatusClosed, 0, nil)
	case !errors.Is(err, errSilence):
		g.stats.badReq.Add(1)
		g.answer(m.Reply, netwire.StatusBadMessage, 0, nil)
	}
	return nil, false
}

// answer publishes the answer to a request; a reply larger than one NATS
// message goes in chunks.
func (g *Gateway) answer(to string, s netwire.Status, detail int, data []byte) {
	if len(data) > g.limit {
		g.answerChunks(to, data)
		return
	}
	// A failed publish (the connection lost) leaves the requester in
	// silence: its outcome is unknown there, which is the truth.
	_ = g.nc.PublishMsg(&nats.Msg{Subject: to, Header: answerHeader(s.String(), detail), Data: data})
}

// serve delivers one request to the local name and answers it,
// heartbeating while it is at the receiver.
func (g *Gateway) serve(rt replyTo, r request, name string, req []byte, arrived time.Time) (s netwire.Status, detail int) {
	ctx, cancel := context.WithCancel(g.hard)
	if r.timeout > 0 {
		// From the first chunk's arrival: what was left when it was sent.
		ctx, cancel = context.WithDeadline(g.hard, arrived.Add(r.timeout))
	}
	defer cancel()
	// A heartbeat every interval while the local Send is in progress: a
	// timer that sets itself again, not a goroutine, since most Sends
	// end before the first. Once stopped is set (under mu) none goes
	// out, so none follows the answer.
	var (
		mu      sync.Mutex
		stopped bool
		beat    *time.Timer
	)
	mu.Lock()
	beat = time.AfterFunc(g.o.heartbeat, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		g.heartbeat(rt)
		beat.Reset(g.o.heartbeat)
	})
	mu.Unlock()
	s, detail, data := g.deliver(ctx, r, name, req)
	mu.Lock()
	stopped = true
	beat.Stop()
	mu.Unlock()
	// Out of the count in flight before the answer leaves, so the next
	// request it makes room for is not told busy.
	g.inN.Add(-1)
	g.answerTo(rt, s, detail, data)
	return s, detail
}

// deliver makes the local Send, Trigger or Locate for r.
func (g *Gateway) deliver(ctx context.Context, r request, name string, req []byte) (netwire.Status, int, []byte) {
	if name == netwire.GatewayName {
		// Its own name: a request to it would come straight back out.
		return netwire.StatusDenied, 0, nil
	}
	if r.kind == netwire.KindLocate {
		if _, err := g.reg.Lookup(name); err != nil {
			s, d := netwire.StatusOf(err)
			return s, d, nil
		}
		return netwire.StatusOK, 0, nil
	}
	conn, err := g.conn(ctx, name)
	if err != nil {
		s, d := netwire.StatusOf(err)
		return s, d, nil
	}
	if r.kind == netwire.KindTrigger {
		err := conn.Trigger(r.proxy)
		g.check(name, conn, err)
		s, d := netwire.StatusOf(err)
		return s, d, nil
	}
	// Reserved with the request (cost) where larger than one NATS
	// message: a reply buffer of the sender's size, up to what crosses.
	buf := make([]byte, min(r.maxReply, netwire.MaxPayload))
	// Who sent it, for the receiver's Message.Cred.
	ctx = transport.WithOrigin(ctx, &transport.Origin{Host: r.fromHost, Name: r.fromName, PID: r.fromPID})
	n, err := conn.Send(ctx, req, buf)
	if err != nil {
		g.check(name, conn, err)
		if errors.Is(err, simpl.ErrReplyTooLarge) && r.maxReply > netwire.MaxPayload {
			// The sender would take it; the network cannot carry it.
			return netwire.StatusTooLarge, netwire.MaxPayload, nil
		}
		s, d := netwire.StatusOf(err)
		return s, d, nil
	}
	return netwire.StatusOK, 0, buf[:n]
}

// cached is a connection to a local name's owner, and the FIFO
// directory's modification time when the registry last said that owner
// holds the name.
type cached struct {
	c     *simpl.Conn
	dirAt time.Time
}

// conn is a connection to the live owner of name: the cached one if it
// is still the owner's, else a new one. Asking the registry (a directory
// scan and a few /proc reads) is the costliest step of a request: done
// for every request it took half a gateway's CPU. So the cached
// connection is used as long as the FIFO directory has not changed since
// the registry vouched for it: a name attached or detached, a holder
// reaped, changes it. A holder killed since (its FIFO left behind) fails
// the next Send at once, peer gone, and the connection is dropped
// (check).
func (g *Gateway) conn(ctx context.Context, name string) (*simpl.Conn, error) {
	var dirAt time.Time
	if fi, err := os.Stat(g.ch.Dir()); err == nil {
		dirAt = fi.ModTime()
	}
	g.mu.Lock()
	cc := g.conns[name]
	g.mu.Unlock()
	if cc != nil && !dirAt.IsZero() && cc.dirAt.Equal(dirAt) {
		return cc.c, nil
	}
	ent, err := g.reg.Lookup(name)
	if err != nil {
		return nil, err
	}
	if cc != nil && cc.c.PID() == ent.PID {
		g.mu.Lock()
		if g.conns[name] == cc {
			cc.dirAt = dirAt
		}
		g.mu.Unlock()
		return cc.c, nil
	}
	if cc != nil {
		g.drop(name, cc.c)
	}
	c, err := g.ch.Locate(ctx, name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns == nil { // closed meanwhile
		c.Close()
		return nil, fmt.Errorf("gateway: %w", simpl.ErrClosed)
	}
	if old := g.conns[name]; old != nil && old.c.PID() == c.PID() {
		c.Close()
		return old.c, nil
	}
	if old := g.conns[name]; old != nil {
		old.c.Close()
	}
	g.conns[name] = &cached{c: c, dirAt: dirAt}
	return c, nil
}

// check drops the cached connection to name when err says its receiver
// is gone.
func (g *Gateway) check(name string, c *simpl.Conn, err error) {
	if errors.Is(err, simpl.ErrPeerGone) || errors.Is(err, simpl.ErrClosed) || errors.Is(err, simpl.ErrBadMessage) {
		g.drop(name, c)
	}
}

func (g *Gateway) drop(name string, c *simpl.Conn) {
	g.mu.Lock()
	if cc := g.conns[name]; cc != nil && cc.c == c {
		delete(g.conns, name)
	}
	g.mu.Unlock()
	c.Close()
}

// Close stops the gateway: envelopes and requests that arrive from now
// on are answered StatusClosed; those in flight get up to the drain time
// (WithDrain) to finish, then their outcome is unknown to their senders
// (outbound: StatusUnknown) and their local Sends are cancelled
// (inbound); then the subscriptions go and the cached connections are
// closed. It does not close the Channel or the NATS connection.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.mu.Lock()
		g.closing = true
		g.mu.Unlock()
		if g.names != nil {
			g.names.close()
		}
		// No more requests from the network: another gateway of the
		// queue group takes them, or their senders hear "no responders".
		// Those already here are answered StatusClosed as the drain
		// hands them over.
		if g.inSub != nil {
			g.inSub.Drain()
		}
		idle := make(chan struct{})
		go func() {
			g.wg.Wait()
			close(idle)
		}()
		t := time.NewTimer(g.o.drain)
		select {
		case <-idle:
		case <-t.C:
		}
		t.Stop()
		g.hardEnd()
		<-idle
		g.recvStop()
		<-g.recvDone
		g.w.close() // after the last request's answer was queued
		g.inboxSub.Unsubscribe()
		g.streamSub.Unsubscribe()
		g.mu.Lock()
		conns := g.conns
		g.conns = nil
		g.mu.Unlock()
		for _, cc := range conns {
			cc.c.Close()
		}
	})
	return nil
}

// unguessable is a number for a request, batch, stream or names list
// that no other host can guess. Those numbers are the last token of the
// subjects their answers, acknowledgements and chunks come to under the
// gateway's inbox, and every host that hears from the gateway learns its
// inbox: numbered in order, they would let any host answer another's
// requests (docs/network.md, Security). Never 0.
func unguessable() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand)
		if n := binary.LittleEndian.Uint64(b[:]); n != 0 {
			return n
		}
	}
}
