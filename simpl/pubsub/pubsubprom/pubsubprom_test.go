package pubsubprom_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/simpl/pubsub/pubsubprom"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector: a broker with two topics of its own in its metrics sees
// five messages on four topics, a subscriber whose queue of two overflows
// and which then unsubscribes; every series says so, the topics past
// the second added up under #other.
func TestCollector(t *testing.T) {
	dir := simpltest.Dir(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := pubsub.NewBroker(pubsub.WithMetricTopics(2))
	c := pubsubprom.NewCollector(b)
	if err := prometheus.NewPedanticRegistry().Register(c); err != nil {
		t.Fatal(err)
	}
	bch, err := simpl.Attach("BROKER", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx, bch) }()
	defer bch.Close()
	defer func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v", err)
		}
	}()
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	sub, err := pubsub.Subscribe(ctx, cli, "BROKER", "#", pubsub.WithQueue(2))
	if err != nil {
		t.Fatal(err)
	}
	pub := pubsub.NewPublisher(cli, "BROKER")
	defer pub.Close()
	for _, topic := range []string{"a", "a", "b", "c", "d"} {
		if _, err := pub.Publish(ctx, topic, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	compare := func(want string) {
		t.Helper()
		if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
			t.Error(err)
		}
	}
	const head = `
# HELP simpl_pubsub_delivered_total Messages delivered to subscribers (counted when the subscriber acknowledges the batch with its next Next or its Unsubscribe), by topic.
# TYPE simpl_pubsub_delivered_total counter
simpl_pubsub_delivered_total{topic="#other"} 0
simpl_pubsub_delivered_total{topic="a"} 0
simpl_pubsub_delivered_total{topic="b"} 0
# HELP simpl_pubsub_published_total Messages published, by topic.
# TYPE simpl_pubsub_published_total counter
simpl_pubsub_published_total{topic="#other"} 2
simpl_pubsub_published_total{topic="a"} 2
simpl_pubsub_published_total{topic="b"} 1
# HELP simpl_pubsub_retained_bytes Bytes of data kept as the newest message of each topic.
# TYPE simpl_pubsub_retained_bytes gauge
simpl_pubsub_retained_bytes 4
# HELP simpl_pubsub_topics Topics the broker knows (published to at least once).
# TYPE simpl_pubsub_topics gauge
simpl_pubsub_topics 4
# HELP simpl_pubsub_dropped_total Messages queued for a subscriber that it will never get, by topic and reason: overflow (a full queue dropped its oldest), conflated (replaced by a newer one in latest mode), too_large (larger than the subscriber's reply buffer), closed (still queued or unacknowledged when the subscription ended).
# TYPE simpl_pubsub_dropped_total counter
simpl_pubsub_dropped_total{reason="conflated",topic="#other"} 0
simpl_pubsub_dropped_total{reason="conflated",topic="a"} 0
simpl_pubsub_dropped_total{reason="conflated",topic="b"} 0
simpl_pubsub_dropped_total{reason="overflow",topic="#other"} 0
simpl_pubsub_dropped_total{reason="overflow",topic="a"} 2
simpl_pubsub_dropped_total{reason="overflow",topic="b"} 1
simpl_pubsub_dropped_total{reason="too_large",topic="#other"} 0
simpl_pubsub_dropped_total{reason="too_large",topic="a"} 0
simpl_pubsub_dropped_total{reason="too_large",topic="b"} 0
`
	// Queued: c and d, for the one subscriber.
	compare(head + `simpl_pubsub_dropped_total{reason="closed",topic="#other"} 0
simpl_pubsub_dropped_total{reason="closed",topic="a"} 0
simpl_pubsub_dropped_total{reason="closed",topic="b"} 0
# HELP simpl_pubsub_queued_bytes Bytes of data in subscribers' queues, a message counted in each queue it is in.
# TYPE simpl_pubsub_queued_bytes gauge
simpl_pubsub_queued_bytes 2
# HELP simpl_pubsub_queued_messages Messages waiting in subscribers' queues or sent and not yet acknowledged.
# TYPE simpl_pubsub_queued_messages gauge
simpl_pubsub_queued_messages 2
# HELP simpl_pubsub_subscribers Open subscriptions, by mode (queue or latest).
# TYPE simpl_pubsub_subscribers gauge
simpl_pubsub_subscribers{mode="latest"} 0
simpl_pubsub_subscribers{mode="queue"} 1
# HELP simpl_pubsub_subscriptions_ended_total Subscriptions ended, by reason: unsubscribed, dead (the subscriber's process is gone) or lease (no Next within the lease).
# TYPE simpl_pubsub_subscriptions_ended_total counter
simpl_pubsub_subscriptions_ended_total{reason="dead"} 0
simpl_pubsub_subscriptions_ended_total{reason="lease"} 0
simpl_pubsub_subscriptions_ended_total{reason="unsubscribed"} 0
`)
	// Unsubscribing drops what was still queued.
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	compare(head + `simpl_pubsub_dropped_total{reason="closed",topic="#other"} 2
simpl_pubsub_dropped_total{reason="closed",topic="a"} 0
simpl_pubsub_dropped_total{reason="closed",topic="b"} 0
# HELP simpl_pubsub_queued_bytes Bytes of data in subscribers' queues, a message counted in each queue it is in.
# TYPE simpl_pubsub_queued_bytes gauge
simpl_pubsub_queued_bytes 0
# HELP simpl_pubsub_queued_messages Messages waiting in subscribers' queues or sent and not yet acknowledged.
# TYPE simpl_pubsub_queued_messages gauge
simpl_pubsub_queued_messages 0
# HELP simpl_pubsub_subscribers Open subscriptions, by mode (queue or latest).
# TYPE simpl_pubsub_subscribers gauge
simpl_pubsub_subscribers{mode="latest"} 0
simpl_pubsub_subscribers{mode="queue"} 0
# HELP simpl_pubsub_subscriptions_ended_total Subscriptions ended, by reason: unsubscribed, dead (the subscriber's process is gone) or lease (no Next within the lease).
# TYPE simpl_pubsub_subscriptions_ended_total counter
simpl_pubsub_subscriptions_ended_total{reason="dead"} 0
simpl_pubsub_subscriptions_ended_total{reason="lease"} 0
simpl_pubsub_subscriptions_ended_total{reason="unsubscribed"} 1
`)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
