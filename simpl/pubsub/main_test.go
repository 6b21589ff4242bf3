package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/simpl/pubsub/pubsubprom"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func TestMain(m *testing.M) {
	simpltest.Main(m, map[string]simpltest.Role{
		"broker": roleBroker,
		"pub":    rolePub,
		"sub":    roleSub,
	}, simpltest.WithLifetime(3*time.Minute))
}

// opts parses helper arguments of the form key=value.
func opts(args []string) map[string]string {
	m := make(map[string]string)
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func durationArg(o map[string]string, k string) time.Duration {
	d, _ := time.ParseDuration(o[k])
	return d
}

func intArg(o map[string]string, k string) int {
	n, _ := strconv.Atoi(o[k])
	return n
}

// roleBroker runs a broker until SIGTERM. Arguments: name=NAME (default
// DefaultBroker), sweep=D, lease=D, metrics=1 (serve /metrics on a free
// port of 127.0.0.1 and print "metrics URL" before "ready").
func roleBroker(args []string) error {
	o := opts(args)
	name := o["name"]
	if name == "" {
		name = pubsub.DefaultBroker
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var bo []pubsub.Option
	if d := durationArg(o, "sweep"); d > 0 {
		bo = append(bo, pubsub.WithSweep(d))
	}
	if d := durationArg(o, "lease"); d > 0 {
		bo = append(bo, pubsub.WithDefaultLease(d))
	}
	b := pubsub.NewBroker(bo...)
	ch, err := simpl.Attach(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	if o["metrics"] != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(pubsubprom.NewCollector(b))
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Printf("metrics http://%s/metrics\n", ln.Addr())
	}
	simpltest.Ready()
	if err := b.Serve(ctx, ch); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// rolePub publishes n=N messages on each of topics=T1,T2,... (round
// robin), each "NAME COUNTER" (COUNTER from 1 per topic). It prints ready,
// waits for SIGUSR1, publishes, and prints "done n=TOTAL max=MAXLATENCY
// elapsed=D".
func rolePub(args []string) error {
	o := opts(args)
	name, topics, n := o["name"], strings.Split(o["topics"], ","), intArg(o, "n")
	start := make(chan os.Signal, 1)
	signal.Notify(start, syscall.SIGUSR1)
	ch, err := simpl.Attach(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	pub := pubsub.NewPublisher(ch, o["broker"])
	defer pub.Close()
	ctx := context.Background()
	if _, err := pub.Publish(ctx, "warmup/"+name, nil); err != nil { // locate the broker now
		return err
	}
	simpltest.Ready()
	<-start
	var worst time.Duration
	t0 := time.Now()
	for i := 1; i <= n; i++ {
		for _, topic := range topics {
			t := time.Now()
			if _, err := pub.Publish(ctx, topic, fmt.Appendf(nil, "%s %d", name, i)); err != nil {
				return err
			}
			worst = max(worst, time.Since(t))
		}
	}
	fmt.Printf("done n=%d max=%v elapsed=%v\n", n*len(topics), worst, time.Since(t0))
	return nil
}

// topicResult is what a subscriber saw of one topic.
type topicResult struct {
	received uint64
	last     uint64 // the last seq received
	gaps     uint64 // seqs skipped between those received
}

// roleSub subscribes to pattern=P (queue=N, mode=queue|latest, batch=N)
// and receives, waiting delay=D after each message, checking that each
// topic's seq only increases and that each publisher's counter in a topic
// only increases; fast=1 also wants no gap at all. On SIGUSR1 (the
// publishers are done) it takes what is left without waiting and prints
// "result received=R dropped=D", a line "topic T received=R last=S
// gaps=G" per topic, and "end"; then it unsubscribes and exits.
func roleSub(args []string) error {
	o := opts(args)
	finish := make(chan os.Signal, 1)
	signal.Notify(finish, syscall.SIGUSR1)
	ch, err := simpl.Attach(o["name"])
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var so []pubsub.SubscribeOption
	if n := intArg(o, "queue"); n > 0 {
		so = append(so, pubsub.WithQueue(n))
	}
	if o["mode"] != "" {
		so = append(so, pubsub.WithMode(pubsub.Mode(o["mode"])))
	}
	if n := intArg(o, "batch"); n > 0 {
		so = append(so, pubsub.WithBatch(n))
	}
	sub, err := pubsub.Subscribe(ctx, ch, o["broker"], o["pattern"], so...)
	if err != nil {
		return err
	}
	defer sub.Close()
	delay, fast := durationArg(o, "delay"), o["fast"] == "1"
	go func() {
		<-finish
		cancel()
	}()
	seen := map[string]*topicResult{}
	counters := map[string]int{} // "topic publisher" → last counter
	take := func(m pubsub.Message) error {
		r := seen[m.Topic]
		if r == nil {
			r = &topicResult{}
			seen[m.Topic] = r
		}
		if m.Seq <= r.last {
			return fmt.Errorf("topic %s: seq %d after %d", m.Topic, m.Seq, r.last)
		}
		if fast && m.Seq != r.last+1 {
			return fmt.Errorf("topic %s: seq %d after %d, and this subscriber must lose nothing", m.Topic, m.Seq, r.last)
		}
		r.gaps += m.Seq - r.last - 1
		r.last = m.Seq
		r.received++
		from, count, ok := strings.Cut(string(m.Data), " ")
		n, err := strconv.Atoi(count)
		if !ok || err != nil {
			return fmt.Errorf("topic %s seq %d: data %q", m.Topic, m.Seq, m.Data)
		}
		k := m.Topic + " " + from
		if n <= counters[k] {
			return fmt.Errorf("topic %s: %s's message %d after its %d", m.Topic, from, n, counters[k])
		}
		counters[k] = n
		return nil
	}
	simpltest.Ready()
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if err := take(m); err != nil {
			return err
		}
		if delay > 0 {
			time.Sleep(delay)
		}
	}
	// The publishers are done: everything is queued or dropped by now.
	for {
		m, ok, err := sub.TryNext(context.Background())
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := take(m); err != nil {
			return err
		}
	}
	var total uint64
	for _, r := range seen {
		total += r.received
	}
	if fast && sub.Dropped() != 0 {
		return fmt.Errorf("a fast subscriber lost %d", sub.Dropped())
	}
	fmt.Printf("result received=%d dropped=%d\n", total, sub.Dropped())
	var names []string
	for t := range seen {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		r := seen[t]
		fmt.Printf("topic %s received=%d last=%d gaps=%d\n", t, r.received, r.last, r.gaps)
	}
	fmt.Println("end")
	if err := sub.Close(); err != nil && !errors.Is(err, simpl.ErrClosed) {
		return err
	}
	return nil
}
