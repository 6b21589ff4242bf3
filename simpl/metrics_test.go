package simpl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simplprom"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var metricsRoles = map[string]simpltest.Role{
	"mclient": roleMetricsClient,
	"mecho":   roleMetricsEcho,
}

// metricsTimeout bounds the wait for counters to reach their expected
// values: the receiver counts an answer just after its sender wakes, so a
// scrape may briefly lag behind what the sender saw.
const metricsTimeout = 10 * time.Second

// What roleMetricsClient sends, and what each Send must return.
var metricsPlan = func() (plan []struct {
	req      []byte
	maxReply int
	want     error
}) {
	add := func(req []byte, maxReply int, want error) {
		plan = append(plan, struct {
			req      []byte
			maxReply int
			want     error
		}{req, maxReply, want})
	}
	for i := 1; i <= 5; i++ {
		add(append([]byte{opEcho}, pattern(10*i)...), 64, nil) // 11 to 51 bytes
	}
	for range 3 {
		add([]byte{opError}, 16, simpl.ErrRejected)
	}
	for range 2 {
		add(sizedReq(100, 5), 10, simpl.ErrReplyTooLarge) // a 100-byte reply, 10 accepted
	}
	return plan
}()

// newMetrics is simplprom.New(opts...), failing t if it fails.
func newMetrics(t testing.TB, opts ...simplprom.Option) *simplprom.Metrics {
	t.Helper()
	m, err := simplprom.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serveMetrics registers m on a registry of its own and serves it over
// HTTP on 127.0.0.1 until the test (or helper) ends; it returns the URL.
func serveMetrics(m *simplprom.Metrics) (url string, stop func(), err error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(m); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/metrics", func() { srv.Close() }, nil
}

// roleMetricsClient NAME TO: with metrics served over HTTP (it prints
// "metrics URL"), send metricsPlan and one proxy (7) to TO, checking each
// outcome; print "sent", then wait for SIGTERM and detach.
func roleMetricsClient(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	m, err := simplprom.New()
	if err != nil {
		return err
	}
	url, closeHTTP, err := serveMetrics(m)
	if err != nil {
		return err
	}
	defer closeHTTP()
	ch, err := simpl.Attach(args[0], simpl.WithObserver(m))
	if err != nil {
		return err
	}
	defer ch.Close()
	to, err := ch.Locate(ctx, args[1])
	if err != nil {
		return err
	}
	fmt.Println("metrics", url)
	for i, p := range metricsPlan {
		reply := make([]byte, p.maxReply)
		if _, err := to.Send(ctx, p.req, reply); !errors.Is(err, p.want) || (p.want == nil && err != nil) {
			return fmt.Errorf("send %d: %v, want %v", i, err, p.want)
		}
	}
	if err := to.Trigger(7); err != nil {
		return err
	}
	fmt.Println("sent")
	<-ctx.Done()
	return nil
}

// roleMetricsEcho NAME [nospin]: roleEcho with metrics on (registered,
// not served).
func roleMetricsEcho(args []string) error {
	m, err := simplprom.New()
	if err != nil {
		return err
	}
	if err := prometheus.NewRegistry().Register(m); err != nil {
		return err
	}
	ch, err := simpl.Attach(args[0], simpl.WithObserver(m), simpl.WithSpin(!slices.Contains(args[1:], "nospin")))
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	ctx := context.Background()
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			return err
		}
		if msg.Proxy() == 0 {
			msg.Reply(msg.Data())
		}
	}
}

