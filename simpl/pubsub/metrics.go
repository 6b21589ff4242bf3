package pubsub

import "github.com/prometheus/client_golang/prometheus"

// OtherTopics is the value of the label topic under which the metrics add
// up the topics past WithMetricTopics. No topic contains '#'.
const OtherTopics = "#other"

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
	descEnded = prometheus.NewDesc("simpl_pubsub_subscriptions_ended_total",
		"Subscriptions ended, by reason: unsubscribed, dead (the subscriber's process is gone) or lease (no Next within the lease).",
		[]string{"reason"}, nil)
)

// Describe sends the descriptions of the broker's metrics: with the label
// topic (at most WithMetricTopics values, plus OtherTopics)
// simpl_pubsub_published_total, simpl_pubsub_delivered_total and
// simpl_pubsub_dropped_total (and reason); simpl_pubsub_subscribers (by
// mode), simpl_pubsub_queued_messages, simpl_pubsub_topics,
// simpl_pubsub_retained_bytes and simpl_pubsub_subscriptions_ended_total
// (by reason). Nothing is registered by default: register the Broker on a
// registry of your own (prometheus.NewRegistry); to tell two brokers apart
// in one registry, wrap it (prometheus.WrapRegistererWith).
func (b *Broker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPublished, descDelivered, descDropped, descSubscribers, descQueued, descTopics, descRetained, descEnded} {
		ch <- d
	}
}

// counts is what the metrics show of a topic.
type counts struct {
	published, delivered uint64
	dropped              [numDropReasons]uint64
}

// Collect sends the broker's metrics. The counters are read under the
// broker's lock, in one pass over the topics.
func (b *Broker) Collect(ch chan<- prometheus.Metric) {
	type named struct {
		name string
		c    counts
	}
	b.mu.Lock()
	n := min(len(b.order), b.o.metricTopics)
	per := make([]named, n, n+1)
	for i, t := range b.order[:n] {
		per[i] = named{t.name, counts{t.published, t.delivered, t.dropped}}
	}
	if len(b.order) > n {
		other := named{name: OtherTopics}
		for _, t := range b.order[n:] {
			other.c.published += t.published
			other.c.delivered += t.delivered
			for r := range other.c.dropped {
				other.c.dropped[r] += t.dropped[r]
			}
		}
		per = append(per, other)
	}
	var queued, modeQueue, modeLatest int
	for _, s := range b.subs {
		queued += s.q.n + len(s.flight)
		if s.mode == Latest {
			modeLatest++
		} else {
			modeQueue++
		}
	}
	topics, retained, ended := len(b.topics), b.retBytes, b.ended
	b.mu.Unlock()

	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range per {
		counter(descPublished, t.c.published, t.name)
		counter(descDelivered, t.c.delivered, t.name)
		for r, v := range t.c.dropped {
			counter(descDropped, v, t.name, dropNames[r])
		}
	}
	gauge(descSubscribers, float64(modeQueue), string(Queue))
	gauge(descSubscribers, float64(modeLatest), string(Latest))
	gauge(descQueued, float64(queued))
	gauge(descTopics, float64(topics))
	gauge(descRetained, float64(retained))
	for r, v := range ended {
		counter(descEnded, v, endNames[r])
	}
}
