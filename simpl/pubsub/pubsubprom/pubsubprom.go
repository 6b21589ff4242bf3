// Package pubsubprom serves a pubsub.Broker's counters (Broker.Counts) as
// Prometheus metrics, so that package pubsub itself links no Prometheus.
//
//	b := pubsub.NewBroker()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(pubsubprom.NewCollector(b))
//
// The metrics are listed in docs/pubsub.md: simpl_pubsub_published_total,
// simpl_pubsub_delivered_total and simpl_pubsub_dropped_total by topic
// (and reason), simpl_pubsub_subscribers by mode,
// simpl_pubsub_queued_messages, simpl_pubsub_topics,
// simpl_pubsub_retained_bytes and simpl_pubsub_subscriptions_ended_total
// by reason.
package pubsubprom

import (
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPublished = prometheus.NewDesc("simpl_pubsub_published_total",
		"Messages published, by topic.", []string{"topic"}, nil)
	descDelivered = prometheus.NewDesc("simpl_pubsub_delivered_total",
		"Messages delivered to subscribers (counted when the subscriber acknowledges the batch with its next Next or its Unsubscribe), by topic.",
		[]string{"topic"}, nil)
	descDropped = prometheus.NewDesc("simpl_pubsub_dropped_total",
		"Messages queued for a subscriber that it will never get, by topic and reason: overflow (a full queue dropped its oldest), conflated (replaced by a newer one in latest mode), too_large (larger than the subscriber's reply buffer), closed (still queued or unacknowledged when the subscription ended).",
		[]string{"topic", "reason"}, nil)
	descSubscribers = prometheus.NewDesc("simpl_pubsub_subscribers",
		"Open subscriptions, by mode (queue or latest).", []string{"mode"}, nil)
	descQueued = prometheus.NewDesc("simpl_pubsub_queued_messages",
		"Messages waiting in subscribers' queues or sent and not yet acknowledged.", nil, nil)
	descTopics = prometheus.NewDesc("simpl_pubsub_topics",
		"Topics the broker knows (published to at least once).", nil, nil)
	descRetained = prometheus.NewDesc("simpl_pubsub_retained_bytes",
		"Bytes of data kept as the newest message of each topic.", nil, nil)
	descQueuedBytes = prometheus.NewDesc("simpl_pubsub_queued_bytes",
		"Bytes of data in subscribers' queues, a message counted in each queue it is in.", nil, nil)
	descEnded = prometheus.NewDesc("simpl_pubsub_subscriptions_ended_total",
		"Subscriptions ended, by reason: unsubscribed, dead (the subscriber's process is gone) or lease (no Next within the lease).",
		[]string{"reason"}, nil)
)

// Collector is a prometheus.Collector of one Broker's metrics. Nothing is
// registered by default: register it on a registry of your own
// (prometheus.NewRegistry); to tell two brokers apart in one registry,
// wrap it (prometheus.WrapRegistererWith). Safe for concurrent use.
type Collector struct{ b *pubsub.Broker }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of b's metrics.
func NewCollector(b *pubsub.Broker) *Collector { return &Collector{b} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPublished, descDelivered, descDropped, descSubscribers, descQueued, descTopics, descRetained, descQueuedBytes, descEnded} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Broker.Counts per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Counts()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range s.Topics {
		counter(descPublished, t.Published, t.Topic)
		counter(descDelivered, t.Delivered, t.Topic)
		counter(descDropped, t.Dropped.Overflow, t.Topic, "overflow")
		counter(descDropped, t.Dropped.Conflated, t.Topic, "conflated")
		counter(descDropped, t.Dropped.TooLarge, t.Topic, "too_large")
		counter(descDropped, t.Dropped.Closed, t.Topic, "closed")
	}
	gauge(descSubscribers, float64(s.QueueSubscribers), string(pubsub.Queue))
	gauge(descSubscribers, float64(s.LatestSubscribers), string(pubsub.Latest))
	gauge(descQueued, float64(s.Queued))
	gauge(descTopics, float64(s.KnownTopics))
	gauge(descRetained, float64(s.RetainedBytes))
	gauge(descQueuedBytes, float64(s.QueuedBytes))
	counter(descEnded, s.Ended.Unsubscribed, "unsubscribed")
	counter(descEnded, s.Ended.Dead, "dead")
	counter(descEnded, s.Ended.Lease, "lease")
}
