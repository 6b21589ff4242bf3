package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// Time limits. They bound hangs; the only timing the tests assert is that
// publishers are not held up by a slow subscriber, with a wide margin.
const (
	lineWait = 20 * time.Second
	exitWait = 20 * time.Second
)

// startBroker starts a broker process with args and returns it, with its
// metrics URL when it was asked for one (metrics=1).
func startBroker(t *testing.T, env []string, args ...string) (*simpltest.Proc, string) {
	t.Helper()
	p := simpltest.StartNoWait(t, "broker", env, args...)
	var url string
	if line := p.ReadLine(lineWait); strings.HasPrefix(line, "metrics ") {
		url = strings.TrimPrefix(line, "metrics ")
		p.Expect("ready", lineWait)
	} else if line != "ready" {
		t.Fatalf("broker printed %q", line)
	}
	return p, url
}

// stopProc SIGTERMs p and wants it to exit 0.
func stopProc(t testing.TB, p *simpltest.Proc) {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(exitWait); err != nil {
		t.Errorf("%v: %v", p.Cmd.Args, err)
	}
}

// attach attaches a client Channel in dir, closed when the test ends.
func attach(t testing.TB, dir, name string) *simpl.Channel {
	t.Helper()
	ch, err := simpl.Attach(name, simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// subResult is a subscriber helper's report.
type subResult struct {
	received, dropped uint64
	topics            map[string]topicResult
}

func readResult(t *testing.T, p *simpltest.Proc) subResult {
	t.Helper()
	r := subResult{topics: map[string]topicResult{}}
	line := p.Expect("result ", lineWait)
	if _, err := fmt.Sscanf(line, "result received=%d dropped=%d", &r.received, &r.dropped); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	for {
		line := p.ReadLine(lineWait)
		if line == "end" {
			break
		}
		var name string
		var tr topicResult
		if _, err := fmt.Sscanf(line, "topic %s received=%d last=%d gaps=%d", &name, &tr.received, &tr.last, &tr.gaps); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		r.topics[name] = tr
	}
	return r
}

// scrape GETs a /metrics URL and returns its series, "name{labels}" to
// value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: lineWait}).Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s %v", resp.Status, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestFanout: 3 publisher processes × 4 subscriber processes through a
// broker process. Each publisher publishes on a topic of its own and on
// one they share. Three subscribers are fast and must lose nothing; one is
// slow (50 ms a message, a queue of 8) and must lose messages without
// holding anyone up, and its drop count must be exactly what it missed.
// Every subscriber checks that each topic's seq only increases and each
// publisher's messages keep their order. Then /metrics, scraped over
// HTTP, must agree with what the processes counted.
func TestFanout(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	broker, url := startBroker(t, env, "metrics=1")

	const perTopic = 300 // messages per publisher per topic
	shared := "plant/all/temp"
	subs := []struct {
		name, pattern string
		args          []string
		topics        []string // the topics it should see
	}{
		{"FAST1", "plant/#", []string{"fast=1", "queue=4096", "batch=64"}, nil},
		{"FAST2", "plant/+/temp", []string{"fast=1", "queue=4096", "batch=7"}, nil},
		{"FAST3", "+/all/+", []string{"fast=1", "queue=4096", "mode=queue"}, []string{shared}},
		{"SLOW", "plant/#", []string{"queue=8", "batch=1", "delay=50ms"}, nil},
	}
	all := []string{"plant/p0/temp", "plant/p1/temp", "plant/p2/temp", shared}
	published := map[string]uint64{shared: 3 * perTopic}
	for _, topic := range all[:3] {
		published[topic] = perTopic
	}
	var sprocs []*simpltest.Proc
	for _, s := range subs {
		sprocs = append(sprocs, simpltest.Start(t, "sub", env, append(s.args, "name="+s.name, "pattern="+s.pattern)...))
	}
	var pprocs []*simpltest.Proc
	for i := range 3 {
		topics := fmt.Sprintf("plant/p%d/temp,%s", i, shared)
		pprocs = append(pprocs, simpltest.Start(t, "pub", env, fmt.Sprintf("name=PUB%d", i), "topics="+topics, fmt.Sprintf("n=%d", perTopic)))
	}
	for _, p := range pprocs {
		p.Signal(syscall.SIGUSR1)
	}
	// The publishers finish while the slow subscriber is far behind: at
	// 50 ms a message it would take 90 s to read the 1800 messages. The
	// bounds are wide for a loaded machine under the race detector
	// (without it, all 1800 take about 0.1 s).
	for i, p := range pprocs {
		line := p.Expect("done ", 2*time.Minute)
		var n int
		var worst, elapsed time.Duration
		var ws, es string
		if _, err := fmt.Sscanf(line, "done n=%d max=%s elapsed=%s", &n, &ws, &es); err != nil {
			t.Fatalf("publisher %d: %q: %v", i, line, err)
		}
		worst, _ = time.ParseDuration(ws)
		elapsed, _ = time.ParseDuration(es)
		t.Logf("publisher %d: %d messages in %v, slowest Publish %v", i, n, elapsed, worst)
		if worst > 10*time.Second || elapsed > 45*time.Second {
			t.Errorf("publisher %d: a Publish took %v, all took %v, while the slow subscriber lagged", i, worst, elapsed)
		}
		if err := p.Wait(exitWait); err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
	}
	cli := attach(t, dir, "CLIENT")
	ctx := simpltest.Context(t, time.Minute)
	st, err := pubsub.BrokerStats(ctx, cli, "")
	if err != nil {
		t.Fatal(err)
	}
	lagging := false
	for _, s := range st.Subscriptions {
		if s.Size == 8 && s.Dropped > 0 {
			lagging = true
		}
	}
	if !lagging {
		t.Errorf("the slow subscriber has dropped nothing when the publishers are done: %+v", st.Subscriptions)
	}

	delivered := map[string]uint64{}
	overflow := map[string]uint64{}
	for i, p := range sprocs {
		p.Signal(syscall.SIGUSR1)
		r := readResult(t, p)
		if err := p.Wait(exitWait); err != nil {
			t.Fatalf("subscriber %s: %v", subs[i].name, err)
		}
		want := subs[i].topics
		if want == nil {
			want = all
		}
		var offered, missed uint64
		for _, topic := range want {
			tr := r.topics[topic]
			offered += published[topic]
			// What it did not get of this topic: the gaps, and the tail
			// after the last seq it got.
			lost := tr.gaps + published[topic] - tr.last
			missed += lost
			overflow[topic] += lost
			delivered[topic] += tr.received
		}
		for topic := range r.topics {
			if !slices.Contains(want, topic) {
				t.Errorf("subscriber %s saw topic %s", subs[i].name, topic)
			}
		}
		t.Logf("subscriber %s: received %d, dropped %d, of %d", subs[i].name, r.received, r.dropped, offered)
		if r.received+r.dropped != offered || r.dropped != missed {
			t.Errorf("subscriber %s: received %d + dropped %d, missed %d, of %d published", subs[i].name, r.received, r.dropped, missed, offered)
		}
		if subs[i].name == "SLOW" && r.dropped == 0 {
			t.Errorf("the slow subscriber lost nothing")
		}
		if subs[i].name != "SLOW" && (r.dropped != 0 || missed != 0 || r.received != offered) {
			t.Errorf("fast subscriber %s lost messages: received %d of %d, dropped %d, missed %d", subs[i].name, r.received, offered, r.dropped, missed)
		}
	}

	got := scrape(t, url)
	for _, topic := range all {
		for name, want := range map[string]uint64{
			`simpl_pubsub_published_total{topic="%s"}`:                  published[topic],
			`simpl_pubsub_delivered_total{topic="%s"}`:                  delivered[topic],
			`simpl_pubsub_dropped_total{reason="overflow",topic="%s"}`:  overflow[topic],
			`simpl_pubsub_dropped_total{reason="closed",topic="%s"}`:    0,
			`simpl_pubsub_dropped_total{reason="conflated",topic="%s"}`: 0,
		} {
			series := fmt.Sprintf(name, topic)
			if v, ok := got[series]; !ok || v != float64(want) {
				t.Errorf("%s = %v (present %v), want %d", series, v, ok, want)
			}
		}
	}
	for series, want := range map[string]float64{
		`simpl_pubsub_subscribers{mode="queue"}`:                        0,
		`simpl_pubsub_queued_messages`:                                  0,
		`simpl_pubsub_subscriptions_ended_total{reason="unsubscribed"}`: 4,
		`simpl_pubsub_subscriptions_ended_total{reason="dead"}`:         0,
		`simpl_pubsub_topics`:                                           7, // and 3 warm-ups
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	cli.Close()
	stopProc(t, broker)
}

// stats returns the broker's view of subscription id, and whether it has
// one.
func stats(t *testing.T, ctx context.Context, ch *simpl.Channel, id uint64) (pubsub.SubscriptionInfo, bool) {
	t.Helper()
	st, err := pubsub.BrokerStats(ctx, ch, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Subscriptions {
		if s.ID == id {
			return s, true
		}
	}
	return pubsub.SubscriptionInfo{}, false
}

// waitStats polls the broker's view of subscription id (ok: it has one)
// until cond holds, failing the test after lineWait.
func waitStats(t *testing.T, ctx context.Context, ch *simpl.Channel, id uint64, what string, cond func(s pubsub.SubscriptionInfo, ok bool) bool) {
	t.Helper()
	deadline := time.Now().Add(lineWait)
	for {
		s, ok := stats(t, ctx, ch, id)
		if cond(s, ok) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription %d: not %s within %v (broker's view: %+v, present %v)", id, what, lineWait, s, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitHeld waits until the broker holds a Next of subscription id.
func waitHeld(t *testing.T, ctx context.Context, ch *simpl.Channel, id uint64) {
	t.Helper()
	waitStats(t, ctx, ch, id, "held by a waiting Next", func(s pubsub.SubscriptionInfo, ok bool) bool { return ok && s.Waiting })
}

// TestLatest: a latest-mode subscriber that does not read while 3 topics
// change 200 times each then holds exactly the last value of each, with
// every other counted as dropped; one more change comes through at once;
// a subscriber that joins later starts with the current values.
func TestLatest(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	broker, _ := startBroker(t, env)
	ctx := simpltest.Context(t, time.Minute)
	ch := attach(t, dir, "CTRL")
	sub, err := pubsub.Subscribe(ctx, ch, "", "ctl/#", pubsub.WithLatest(), pubsub.WithQueue(16))
	if err != nil {
		t.Fatal(err)
	}
	pch := attach(t, dir, "PLANT")
	pub := pubsub.NewPublisher(pch, "")
	topics := []string{"ctl/a", "ctl/b", "ctl/c"}
	const n = 200
	for i := 1; i <= n; i++ {
		for _, topic := range topics {
			seq, err := pub.Publish(ctx, topic, []byte(strconv.Itoa(i)))
			if err != nil || seq != uint64(i) {
				t.Fatalf("Publish(%s, %d) = %d, %v", topic, i, seq, err)
			}
		}
	}
	for _, topic := range topics { // oldest first, as first queued
		m, ok, err := sub.TryNext(ctx)
		if err != nil || !ok || m.Topic != topic || m.Seq != n || string(m.Data) != strconv.Itoa(n) {
			t.Fatalf("TryNext = %+v, %v, %v; want %s seq %d", m, ok, err, topic, n)
		}
	}
	if m, ok, err := sub.TryNext(ctx); ok || err != nil {
		t.Fatalf("a 4th value: %+v, %v", m, err)
	}
	if got, want := sub.Dropped(), uint64(3*(n-1)); got != want {
		t.Errorf("Dropped = %d, want %d", got, want)
	}

	// A held Next is answered when the next value comes.
	got := make(chan pubsub.Message, 1)
	go func() {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	waitHeld(t, ctx, ch, sub.ID())
	if _, err := pub.Publish(ctx, "ctl/b", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if m := <-got; m.Topic != "ctl/b" || m.Seq != n+1 || string(m.Data) != "new" {
		t.Fatalf("Next = %+v", m)
	}

	// A late subscriber starts with the current values, oldest first.
	late, err := pubsub.Subscribe(ctx, ch, "", "ctl/+", pubsub.WithLatest())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ctl/a:200", "ctl/c:200", "ctl/b:new"} {
		m, err := late.Next(ctx)
		if err != nil || m.Topic+":"+string(m.Data) != want {
			t.Fatalf("late Next = %+v, %v; want %s", m, err, want)
		}
	}
	// A queue-mode subscriber does not, unless it asks.
	q, err := pubsub.Subscribe(ctx, ch, "", "ctl/#")
	if err != nil {
		t.Fatal(err)
	}
	if m, ok, err := q.TryNext(ctx); ok || err != nil {
		t.Fatalf("a queue subscriber started with %+v, %v", m, err)
	}
	qc, err := pubsub.Subscribe(ctx, ch, "", "ctl/a", pubsub.WithCurrent(true))
	if err != nil {
		t.Fatal(err)
	}
	if m, ok, err := qc.TryNext(ctx); !ok || err != nil || string(m.Data) != "200" {
		t.Fatalf("with WithCurrent: %+v, %v, %v", m, ok, err)
	}
	for _, s := range []*pubsub.Subscription{sub, late, q, qc} {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	pub.Close()
	stopProc(t, broker)
}

// TestDeadSubscriber: subscribers SIGKILLed while messages keep coming are
// found dead and their subscriptions and queues go; round after round,
// nothing grows.
func TestDeadSubscriber(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	broker, url := startBroker(t, env, "sweep=100ms", "metrics=1")
	ctx := simpltest.Context(t, 2*time.Minute)
	cli := attach(t, dir, "CLIENT")
	pub := pubsub.NewPublisher(cli, "")
	defer pub.Close()
	keep, err := pubsub.Subscribe(ctx, cli, "", "x/#", pubsub.WithQueue(10))
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()

	const rounds, perRound = 3, 4
	for round := range rounds {
		var procs []*simpltest.Proc
		for i := range perRound {
			// A subscriber that stops reading after its first message.
			procs = append(procs, simpltest.Start(t, "sub", env, fmt.Sprintf("name=S%d_%d", round, i), "pattern=x/#", "queue=100", "delay=1h"))
		}
		for i := range 50 {
			if _, err := pub.Publish(ctx, "x/y", fmt.Appendf(nil, "TEST %d", round*50+i+1)); err != nil {
				t.Fatal(err)
			}
		}
		st, err := pubsub.BrokerStats(ctx, cli, "")
		if err != nil || len(st.Subscriptions) != perRound+1 {
			t.Fatalf("round %d: %d subscriptions, %v: %+v", round, len(st.Subscriptions), err, st)
		}
		for _, p := range procs {
			p.Signal(syscall.SIGKILL)
			p.Wait(exitWait)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err = pubsub.BrokerStats(ctx, cli, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Subscriptions) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the killed subscribers' subscriptions are still there: %+v", round, st.Subscriptions)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s := st.Subscriptions[0]; s.ID != keep.ID() || s.Queued != 10 {
			t.Fatalf("round %d: left %+v, want subscription %d with a full queue of 10", round, s, keep.ID())
		}
		// Their FIFOs were left by SIGKILL; the next attach reaps them.
	}
	got := scrape(t, url)
	for series, want := range map[string]float64{
		`simpl_pubsub_subscriptions_ended_total{reason="dead"}`: rounds * perRound,
		`simpl_pubsub_subscribers{mode="queue"}`:                1,
		`simpl_pubsub_queued_messages`:                          10,
	} {
		if v := got[series]; v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	keep.Close()
	pub.Close()
	cli.Close()
	stopProc(t, broker)
	reap(t, dir)
}

// reap removes what SIGKILLed processes left in dir.
func reap(t *testing.T, dir string) {
	t.Helper()
	r, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reap(""); err != nil {
		t.Fatal(err)
	}
}

// TestLease: a subscription whose process lives but never comes back for
// its next batch ends when its lease runs out; a held Next is no lapse.
func TestLease(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	broker, _ := startBroker(t, env, "sweep=50ms")
	ctx := simpltest.Context(t, time.Minute)
	cli := attach(t, dir, "CLIENT")
	const lease = 500 * time.Millisecond
	held, err := pubsub.Subscribe(ctx, cli, "", "b", pubsub.WithLease(lease))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := held.Next(ctx)
		done <- err
	}()
	waitHeld(t, ctx, cli, held.ID())
	// sub's lease starts after held's: the sweep that ends sub found
	// held's run out too, and must have let it be, since it waits.
	sub, err := pubsub.Subscribe(ctx, cli, "", "a", pubsub.WithLease(lease))
	if err != nil {
		t.Fatal(err)
	}
	waitStats(t, ctx, cli, sub.ID(), "ended by its lease", func(_ pubsub.SubscriptionInfo, ok bool) bool { return !ok })
	if s, ok := stats(t, ctx, cli, held.ID()); !ok || !s.Waiting {
		t.Fatalf("the held subscription after its lease ran out while it waited: %+v, present %v", s, ok)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, pubsub.ErrEnded) || errors.Is(err, simpl.ErrPeerGone) {
		t.Fatalf("Next after the lease ran out: %v, want ErrEnded", err)
	}
	pub := pubsub.NewPublisher(cli, "")
	if _, err := pub.Publish(ctx, "b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the held Next: %v", err)
	}
	sub.Close()
	held.Close()
	pub.Close()
	stopProc(t, broker)
}

// TestBrokerGone: a waiting Next hears at once that the broker died, and a
// Publisher finds the restarted broker by itself.
func TestBrokerGone(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	broker, _ := startBroker(t, env)
	ctx := simpltest.Context(t, time.Minute)
	cli := attach(t, dir, "CLIENT")
	pub := pubsub.NewPublisher(cli, "")
	defer pub.Close()
	if _, err := pub.Publish(ctx, "t", nil); err != nil {
		t.Fatal(err)
	}
	sub, err := pubsub.Subscribe(ctx, cli, "", "t")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	waitHeld(t, ctx, cli, sub.ID())
	broker.Signal(syscall.SIGKILL)
	broker.Wait(exitWait)
	select {
	case err := <-done:
		if !errors.Is(err, pubsub.ErrEnded) || !errors.Is(err, simpl.ErrPeerGone) {
			t.Fatalf("Next when the broker died: %v, want ErrEnded and ErrPeerGone", err)
		}
		onePrefix(t, "Next when the broker died", err, "subscription ended", "gone")
	case <-time.After(lineWait):
		t.Fatal("Next did not return when the broker died")
	}
	if _, err := sub.Next(ctx); !errors.Is(err, pubsub.ErrEnded) {
		t.Fatalf("Next again: %v", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("Close of an ended subscription: %v", err)
	}
	if _, err := pub.Publish(ctx, "t", nil); err == nil {
		t.Fatal("Publish with no broker succeeded")
	} else {
		onePrefix(t, "Publish with no broker", err)
	}
	broker, _ = startBroker(t, env) // reaps the dead one's FIFOs
	seq, err := pub.Publish(ctx, "t", nil)
	if err != nil || seq != 1 {
		t.Fatalf("Publish to the new broker: %d, %v; want seq 1", seq, err)
	}

	// A clean stop answers a waiting Next too.
	sub, err = pubsub.Subscribe(ctx, cli, "", "t")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	waitHeld(t, ctx, cli, sub.ID())
	stopProc(t, broker)
	if err := <-done; !errors.Is(err, pubsub.ErrEnded) || !errors.Is(err, simpl.ErrPeerGone) {
		t.Fatalf("Next when the broker stopped: %v", err)
	} else {
		onePrefix(t, "Next when the broker stopped", err, "subscription ended", "stopping")
	}
	sub.Close()
}

// onePrefix fails the test unless err's text starts with the package's
// "simpl: pubsub: " and tells neither prefix again (the project's rule,
// internal/errs), and mentions every one of want.
func onePrefix(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "simpl: pubsub: ") || strings.Count(msg, "simpl: ") != 1 || strings.Count(msg, "pubsub: ") != 1 {
		t.Errorf("%s: %q; want one \"simpl: pubsub: \" at the front, and no other", what, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: %q does not say %q", what, msg, w)
		}
	}
}

// TestErrors: what bad requests get.
func TestErrors(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	ctx := simpltest.Context(t, time.Minute)
	cli := attach(t, dir, "CLIENT")
	if _, err := pubsub.Subscribe(ctx, cli, "", "a"); !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Subscribe with no broker: %v", err)
	}
	broker, _ := startBroker(t, env)
	pub := pubsub.NewPublisher(cli, "")
	defer pub.Close()
	for _, topic := range []string{"", "a/+", "a b", "#"} {
		if _, err := pub.Publish(ctx, topic, nil); !errors.Is(err, pubsub.ErrBadTopic) {
			t.Errorf("Publish(%q): %v", topic, err)
		}
	}
	if _, err := pub.Publish(ctx, "big", make([]byte, pubsub.DefaultMaxData+1)); !errors.Is(err, simpl.ErrTooLarge) {
		t.Errorf("Publish of too much: %v", err)
	}
	for _, pattern := range []string{"", "a/#/b", "a+"} {
		if _, err := pubsub.Subscribe(ctx, cli, "", pattern); !errors.Is(err, pubsub.ErrBadTopic) {
			t.Errorf("Subscribe(%q): %v", pattern, err)
		}
	}
	if _, err := pubsub.Subscribe(ctx, cli, "", "a", pubsub.WithMode("fast")); err == nil {
		t.Error("Subscribe with mode fast succeeded")
	}
	sub, err := pubsub.Subscribe(ctx, cli, "", "a")
	if err != nil {
		t.Fatal(err)
	}
	// Close ends a Next waiting in another goroutine.
	done := make(chan error, 1)
	go func() {
		_, err := sub.Next(ctx)
		done <- err
	}()
	waitHeld(t, ctx, cli, sub.ID())
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, simpl.ErrClosed) {
		t.Fatalf("Next during Close: %v", err)
	}
	if _, err := sub.Next(ctx); !errors.Is(err, simpl.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	// A Next given up loses nothing: the batch comes again.
	sub, err = pubsub.Subscribe(ctx, cli, "", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = sub.Next(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing published: %v", err)
	}
	if _, err := pub.Publish(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Data) != "1" || m.Seq != 1 {
		t.Fatalf("Next after a given-up one: %+v, %v", m, err)
	}
	stopProc(t, broker)
}
