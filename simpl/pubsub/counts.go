package pubsub

// OtherTopics is the name under which Counts adds up the topics past
// WithMetricTopics. No topic contains '#'.
const OtherTopics = "#other"

// Counts is a snapshot of a Broker's counters: what its metrics show
// (package pubsubprom serves them to Prometheus as simpl_pubsub_*; see
// docs/pubsub.md).
type Counts struct {
	// Topics are the first WithMetricTopics topics published to, in
	// that order, and then, when there are more, one named OtherTopics
	// that adds up the rest: a snapshot stays bounded whatever topics
	// publishers make up.
	Topics []TopicCounts

	// QueueSubscribers and LatestSubscribers count the open
	// subscriptions by mode.
	QueueSubscribers, LatestSubscribers int

	// Queued counts the messages waiting in subscribers' queues or
	// sent and not yet acknowledged.
	Queued int

	// KnownTopics counts the topics published to at least once.
	KnownTopics int

	// RetainedBytes is the size of the data kept as the newest message
	// of each topic.
	RetainedBytes int64

	// QueuedBytes is the size of the data in subscribers' queues or
	// sent and not yet acknowledged, a message counted in each queue it
	// is in (what WithMaxQueuedBytes bounds).
	QueuedBytes int64

	// Ended counts the subscriptions ended, by reason.
	Ended Ended
}

// TopicCounts are the counters of one topic (or of OtherTopics).
type TopicCounts struct {
	Topic string
	// Published counts the messages published to the topic.
	Published uint64
	// Delivered counts the messages delivered to subscribers, when the
	// subscriber acknowledges the batch with its next Next or its
	// Unsubscribe.
	Delivered uint64
	// Dropped counts the messages queued for a subscriber that it will
	// never get, by reason.
	Dropped Drops
}

// Drops counts messages a subscriber will never get, by reason.
type Drops struct {
	Overflow  uint64 // a full queue let go of its oldest (full of messages or of bytes)
	Conflated uint64 // replaced by a newer one of its topic (latest mode)
	TooLarge  uint64 // larger than the subscriber's reply buffer
	Closed    uint64 // still queued or unacknowledged when the subscription ended
}

// Ended counts subscriptions ended, by reason.
type Ended struct {
	Unsubscribed uint64
	Dead         uint64 // the subscriber's process is gone
	Lease        uint64 // no Next within the lease
}

// Counts is a snapshot of the broker's counters, read under its lock in
// one pass over the topics.
func (b *Broker) Counts() Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.order), b.o.metricTopics)
	s := Counts{Topics: make([]TopicCounts, n, n+1)}
	for i, t := range b.order[:n] {
		s.Topics[i] = t.counts()
	}
	if len(b.order) > n {
		other := TopicCounts{Topic: OtherTopics}
		for _, t := range b.order[n:] {
			ts := t.counts()
			other.Published += ts.Published
			other.Delivered += ts.Delivered
			other.Dropped.Overflow += ts.Dropped.Overflow
			other.Dropped.Conflated += ts.Dropped.Conflated
			other.Dropped.TooLarge += ts.Dropped.TooLarge
			other.Dropped.Closed += ts.Dropped.Closed
		}
		s.Topics = append(s.Topics, other)
	}
	for _, sub := range b.subs {
		s.Queued += sub.q.n + len(sub.flight)
		if sub.mode == Latest {
			s.LatestSubscribers++
		} else {
			s.QueueSubscribers++
		}
	}
	s.KnownTopics, s.RetainedBytes, s.QueuedBytes = len(b.topics), b.retBytes, b.queued
	s.Ended = Ended{Unsubscribed: b.ended[endUnsubscribed], Dead: b.ended[endDead], Lease: b.ended[endLease]}
	return s
}

func (t *topic) counts() TopicCounts {
	return TopicCounts{Topic: t.name, Published: t.published, Delivered: t.delivered, Dropped: Drops{
		Overflow:  t.dropped[dropOverflow],
		Conflated: t.dropped[dropConflated],
		TooLarge:  t.dropped[dropTooLarge],
		Closed:    t.dropped[dropClosed],
	}}
}
