package simplprom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is a Prometheus collector of what the Channels attached with
// simpl.WithObserver(m) do: on the receiving side the messages, bytes and
// proxies received, the answers, the errors, the senders waiting for an
// answer and the time from Receive to the answer; on the sending side the
// round trip of every Send. Nothing is registered anywhere by default:
// register a Metrics on a registry of your own, and serve it as you like.
//
// Every series carries the label channel, the attached name. One Metrics
// serves any number of Channels; Channels of the same name share their
// series. A Channel's series are found when it is attached and a Conn's
// when it is located, so recording a message costs a few atomic additions
// at each end and allocates nothing (docs/metrics.md lists the metrics
// and what they cost). Errors, which are not the fast path, look up their
// series as they happen.
//
// Safe for concurrent use.
type Metrics struct {
	bounds  []float64 // histogram bucket bounds, seconds
	nsBound []int64   // the same in nanoseconds: d <= nsBound[i] iff d <= bounds[i]

	receivedDesc, receivedBytesDesc, receivedProxiesDesc *prometheus.Desc // channel
	repliesDesc                                          *prometheus.Desc // channel, outcome
	replyTimeDesc                                        *prometheus.Desc // channel
	blockedDesc                                          *prometheus.Desc // channel
	roundTripDesc, sentProxiesDesc                       *prometheus.Desc // channel, to, transport
	errors                                               *prometheus.CounterVec

	maxSeries int

	mu    sync.Mutex
	recvs map[string]*recvSeries  // by channel name
	open  map[*channel]struct{}   // open Channels, for blocked senders
	sends map[sendKey]*sendSeries // by channel, to, transport
	order []string                // names in recvs, in the order attached
	keys  []sendKey               // keys of sends, in the order located
}

var (
	_ prometheus.Collector = (*Metrics)(nil)
	_ simpl.Observer       = (*Metrics)(nil)
)

// Options are what New's options set.
type Options struct {
	// Buckets are the upper bounds, in seconds and increasing, of the
	// buckets of both histograms (simpl_receive_to_reply_seconds and
	// simpl_send_round_trip_seconds).
	Buckets []float64
	// MaxSeries bounds the channel names, and apart the (channel, to,
	// transport) triples of Sends, that get series of their own; the
	// rest add up under OtherChannels (DefaultMaxSeries).
	MaxSeries int
}

// DefaultMaxSeries is Options.MaxSeries's default.
const DefaultMaxSeries = 1000

// OtherChannels is the channel (and to) label of what adds up past
// Options.MaxSeries: a process that attaches a new anonymous Channel for
// every job, say, makes a new name each time. No SIMPL name contains '#'.
const OtherChannels = "#other"

// WithMaxSeries sets Options.MaxSeries (n >= 1).
func WithMaxSeries(n int) Option {
	return func(o *Options) error {
		if n < 1 {
			return fmt.Errorf("simplprom: %d series at most: want 1 or more", n)
		}
		o.MaxSeries = n
		return nil
	}
}

// An Option configures New.
type Option func(*Options) error

// WithLatencyBuckets sets the upper bounds, in seconds and increasing, of
// the buckets of both histograms instead of DefaultLatencyBuckets. New
// fails with bounds that are not finite or do not increase.
func WithLatencyBuckets(bounds ...float64) Option {
	return func(o *Options) error {
		for i, b := range bounds {
			switch {
			case math.IsNaN(b) || math.IsInf(b, 0):
				return fmt.Errorf("simplprom: latency bucket %d is %v, want a finite bound", i, b)
			case i > 0 && b <= bounds[i-1]:
				return fmt.Errorf("simplprom: latency bucket %d is %v after %v: bounds must increase", i, b, bounds[i-1])
			}
		}
		o.Buckets = append([]float64(nil), bounds...)
		return nil
	}
}