// TestMetricsAcrossProcesses: a receiver in this process with its metrics
// served over HTTP, and a sender in a helper process with its own; both
// scraped over HTTP, every counter must move by exactly what was sent.
func TestMetricsAcrossProcesses(t *testing.T) {
	dir := simpltest.Dir(t)
	m := newMetrics(t)
	url, stopHTTP, err := serveMetrics(m)
	if err != nil {
		t.Fatal(err)
	}
	defer stopHTTP()
	srv := attach(t, dir, "MSRV", simpl.WithObserver(m))
	ctx := simpltest.Context(t, time.Minute)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, srv, nil) }()
	tr := wantTransport()

	// Before anything arrives the receiver's series exist at zero.
	want := map[string]float64{
		series("simpl_received_messages_total", "channel", "MSRV"): 0,
		series("simpl_blocked_senders", "channel", "MSRV"):         0,
	}
	waitMetrics(t, url, want)

	cli := simpltest.StartNoWait(t, "mclient", env(dir), "MCLI", "MSRV")
	cliURL := strings.TrimPrefix(cli.Expect("metrics ", 10*time.Second), "metrics ")
	cli.Expect("sent", 20*time.Second)

	var n, nBytes, nReply, nError, nLarge float64
	for _, p := range metricsPlan {
		n++
		nBytes += float64(len(p.req))
		switch p.want {
		case nil:
			nReply++
		case simpl.ErrRejected:
			nError++
		case simpl.ErrReplyTooLarge:
			nLarge++
		}
	}
	if n != 10 || nBytes != 168 || nReply != 5 || nError != 3 || nLarge != 2 {
		t.Fatalf("metricsPlan: %v sends, %v bytes, %v/%v/%v; the test expects 10, 168, 5/3/2", n, nBytes, nReply, nError, nLarge)
	}
	// The sender's side, scraped from the helper.
	got := waitMetrics(t, cliURL, map[string]float64{
		series("simpl_send_round_trip_seconds_count", "channel", "MCLI", "to", "MSRV", "transport", tr):                n,
		series("simpl_send_round_trip_seconds_bucket", "channel", "MCLI", "to", "MSRV", "transport", tr, "le", "+Inf"): n,
		series("simpl_errors_total", "channel", "MCLI", "op", "send", "kind", "rejected"):                              nError,
		series("simpl_errors_total", "channel", "MCLI", "op", "send", "kind", "reply_too_large"):                       nLarge,
		series("simpl_sent_proxies_total", "channel", "MCLI", "to", "MSRV", "transport", tr):                           1,
	})
	if s := got[series("simpl_send_round_trip_seconds_sum", "channel", "MCLI", "to", "MSRV", "transport", tr)]; !(s > 0 && s < 60) {
		t.Errorf("sender's round trips took %v s in all, want more than 0 and less than a minute", s)
	}
	if errs := countSeries(got, "simpl_errors_total"); errs != 2 {
		t.Errorf("sender has %d simpl_errors_total series, want 2 (rejected, reply_too_large)", errs)
	}

	// The receiver's side.
	want = map[string]float64{
		series("simpl_received_messages_total", "channel", "MSRV"):                                n,
		series("simpl_received_bytes_total", "channel", "MSRV"):                                   nBytes,
		series("simpl_received_proxies_total", "channel", "MSRV"):                                 1,
		series("simpl_replies_total", "channel", "MSRV", "outcome", "reply"):                      nReply,
		series("simpl_replies_total", "channel", "MSRV", "outcome", "reply_error"):                nError,
		series("simpl_replies_total", "channel", "MSRV", "outcome", "relay"):                      0,
		series("simpl_errors_total", "channel", "MSRV", "op", "reply", "kind", "reply_too_large"): nLarge,
		series("simpl_receive_to_reply_seconds_count", "channel", "MSRV"):                         n,
		series("simpl_blocked_senders", "channel", "MSRV"):                                        0,
	}
	got = waitMetrics(t, url, want)
	if errs := countSeries(got, "simpl_errors_total"); errs != 1 {
		t.Errorf("receiver has %d simpl_errors_total series, want 1 (reply_too_large)", errs)
	}
	cli.Signal(syscall.SIGTERM)
	if err := cli.Wait(10 * time.Second); err != nil {
		t.Fatalf("metrics client: %v", err)
	}

	// A sender waiting for its answer counts as blocked until answered.
	// It is held for a while: the times recorded must include that while
	// and fit in the time it all took.
	tcli := attach(t, dir, "TCLI", simpl.WithObserver(m))
	conn := locate(t, tcli, "MSRV")
	replyTimeSum := series("simpl_receive_to_reply_seconds_sum", "channel", "MSRV")
	before := got[replyTimeSum]
	start := time.Now()
	held := make(chan error, 1)
	go func() {
		reply := make([]byte, 16)
		k, err := conn.Send(ctx, []byte{opHold, 1, 2}, reply)
		if err == nil && !bytes.Equal(reply[:k], []byte{2, 3}) {
			err = fmt.Errorf("reply %x, want 0203", reply[:k])
		}
		held <- err
	}()
	want[series("simpl_blocked_senders", "channel", "MSRV")] = 1
	want[series("simpl_received_messages_total", "channel", "MSRV")] = n + 1
	want[series("simpl_received_bytes_total", "channel", "MSRV")] = nBytes + 3
	waitMetrics(t, url, want)
	// The hold is what is measured, not a wait for a state (the state,
	// received and blocked, was waited for above): the times recorded must
	// be at least this long, which a sleep guarantees however loaded the
	// machine, and at most the wall time around it all.
	const hold = 50 * time.Millisecond
	time.Sleep(hold)
	// The flush goes from a Channel without metrics: TCLI's one Send is
	// the held one.
	if _, err := locate(t, attach(t, dir, "TFLUSH"), "MSRV").Send(ctx, []byte{opFlush}, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err != nil {
		t.Fatalf("held send: %v", err)
	}
	want[series("simpl_blocked_senders", "channel", "MSRV")] = 0
	want[series("simpl_received_messages_total", "channel", "MSRV")] = n + 2
	want[series("simpl_received_bytes_total", "channel", "MSRV")] = nBytes + 4
	want[series("simpl_replies_total", "channel", "MSRV", "outcome", "reply")] = nReply + 2
	want[series("simpl_receive_to_reply_seconds_count", "channel", "MSRV")] = n + 2
	want[series("simpl_send_round_trip_seconds_count", "channel", "TCLI", "to", "MSRV", "transport", tr)] = 1
	got = waitMetrics(t, url, want)
	wall := time.Since(start)
	// The flush was received after the held request and answered before
	// it: the two receive-to-replies together last at most twice the
	// held one's.
	for _, c := range []struct {
		what string
		sum  float64
		max  time.Duration
	}{
		{"TCLI's round trip", got[series("simpl_send_round_trip_seconds_sum", "channel", "TCLI", "to", "MSRV", "transport", tr)], wall},
		{"MSRV's two receive-to-replies", got[replyTimeSum] - before, 2 * wall},
	} {
		if c.sum < hold.Seconds() || c.sum > c.max.Seconds() {
			t.Errorf("%s took %v s; want at least the %v the request was held, at most %v (the %v it all took)", c.what, c.sum, hold, c.max, wall)
		}
	}

	srv.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// TestMetricsOutcomes covers the outcomes one process can bring about:
// in place replies, a second answer, a relay, cancelled and expired
// Sends, a Receive on a closed Channel.
func TestMetricsOutcomes(t *testing.T) {
	dir := simpltest.Dir(t)
	m := newMetrics(t)
	ctx := simpltest.Context(t, time.Minute)
	ms := attach(t, dir, "MS", simpl.WithObserver(m))
	mr := attach(t, dir, "MR", simpl.WithObserver(m))
	mc := attach(t, dir, "MC", simpl.WithObserver(m))
	toMS := locate(t, mr, "MS")

	// MS answers 4 requests and a proxy: 'E' with Reply (twice: the second
	// must fail with ErrReplied), 'X' with ReplyError, 'I' in place.
	msDone := make(chan error, 1)
	go func() {
		msDone <- func() error {
			for requests, proxies := 0, 0; requests < 4 || proxies < 1; {
				msg, err := ms.Receive(ctx)
				if err != nil {
					return err
				}
				if msg.Proxy() > 0 {
					proxies++
					continue
				}
				requests++
				d := msg.Data()
				switch d[0] {
				case opEcho:
					if err := msg.Reply(incremented(d[1:])); err != nil {
						return err
					}
					if err := msg.Reply(nil); !errors.Is(err, simpl.ErrReplied) {
						return fmt.Errorf("second Reply: %v, want ErrReplied", err)
					}
				case opError:
					if err := msg.ReplyError(); err != nil {
						return err
					}
				default:
					if err := msg.ReplyInPlace(copy(msg.ReplyBuffer(), d)); err != nil {
						return err
					}
				}
			}
			return nil
		}()
	}()
	// MR relays one request to MS.
	mrDone := make(chan error, 1)
	go func() {
		msg, err := mr.Receive(ctx)
		if err == nil {
			err = msg.Relay(toMS)
		}
		mrDone <- err
	}()

	conn := locate(t, mc, "MS")
	reply := make([]byte, 16)
	for _, tc := range []struct {
		conn *simpl.Conn
		ctx  context.Context
		req  string
		want error
	}{
		{conn, ctx, "Eab", nil},
		{conn, ctx, "X", simpl.ErrRejected},
		{conn, ctx, "Ixyz", nil},
		{conn, cancelled(), "Eno", context.Canceled},
		{conn, expired(), "Eno", context.DeadlineExceeded},
		{locate(t, mc, "MR"), ctx, "Ecd", nil},
	} {
		if _, err := tc.conn.Send(tc.ctx, []byte(tc.req), reply); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("send %q to %s: %v, want %v", tc.req, tc.conn.Name(), err, tc.want)
		}
	}
	if err := conn.Trigger(3); err != nil {
		t.Fatal(err)
	}
	for _, done := range []chan error{msDone, mrDone} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(metricsTimeout):
			t.Fatal("the receivers did not get every message")
		}
	}
	mz := attach(t, dir, "MZ", simpl.WithObserver(m))
	mz.Close()
	if _, err := mz.Receive(ctx); !errors.Is(err, simpl.ErrClosed) {
		t.Fatalf("Receive on a closed Channel: %v, want ErrClosed", err)
	}

	// MR's relay forwards through shared memory (a Send of MR's to MS)
	// but hands the request over whole through FIFOs.
	forwarded := 0
	if wantTransport() == simpl.SHM {
		forwarded = 1
	}
	want := fmt.Sprintf(`
# HELP simpl_errors_total Failed operations, by operation (receive, reply, send, trigger) and kind (the sentinel error: peer_gone, too_large, reply_too_large, rejected, closed, canceled, deadline, ...). A Receive ended by its context is not counted.
# TYPE simpl_errors_total counter
simpl_errors_total{channel="MC",kind="canceled",op="send"} 1
simpl_errors_total{channel="MC",kind="deadline",op="send"} 1
simpl_errors_total{channel="MC",kind="rejected",op="send"} 1
simpl_errors_total{channel="MS",kind="replied",op="reply"} 2
simpl_errors_total{channel="MZ",kind="closed",op="receive"} 1
# HELP simpl_received_bytes_total Bytes of the requests received.
# TYPE simpl_received_bytes_total counter
simpl_received_bytes_total{channel="MC"} 0
simpl_received_bytes_total{channel="MR"} 3
simpl_received_bytes_total{channel="MS"} 11
simpl_received_bytes_total{channel="MZ"} 0
# HELP simpl_received_messages_total Requests received (proxies not included).
# TYPE simpl_received_messages_total counter
simpl_received_messages_total{channel="MC"} 0
simpl_received_messages_total{channel="MR"} 1
simpl_received_messages_total{channel="MS"} 4
simpl_received_messages_total{channel="MZ"} 0
# HELP simpl_received_proxies_total Proxies (Triggers) received.
# TYPE simpl_received_proxies_total counter
simpl_received_proxies_total{channel="MC"} 0
simpl_received_proxies_total{channel="MR"} 0
simpl_received_proxies_total{channel="MS"} 1
simpl_received_proxies_total{channel="MZ"} 0
# HELP simpl_replies_total Requests answered, by how: reply (Reply or ReplyInPlace), reply_error (ReplyError) or relay (Relay). Failed answers count in simpl_errors_total.
# TYPE simpl_replies_total counter
simpl_replies_total{channel="MC",outcome="relay"} 0
simpl_replies_total{channel="MC",outcome="reply"} 0
simpl_replies_total{channel="MC",outcome="reply_error"} 0
simpl_replies_total{channel="MR",outcome="relay"} 1
simpl_replies_total{channel="MR",outcome="reply"} 0
simpl_replies_total{channel="MR",outcome="reply_error"} 0
simpl_replies_total{channel="MS",outcome="relay"} 0
simpl_replies_total{channel="MS",outcome="reply"} 3
simpl_replies_total{channel="MS",outcome="reply_error"} 1
simpl_replies_total{channel="MZ",outcome="relay"} 0
simpl_replies_total{channel="MZ",outcome="reply"} 0
simpl_replies_total{channel="MZ",outcome="reply_error"} 0
# HELP simpl_sent_proxies_total Proxies (Triggers) sent.
# TYPE simpl_sent_proxies_total counter
simpl_sent_proxies_total{channel="MC",to="MR",transport="%[1]s"} 0
simpl_sent_proxies_total{channel="MC",to="MS",transport="%[1]s"} 1
simpl_sent_proxies_total{channel="MR",to="MS",transport="%[1]s"} 0
# HELP simpl_blocked_senders Senders blocked on this channel's answer: requests received by an open Channel and not answered yet (senders whose requests are not received yet are not counted).
# TYPE simpl_blocked_senders gauge
simpl_blocked_senders{channel="MC"} 0
simpl_blocked_senders{channel="MR"} 0
simpl_blocked_senders{channel="MS"} 0
simpl_blocked_senders{channel="MZ"} 0
`, wantTransport())
	// The relayed request is answered after MC's Send returns; wait for
	// it to be counted.
	var err error
	for deadline := time.Now().Add(metricsTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = testutil.CollectAndCompare(m, strings.NewReader(want),
			"simpl_errors_total", "simpl_received_bytes_total", "simpl_received_messages_total",
			"simpl_received_proxies_total", "simpl_replies_total", "simpl_sent_proxies_total",
			"simpl_blocked_senders"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	got := gatherText(t, m)
	tr := wantTransport()
	for key, n := range map[string]float64{
		series("simpl_send_round_trip_seconds_count", "channel", "MC", "to", "MS", "transport", tr): 5,
		series("simpl_send_round_trip_seconds_count", "channel", "MC", "to", "MR", "transport", tr): 1,
		series("simpl_send_round_trip_seconds_count", "channel", "MR", "to", "MS", "transport", tr): float64(forwarded),
		series("simpl_receive_to_reply_seconds_count", "channel", "MS"):                             4,
		series("simpl_receive_to_reply_seconds_count", "channel", "MR"):                             1,
	} {
		if got[key] != n {
			t.Errorf("%s = %v, want %v", key, got[key], n)
		}
	}
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// A Metrics is a collector like any other: registering it twice on one
// registry fails, and two Metrics cannot share a registry.
func TestMetricsRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(t)
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(m); err == nil {
		t.Error("registered the same Metrics twice")
	}
	if err := reg.Register(newMetrics(t)); err == nil {
		t.Error("registered a second Metrics on the same registry")
	}
	// Custom buckets reach the histograms.
	dir := simpltest.Dir(t)
	m = newMetrics(t, simplprom.WithLatencyBuckets(0.001, 1))
	srv := attach(t, dir, "MB", simpl.WithObserver(m))
	conn := locate(t, attach(t, dir, "MBC", simpl.WithObserver(m)), "MB")
	ctx := simpltest.Context(t, testTimeout)
	go serve(ctx, srv, nil)
	if _, err := conn.Send(ctx, []byte{opEcho}, nil); err != nil {
		t.Fatal(err)
	}
	got := gatherText(t, m)
	var les []string
	for key := range got {
		if strings.HasPrefix(key, "simpl_send_round_trip_seconds_bucket{") {
			_, le, _ := strings.Cut(key, `le="`)
			le, _, _ = strings.Cut(le, `"`)
			les = append(les, le)
		}
	}
	slices.Sort(les)
	if want := []string{"+Inf", "0.001", "1"}; !slices.Equal(les, want) {
		t.Errorf("buckets %v, want %v", les, want)
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func expired() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	_ = cancel // already expired; nothing to release
	return ctx
}

// series is the key of one series in a scrape: name{k="v",...} with the
// labels in order.
func series(name string, kv ...string) string {
	pairs := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+`="`+kv[i+1]+`"`)
	}
	if len(pairs) == 0 {
		return name
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// parseText reads the Prometheus text format into a map of series keys
// (see series) to values.
func parseText(t testing.TB, text string) map[string]float64 {
	t.Helper()
	out := make(map[string]float64)
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad line in scrape: %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in scrape: %q", line)
		}
		key := line[:i]
		name, labels, ok := strings.Cut(key, "{")
		if ok {
			var kv []string
			for _, pair := range splitLabels(strings.TrimSuffix(labels, "}")) {
				k, v, _ := strings.Cut(pair, "=")
				kv = append(kv, k, strings.Trim(v, `"`))
			}
			key = series(name, kv...)
		}
		out[key] = v
	}
	return out
}

