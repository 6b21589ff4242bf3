package pubsub_test

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// BenchmarkPubSub: publishers and subscribers in this process, the broker
// in another. b.N messages are published in all (each stamped with the
// time it was published), every subscriber receives all of them, and the
// benchmark reports the broker's rates (messages published and delivered
// per second) and the publish-to-delivery latency (median and 99th
// percentile, in microseconds, over every delivery). Subscribers' queues
// are large enough to drop nothing at these rates; drops, if any, are
// reported too. "paced" publishes the next message only once the last one
// has arrived: the latency of an idle broker; the others publish as fast
// as they can: the rates, and the latency under that load.
//
//	go test -run '^$' -bench BenchmarkPubSub -benchtime 20000x ./simpl/pubsub
func BenchmarkPubSub(b *testing.B) {
	b.Run("paced", func(b *testing.B) { benchPubSub(b, 1, 1, true) })
	for _, c := range []struct{ pubs, subs int }{{1, 1}, {1, 4}, {4, 4}} {
		b.Run(fmt.Sprintf("pubs=%d/subs=%d", c.pubs, c.subs), func(b *testing.B) {
			benchPubSub(b, c.pubs, c.subs, false)
		})
	}
}

func benchPubSub(b *testing.B, pubs, subs int, paced bool) {
	dir := simpltest.Dir(b)
	broker := simpltest.Start(b, "broker", []string{"FIFO_PATH=" + dir})
	ctx := simpltest.Context(b, 5*time.Minute)

	var subscriptions []*pubsub.Subscription
	for i := range subs {
		ch := attach(b, dir, fmt.Sprintf("SUB%d", i))
		s, err := pubsub.Subscribe(ctx, ch, "", "bench/#", pubsub.WithQueue(pubsub.DefaultMaxQueue))
		if err != nil {
			b.Fatal(err)
		}
		subscriptions = append(subscriptions, s)
	}
	var publishers []*pubsub.Publisher
	for i := range pubs {
		p := pubsub.NewPublisher(attach(b, dir, fmt.Sprintf("PUB%d", i)), "")
		if _, err := p.Publish(ctx, "warmup", nil); err != nil {
			b.Fatal(err)
		}
		publishers = append(publishers, p)
	}
	total := b.N
	lat := make([][]time.Duration, subs)
	arrived := make(chan struct{}, 1) // paced: the last message arrived
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, s := range subscriptions {
		wg.Go(func() {
			l := make([]time.Duration, 0, total)
			for len(l)+int(s.Dropped()) < total {
				m, err := s.Next(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				l = append(l, time.Since(time.Unix(0, int64(binary.LittleEndian.Uint64(m.Data)))))
				if paced {
					arrived <- struct{}{}
				}
			}
			lat[i] = l
		})
	}
	var pwg sync.WaitGroup
	for i, p := range publishers {
		n := total / pubs
		if i < total%pubs {
			n++
		}
		topic := fmt.Sprintf("bench/%d", i)
		pwg.Go(func() {
			data := make([]byte, 8)
			for range n {
				binary.LittleEndian.PutUint64(data, uint64(time.Now().UnixNano()))
				if _, err := p.Publish(ctx, topic, data); err != nil {
					b.Error(err)
					return
				}
				if paced {
					<-arrived
				}
			}
		})
	}
	pwg.Wait()
	published := time.Since(start)
	wg.Wait()
	delivered := time.Since(start)
	b.StopTimer()

	var all []time.Duration
	var dropped uint64
	for i, s := range subscriptions {
		all = append(all, lat[i]...)
		dropped += s.Dropped()
		s.Close()
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
	b.ReportMetric(float64(total)/published.Seconds(), "pub/s")
	b.ReportMetric(float64(len(all))/delivered.Seconds(), "deliv/s")
	b.ReportMetric(float64(dropped), "dropped")
	for _, p := range publishers {
		p.Close()
	}
	stopProc(b, broker)
}