// DefaultLatencyBuckets are the histograms' bucket bounds unless
// WithLatencyBuckets says otherwise: 26 of them, from 0.5 µs doubling up
// to about 17 s.
func DefaultLatencyBuckets() []float64 { return prometheus.ExponentialBuckets(0.5e-6, 2, 26) }

// New makes a collector for simpl.WithObserver. Register it on a registry
// of your own (prometheus.NewRegistry); to add labels to every series,
// register it through prometheus.WrapRegistererWith. It fails only when
// an option does.
func New(opts ...Option) (*Metrics, error) {
	o := Options{Buckets: DefaultLatencyBuckets(), MaxSeries: DefaultMaxSeries}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	m := &Metrics{
		bounds:    o.Buckets,
		maxSeries: o.MaxSeries,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simpl_errors_total",
			Help: "Failed operations, by operation (receive, reply, send, trigger) and kind (the sentinel error: peer_gone, too_large, reply_too_large, rejected, closed, canceled, deadline, ...). A Receive ended by its context is not counted.",
		}, []string{"channel", "op", "kind"}),
		recvs: make(map[string]*recvSeries),
		open:  make(map[*channel]struct{}),
		sends: make(map[sendKey]*sendSeries),
	}
	for _, b := range o.Buckets {
		m.nsBound = append(m.nsBound, nanoseconds(b))
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m.receivedDesc = desc("simpl_received_messages_total",
		"Requests received (proxies not included).", "channel")
	m.receivedBytesDesc = desc("simpl_received_bytes_total",
		"Bytes of the requests received.", "channel")
	m.receivedProxiesDesc = desc("simpl_received_proxies_total",
		"Proxies (Triggers) received.", "channel")
	m.repliesDesc = desc("simpl_replies_total",
		"Requests answered, by how: reply (Reply or ReplyInPlace), reply_error (ReplyError) or relay (Relay). Failed answers count in simpl_errors_total.",
		"channel", "outcome")
	m.replyTimeDesc = desc("simpl_receive_to_reply_seconds",
		"Time from Receive returning a request to its answer (successful, or failed with reply_too_large or peer_gone).",
		"channel")
	m.blockedDesc = desc("simpl_blocked_senders",
		"Senders blocked on this channel's answer: requests received by an open Channel and not answered yet (senders whose requests are not received yet are not counted).",
		"channel")
	m.roundTripDesc = desc("simpl_send_round_trip_seconds",
		"Time each Send (Conn.Send, Buffer.Send) blocked, whatever its outcome; its count is the number of Sends.",
		"channel", "to", "transport")
	m.sentProxiesDesc = desc("simpl_sent_proxies_total",
		"Proxies (Triggers) sent.", "channel", "to", "transport")
	return m, nil
}

// nanoseconds is the bound b (seconds) in whole nanoseconds, rounded so
// that a whole number of nanoseconds d is at most the result exactly when
// d seconds/1e9 is at most b.
func nanoseconds(b float64) int64 {
	ns := math.Floor(b * 1e9)
	if (ns+1)/1e9 <= b { // b*1e9 rounded down past a whole number
		ns++
	}
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns < math.MinInt64:
		return math.MinInt64
	}
	return int64(ns)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.receivedDesc, m.receivedBytesDesc, m.receivedProxiesDesc,
		m.repliesDesc, m.replyTimeDesc, m.blockedDesc, m.roundTripDesc, m.sentProxiesDesc} {
		ch <- d
	}
	m.errors.Describe(ch)
}

var outcomes = [...]simpl.Outcome{simpl.OutcomeReply, simpl.OutcomeReplyError, simpl.OutcomeRelay}