// splitLabels splits k1="v1",k2="v2" at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// scrape GETs url and parses it.
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	client := &http.Client{Timeout: metricsTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %s, Content-Type %q: %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	return parseText(t, string(body))
}

// gatherText is m's series, as a scrape of a registry holding only m.
func gatherText(t testing.TB, m *simplprom.Metrics) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	return scrape(t, srv.URL)
}

// waitMetrics scrapes url until every series in want has its value,
// failing the test after metricsTimeout; it returns the last scrape.
func waitMetrics(t testing.TB, url string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(metricsTimeout)
	for {
		got := scrape(t, url)
		var diff []string
		for key, v := range want {
			if g, ok := got[key]; !ok {
				diff = append(diff, fmt.Sprintf("%s missing, want %v", key, v))
			} else if g != v {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", key, g, v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			sort.Strings(diff)
			t.Fatalf("%s after %v:\n%s", url, metricsTimeout, strings.Join(diff, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countSeries counts the series of the family name.
func countSeries(got map[string]float64, name string) int {
	n := 0
	for key := range got {
		if key == name || strings.HasPrefix(key, name+"{") {
			n++
		}
	}
	return n
}

// BenchmarkMetrics measures the 64-byte shared-memory round trip with
// spinning off (nospin) and on (spin), metrics off and on at both ends
// (the sender in this process, the echo receiver in a helper).
// "interleaved" runs both pairs at once and alternates blocks of 1000
// round trips between them, so that both see the same machine; it
// reports each side's median and p99 and their ratios (on/off).
func BenchmarkMetrics(b *testing.B) {
	if wantTransport() != simpl.SHM {
		b.Skip("FIFO transport forced")
	}
	for _, spin := range []bool{false, true} {
		name := "nospin"
		if spin {
			name = "spin"
		}
		b.Run(name+"/off", func(b *testing.B) { benchMetrics(b, false, spin) })
		b.Run(name+"/on", func(b *testing.B) { benchMetrics(b, true, spin) })
		b.Run(name+"/interleaved", func(b *testing.B) { benchMetricsInterleaved(b, spin) })
	}
}

// metricsPair starts an echo receiver and locates it from a new Channel,
// both with metrics when on.
func metricsPair(b *testing.B, dir string, on, spin bool) *simpl.Conn {
	b.Helper()
	role, name := "echo", "ECHO_OFF"
	opts := []simpl.Option{simpl.WithDir(dir), simpl.WithTransport(simpl.SHM), simpl.WithSpin(spin)}
	if on {
		role, name = "mecho", "ECHO_ON"
		m := newMetrics(b)
		prometheus.NewRegistry().MustRegister(m)
		opts = append(opts, simpl.WithObserver(m))
	}
	args := []string{name}
	if !spin {
		args = append(args, "nospin")
	}
	srv := simpltest.Start(b, role, env(dir), args...)
	cli, err := simpl.Attach("B"+name, opts...)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := cli.Locate(context.Background(), name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		cli.Close()
		srv.Signal(syscall.SIGKILL)
		srv.Wait(5 * time.Second)
	})
	return conn
}

func benchMetrics(b *testing.B, on, spin bool) {
	dir := simpltest.Dir(b)
	b.Cleanup(func() { reapAll(dir) })
	conn := metricsPair(b, dir, on, spin)
	req, reply := make([]byte, 64), make([]byte, 64)
	ctx := context.Background()
	for range 1000 {
		if _, err := conn.Send(ctx, req, reply); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := conn.Send(ctx, req, reply); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	med, p99 := quantiles(lat)
	b.ReportMetric(med, "median_us")
	b.ReportMetric(p99, "p99_us")
}

func benchMetricsInterleaved(b *testing.B, spin bool) {
	dir := simpltest.Dir(b)
	b.Cleanup(func() { reapAll(dir) })
	conns := []*simpl.Conn{metricsPair(b, dir, false, spin), metricsPair(b, dir, true, spin)}
	req, reply := make([]byte, 64), make([]byte, 64)
	ctx := context.Background()
	lats := [2][]time.Duration{make([]time.Duration, 0, b.N/2+1000), make([]time.Duration, 0, b.N/2+1000)}
	const block = 1000
	b.ResetTimer()
	for i := 0; i < b.N; {
		for side, conn := range conns {
			for range 10 { // the receiver may have gone to sleep: wake it
				conn.Send(ctx, req, reply)
			}
			for j := 0; j < block && i < b.N; j, i = j+1, i+1 {
				t0 := time.Now()
				if _, err := conn.Send(ctx, req, reply); err != nil {
					b.Fatal(err)
				}
				lats[side] = append(lats[side], time.Since(t0))
			}
		}
	}
	b.StopTimer()
	offMed, offP99 := quantiles(lats[0])
	onMed, onP99 := quantiles(lats[1])
	b.ReportMetric(offMed, "off_median_us")
	b.ReportMetric(onMed, "on_median_us")
	b.ReportMetric(offP99, "off_p99_us")
	b.ReportMetric(onP99, "on_p99_us")
	if offMed > 0 && offP99 > 0 {
		b.ReportMetric(onMed/offMed, "median_ratio")
		b.ReportMetric(onP99/offP99, "p99_ratio")
	}
}

// quantiles is the median and p99 of lat in microseconds; lat is sorted.
func quantiles(lat []time.Duration) (median, p99 float64) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return float64(lat[len(lat)/2].Nanoseconds()) / 1e3, float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
}
