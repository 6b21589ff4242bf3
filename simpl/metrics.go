package simpl

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics is a Prometheus collector of what Channels attached with
// WithMetrics do: on the receiving side the messages, bytes and proxies
// received, the answers, the errors, the senders waiting for an answer
// and the time from Receive to the answer; on the sending side the round
// trip of every Send. Nothing is registered anywhere by default: register
// a Metrics on a registry of your own, and serve it as you like.
//
//	m := simpl.NewMetrics()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//	ch, err := simpl.Attach("CLOCK", simpl.WithMetrics(m))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every series carries the label channel, the attached name. One Metrics
// serves any number of Channels; Channels of the same name share their
// series. A Channel's series are found when it is attached and a Conn's
// when it is located, so recording a message costs a few atomic additions
// and two clock readings at each end, and allocates nothing
// (docs/metrics.md lists the metrics and what they cost). Errors, which
// are not the fast path, look up their series as they happen.
//
// Safe for concurrent use.
type Metrics struct {
	clk     clock
	bounds  []float64 // histogram bucket bounds, seconds
	tbounds []int64   // the same in clock ticks

	receivedDesc, receivedBytesDesc, receivedProxiesDesc *prometheus.Desc // channel
	repliesDesc                                          *prometheus.Desc // channel, outcome
	replyTimeDesc                                        *prometheus.Desc // channel
	blockedDesc                                          *prometheus.Desc // channel
	roundTripDesc, sentProxiesDesc                       *prometheus.Desc // channel, to, transport
	errors                                               *prometheus.CounterVec

	mu    sync.Mutex
	recvs map[string]*recvSeries    // by channel name
	open  map[*chanMetrics]struct{} // open Channels, for blocked senders
	sends map[sendKey]*sendSeries   // by channel, to, transport
	order []string                  // names in recvs, in the order attached
	keys  []sendKey                 // keys of sends, in the order located
}

// MetricsOption configures NewMetrics.
type MetricsOption func(*metricsOptions)

type metricsOptions struct {
	buckets []float64
}

// WithLatencyBuckets sets the upper bounds, in seconds and increasing, of
// the buckets of both histograms (simpl_receive_to_reply_seconds and
// simpl_send_round_trip_seconds) instead of DefaultLatencyBuckets.
func WithLatencyBuckets(bounds ...float64) MetricsOption {
	return func(o *metricsOptions) { o.buckets = append([]float64(nil), bounds...) }
}

// DefaultLatencyBuckets are the histograms' bucket bounds unless
// WithLatencyBuckets says otherwise: 26 of them, from 0.5 µs doubling up
// to about 17 s.
func DefaultLatencyBuckets() []float64 { return prometheus.ExponentialBuckets(0.5e-6, 2, 26) }

// Values of the label outcome of simpl_replies_total.
const (
	outcomeReply = iota
	outcomeReplyError
	outcomeRelay
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"reply", "reply_error", "relay"}

// NewMetrics makes a collector for WithMetrics. Register it on a registry
// of your own (prometheus.NewRegistry); to add labels to every series,
// register it through prometheus.WrapRegistererWith. It takes about 5 ms
// where it measures the rate of the processor's time-stamp counter (see
// docs/metrics.md). It panics if WithLatencyBuckets gives bounds that do
// not increase.
func NewMetrics(opts ...MetricsOption) *Metrics {
	o := metricsOptions{buckets: DefaultLatencyBuckets()}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		clk:    newClock(),
		bounds: o.buckets,
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "simpl_errors_total",
			Help: "Failed operations, by operation (receive, reply, send, trigger) and kind (the sentinel error: peer_gone, too_large, reply_too_large, rejected, closed, canceled, deadline, ...). A Receive ended by its context is not counted.",
		}, []string{"channel", "op", "kind"}),
		recvs: make(map[string]*recvSeries),
		open:  make(map[*chanMetrics]struct{}),
		sends: make(map[sendKey]*sendSeries),
	}
	for i, b := range o.buckets {
		if i > 0 && b <= o.buckets[i-1] {
			panic("simpl: WithLatencyBuckets: bounds must increase")
		}
		m.tbounds = append(m.tbounds, m.clk.ticks(b))
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
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.receivedDesc, m.receivedBytesDesc, m.receivedProxiesDesc,
		m.repliesDesc, m.replyTimeDesc, m.blockedDesc, m.roundTripDesc, m.sentProxiesDesc} {
		ch <- d
	}
	m.errors.Describe(ch)
}

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
	for cm := range m.open {
		blocked[cm.s.index] += cm.pending.Load()
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
		for o := range s.replies {
			counter(m.repliesDesc, &s.replies[o], name, outcomeNames[o])
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
	return prometheus.MustNewConstHistogram(d, n, m.clk.seconds(h.sum.Load()), buckets, labels...)
}

// WithMetrics records the Channel's work in m: its receives and answers,
// and the Sends and Triggers of the Conns it locates. Without it the
// Channel records nothing and pays nothing.
func WithMetrics(m *Metrics) Option { return func(o *options) error { o.metrics = m; return nil } }

// recvSeries is the receiving side's series of one channel name.
type recvSeries struct {
	received, bytes, proxies atomic.Uint64
	replies                  [numOutcomes]atomic.Uint64
	replyTime                histogram
	index                    int // in Metrics.order
}

// sendSeries is the sending side's series of one channel, to, transport.
type sendSeries struct {
	roundTrip histogram
	proxies   atomic.Uint64
}

type sendKey struct{ channel, to, transport string }

// histogram counts observations in clock ticks, in buckets bounded by
// Metrics.tbounds, and their sum.
type histogram struct {
	tbounds []int64
	counts  []atomic.Uint64 // len(tbounds)+1: the last is +Inf
	sum     atomic.Int64    // ticks
}

func (m *Metrics) newHistogram() histogram {
	return histogram{tbounds: m.tbounds, counts: make([]atomic.Uint64, len(m.tbounds)+1)}
}

func (h *histogram) observe(d int64) {
	d = max(d, 0) // clocks of two processors may differ by a hair
	i := 0
	for i < len(h.tbounds) && d > h.tbounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(d)
}

// attach finds (or makes) the series of a Channel named name.
func (m *Metrics) attach(name string) *chanMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.recvs[name]
	if s == nil {
		s = &recvSeries{replyTime: m.newHistogram(), index: len(m.order)}
		m.recvs[name] = s
		m.order = append(m.order, name)
	}
	cm := &chanMetrics{
		m:      m,
		clk:    m.clk,
		s:      s,
		name:   name,
		errors: m.errors.MustCurryWith(prometheus.Labels{"channel": name}),
	}
	m.open[cm] = struct{}{}
	return cm
}