// Collect implements prometheus.Collector. A scrape that runs while a
// histogram is being observed may see the observation in its count and
// not yet in its sum, or the other way round.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	names := m.order
	keys := m.keys
	recvs := make([]*recvSeries, len(names))
	blocked := make([]int64, len(names))
	for i, name := range names {
		recvs[i] = m.recvs[name]
	}
	for c := range m.open {
		blocked[c.s.index] += c.pending.Load()
	}
	sends := make([]*sendSeries, len(keys))
	for i, k := range keys {
		sends[i] = m.sends[k]
	}
	m.mu.Unlock()

	counter := func(d *prometheus.Desc, v *atomic.Uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	for i, s := range recvs {
		name := names[i]
		counter(m.receivedDesc, &s.received, name)
		counter(m.receivedBytesDesc, &s.bytes, name)
		counter(m.receivedProxiesDesc, &s.proxies, name)
		for _, o := range outcomes {
			counter(m.repliesDesc, &s.replies[o], name, o.String())
		}
		ch <- m.histogram(m.replyTimeDesc, &s.replyTime, name)
		ch <- prometheus.MustNewConstMetric(m.blockedDesc, prometheus.GaugeValue, float64(blocked[i]), name)
	}
	for i, s := range sends {
		k := keys[i]
		ch <- m.histogram(m.roundTripDesc, &s.roundTrip, k.channel, k.to, k.transport)
		counter(m.sentProxiesDesc, &s.proxies, k.channel, k.to, k.transport)
	}
	m.errors.Collect(ch)
}

func (m *Metrics) histogram(d *prometheus.Desc, h *histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(m.bounds))
	var n uint64
	for i, b := range m.bounds {
		n += h.counts[i].Load()
		buckets[b] = n
	}
	n += h.counts[len(m.bounds)].Load()
	return prometheus.MustNewConstHistogram(d, n, h.seconds(), buckets, labels...)
}

// recvSeries is the receiving side's series of one channel name.
type recvSeries struct {
	received, bytes, proxies atomic.Uint64
	replies                  [len(outcomes)]atomic.Uint64 // by simpl.Outcome
	replyTime                histogram
	index                    int // in Metrics.order
}

// sendSeries is the sending side's series of one channel, to, transport.
type sendSeries struct {
	roundTrip histogram
	proxies   atomic.Uint64
}

type sendKey struct{ channel, to, transport string }

// histogram counts observations in nanoseconds, in buckets bounded by
// Metrics.nsBound, and their sum.
type histogram struct {
	bounds []int64
	counts []atomic.Uint64 // len(bounds)+1: the last is +Inf
	// The sum in nanoseconds, 128 bits: sumHi counts the wraps of sumLo.
	// (An int64 of nanoseconds wrapped past 292 years of time summed,
	// which a server holding a thousand requests reaches in 107 days.)
	sumLo, sumHi atomic.Uint64
}

// seconds is the sum in seconds.
func (h *histogram) seconds() float64 {
	return float64(h.sumHi.Load())*(1<<64/1e9) + float64(h.sumLo.Load())/1e9
}

func (m *Metrics) newHistogram() histogram {
	return histogram{bounds: m.nsBound, counts: make([]atomic.Uint64, len(m.nsBound)+1)}
}

func (h *histogram) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(h.bounds) && ns > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	add := uint64(max(ns, 0))
	if h.sumLo.Add(add) < add {
		h.sumHi.Add(1) // this add wrapped the low word
	}
}

// ObserveChannel implements simpl.Observer: it finds (or makes) the
// series of the Channel named name.
func (m *Metrics) ObserveChannel(name string) simpl.ChannelObserver {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.recvs[name]
	if s == nil && len(m.recvs) >= m.maxSeries {
		name = OtherChannels
		s = m.recvs[name]
	}
	if s == nil {
		s = &recvSeries{replyTime: m.newHistogram(), index: len(m.order)}
		m.recvs[name] = s
		m.order = append(m.order, name)
	}
	c := &channel{
		m:      m,
		s:      s,
		name:   name,
		errors: m.errors.MustCurryWith(prometheus.Labels{"channel": name}),
	}
	m.open[c] = struct{}{}
	return c
}

// channel records one Channel. Safe for concurrent use.
type channel struct {
	s       *recvSeries
	pending atomic.Int64 // requests received and not answered
	m       *Metrics
	name    string
	errors  *prometheus.CounterVec // curried: op, kind
}

