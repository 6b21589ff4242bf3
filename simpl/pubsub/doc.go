// Package pubsub is publish/subscribe over simpl: a broker process holds
// topics; publishers Send it messages; subscribers Send it "next" and the
// broker answers when a message is there. The broker never waits for a
// subscriber.
//
//	// the broker (or run fcbroker)
//	ch, _ := simpl.Attach(pubsub.DefaultBroker)
//	err := pubsub.Serve(ctx, ch)
//
//	// a publisher
//	pub := pubsub.NewPublisher(ch, "")
//	seq, err := pub.Publish(ctx, "plant/boiler/temp", []byte("71.5"))
//
//	// a subscriber
//	sub, err := pubsub.Subscribe(ctx, ch, "", "plant/+/temp", pubsub.WithQueue(256))
//	defer sub.Close()
//	for {
//		m, err := sub.Next(ctx)   // m.Topic, m.Seq, m.Data, m.Time
//		...
//	}
//
// # Topics and patterns
//
// A topic is 1 to 256 bytes of UTF-8 in levels separated by '/', such as
// "plant/boiler/temp", without whitespace, control characters, '+' or '#'.
// Patterns are MQTT's: a level "+" matches any one level, a last level "#"
// any number of levels, none included ("plant/#" matches "plant",
// "plant/boiler" and "plant/boiler/temp"). The broker finds the
// subscriptions of a topic by walking a tree of patterns, level by level,
// not by testing each pattern.
//
// # Order, queues and drops
//
// Each topic numbers its messages from 1 (Seq). A publish is queued for
// every matching subscription, under one lock, before the publisher's
// Send is answered; so every subscriber sees each topic's messages in
// publish order, and a publisher's messages in the order it sent them.
// Each subscription has a bounded queue (WithQueue). When it is full the
// oldest message is dropped: the broker never blocks, nor waits for a
// slow subscriber. Drops are counted per subscription (Dropped, exact:
// every message published on a matching topic is delivered or counted)
// and per topic (simpl_pubsub_dropped_total).
//
// In Latest mode a queue holds at most one message per topic: a newer one
// replaces the queued one in its place (conflation, counted as dropped),
// so a control loop that reads slowly gets the current value of each
// topic that changed, never a backlog. Latest subscriptions start with the
// newest message of every matching topic (WithCurrent), which the broker
// keeps within a byte budget (WithMaxRetained).
//
// # Next, QNX style
//
// A subscriber's Next is a Send that the broker holds (a deferred reply:
// no thread is held) until a message is queued, then answers with a batch
// of up to WithBatch messages and the subscription's drop count. The
// subscriber is blocked only on its own Send; the broker's reply does not
// wait for it. Each batch is numbered and kept until the next Next
// acknowledges it, so a Next given up (a context that ended, a reply lost
// on the way) loses nothing: the batch comes again.
//
// # Subscribers that go away
//
// A subscription belongs to the process that made it: a Next or an
// Unsubscribe from any other process, on this host or another, is refused
// (ErrEnded). The broker ends it
// when that process dies (checked every WithSweep, and at once when a
// reply to it fails) or when no Next comes within its lease (WithLease;
// one minute unless the broker says otherwise with WithDefaultLease); its
// queue goes with it. A subscriber on another host, whose requests come
// through this host's gateway, is followed by its host's names instead
// (names across hosts): its subscription ends within 2 s of its process,
// or its host's gateway, going (see remote.go and docs/pubsub.md). Topics and
// subscriptions are bounded (WithMaxTopics, WithMaxSubscriptions), as are
// each queue, in messages and in bytes (WithMaxQueue, WithMaxQueueBytes),
// and the bytes every queue holds together (WithMaxQueuedBytes), so
// nothing grows without bound.
//
// # A broker that goes away
//
// A subscription lives in one broker instance. When the broker exits or
// dies, a waiting Next returns at once with an error matching ErrEnded
// and simpl.ErrPeerGone; subscribe again once a broker is back (sequence
// numbers start again from 1 in the new instance). A Publisher finds a
// restarted broker by itself on its next Publish; the Publish that was in
// flight fails with simpl.ErrPeerGone and is not sent again.
//
// # Metrics
//
// A Broker counts, per topic, the messages published, delivered and
// dropped (by reason), and keeps gauges of subscribers, queued messages
// and topics: Counts reads them, and package pubsubprom serves them to
// Prometheus (simpl_pubsub_*), so that programs that only publish or
// subscribe do not link Prometheus. Only the first WithMetricTopics topics
// get counters of their own; the rest are added up under OtherTopics
// ("#other"), so a scrape stays bounded whatever topics publishers make
// up.
//
// The wire protocol (typed messages) is described in docs/pubsub.md.
package pubsub