// chanMetrics is one Channel's recording. Safe for concurrent use.
type chanMetrics struct {
	clk     clock
	s       *recvSeries
	pending atomic.Int64 // requests received and not answered
	m       *Metrics
	name    string
	errors  *prometheus.CounterVec // curried: op, kind
}

// close stops counting the Channel's unanswered requests as blocked
// senders: Close answered them.
func (cm *chanMetrics) close() {
	cm.m.mu.Lock()
	delete(cm.m.open, cm)
	cm.m.mu.Unlock()
}

// receive records a request or proxy that Receive is about to return,
// and arms msg to record its answer.
func (cm *chanMetrics) receive(msg *Message, req transport.Request) {
	if msg.proxy > 0 {
		cm.s.proxies.Add(1)
		return
	}
	cm.s.received.Add(1)
	cm.s.bytes.Add(uint64(len(req.Data())))
	cm.pending.Add(1)
	msg.met, msg.t0 = cm, cm.clk.now()
}

// receiveFailed records a failed Receive; one ended by its context is
// not a failure.
func (cm *chanMetrics) receiveFailed(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	cm.errors.WithLabelValues("receive", errorKind(err)).Inc()
}

// answered records an answer to a request received at t0.
func (cm *chanMetrics) answered(t0 int64, outcome int, err error) {
	if err != nil {
		cm.answerFailed(t0, err)
		return
	}
	cm.s.replyTime.observe(cm.clk.now() - t0)
	cm.s.replies[outcome].Add(1)
	cm.pending.Add(-1)
}

func (cm *chanMetrics) answerFailed(t0 int64, err error) {
	switch {
	case errors.Is(err, transport.ErrReplyTooLarge), errors.Is(err, transport.ErrPeerGone):
		// The answer spent the message; it just did not reach the sender.
		cm.s.replyTime.observe(cm.clk.now() - t0)
		cm.pending.Add(-1)
	case errors.Is(err, transport.ErrClosed):
		// Closing the Channel answered it, and took it out of the count.
		cm.pending.Add(-1)
	}
	// Otherwise (ErrReplied, a Relay that could not be delivered, ...)
	// the message was answered before, or is still owed its answer.
	cm.errors.WithLabelValues("reply", errorKind(err)).Inc()
}

// conn finds (or makes) the series of a Conn to the name to.
func (cm *chanMetrics) conn(to, via string) *connMetrics {
	m := cm.m
	k := sendKey{cm.name, to, via}
	m.mu.Lock()
	s := m.sends[k]
	if s == nil {
		s = &sendSeries{roundTrip: m.newHistogram()}
		m.sends[k] = s
		m.keys = append(m.keys, k)
	}
	m.mu.Unlock()
	return &connMetrics{clk: cm.clk, s: s, errors: cm.errors}
}

// connMetrics is one Conn's recording. Safe for concurrent use.
type connMetrics struct {
	clk    clock
	s      *sendSeries
	errors *prometheus.CounterVec // curried: op, kind
}

// sent records a Send that began at t0 and ended with err.
func (cm *connMetrics) sent(t0 int64, err error) {
	cm.s.roundTrip.observe(cm.clk.now() - t0)
	if err != nil {
		cm.errors.WithLabelValues("send", errorKind(err)).Inc()
	}
}

// triggered records a Trigger that ended with err.
func (cm *connMetrics) triggered(err error) {
	if err != nil {
		cm.errors.WithLabelValues("trigger", errorKind(err)).Inc()
		return
	}
	cm.s.proxies.Add(1)
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
	{transport.ErrPeerGone, "peer_gone"},
	{transport.ErrTooLarge, "too_large"},
	{transport.ErrReplyTooLarge, "reply_too_large"},
	{transport.ErrRejected, "rejected"},
	{transport.ErrBadMessage, "bad_message"},
	{transport.ErrReplied, "replied"},
	{transport.ErrBadProxy, "bad_proxy"},
	{transport.ErrNotFound, "not_found"},
	{transport.ErrNotSupported, "not_supported"},
	{transport.ErrBadName, "bad_name"},
	{transport.ErrClosed, "closed"},
	{transport.ErrPermission, "permission"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline"},
}