// Closed stops counting the Channel's unanswered requests as blocked
// senders: Close answers them.
func (c *channel) Closed() {
	c.m.mu.Lock()
	delete(c.m.open, c)
	c.m.mu.Unlock()
}

func (c *channel) Received(size int) {
	c.s.received.Add(1)
	c.s.bytes.Add(uint64(size))
	c.pending.Add(1)
}

func (c *channel) ProxyReceived() { c.s.proxies.Add(1) }

func (c *channel) ReceiveFailed(err error) {
	c.errors.WithLabelValues("receive", errorKind(err)).Inc()
}

func (c *channel) Answered(how simpl.Outcome, d time.Duration, err error) {
	if err != nil {
		c.answerFailed(d, err)
		return
	}
	c.s.replyTime.observe(d)
	if how >= 0 && int(how) < len(c.s.replies) {
		c.s.replies[how].Add(1)
	}
	c.pending.Add(-1)
}

func (c *channel) answerFailed(d time.Duration, err error) {
	switch {
	case errors.Is(err, simpl.ErrReplyTooLarge), errors.Is(err, simpl.ErrPeerGone):
		// The answer spent the message; it just did not reach the sender.
		c.s.replyTime.observe(d)
		c.pending.Add(-1)
	case errors.Is(err, simpl.ErrClosed):
		// Closing the Channel answered it, and took it out of the count.
		c.pending.Add(-1)
	}
	// Otherwise (ErrReplied, a Relay that could not be delivered, ...)
	// the message was answered before, or is still owed its answer.
	c.errors.WithLabelValues("reply", errorKind(err)).Inc()
}

// ObserveConn finds (or makes) the series of a Conn to the name to.
func (c *channel) ObserveConn(to, transport string) simpl.ConnObserver {
	m := c.m
	k := sendKey{c.name, to, transport}
	m.mu.Lock()
	s := m.sends[k]
	if s == nil && len(m.sends) >= m.maxSeries {
		k = sendKey{OtherChannels, OtherChannels, transport}
		s = m.sends[k]
	}
	if s == nil {
		s = &sendSeries{roundTrip: m.newHistogram()}
		m.sends[k] = s
		m.keys = append(m.keys, k)
	}
	m.mu.Unlock()
	return &conn{s: s, errors: c.errors}
}

// conn records one Conn. Safe for concurrent use.
type conn struct {
	s      *sendSeries
	errors *prometheus.CounterVec // curried: op, kind
}

func (c *conn) Sent(d time.Duration, err error) {
	c.s.roundTrip.observe(d)
	if err != nil {
		c.errors.WithLabelValues("send", errorKind(err)).Inc()
	}
}

func (c *conn) Triggered(err error) {
	if err != nil {
		c.errors.WithLabelValues("trigger", errorKind(err)).Inc()
		return
	}
	c.s.proxies.Add(1)
}

// errorKind is the value of the label kind for err: the sentinel it
// wraps.
func errorKind(err error) string {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return "other"
}

var errorKinds = []struct {
	err  error
	kind string
}{
	{simpl.ErrPeerGone, "peer_gone"},
	{simpl.ErrTooLarge, "too_large"},
	{simpl.ErrTooManyLanes, "too_many_lanes"},
	{simpl.ErrUnreachable, "unreachable"},
	{simpl.ErrOutcomeUnknown, "outcome_unknown"},
	{simpl.ErrReplyTooLarge, "reply_too_large"},
	{simpl.ErrRejected, "rejected"},
	{simpl.ErrBadMessage, "bad_message"},
	{simpl.ErrReplied, "replied"},
	{simpl.ErrBadProxy, "bad_proxy"},
	{simpl.ErrNotFound, "not_found"},
	{simpl.ErrNotSupported, "not_supported"},
	{simpl.ErrBadName, "bad_name"},
	{simpl.ErrClosed, "closed"},
	{simpl.ErrPermission, "permission"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline"},
}
