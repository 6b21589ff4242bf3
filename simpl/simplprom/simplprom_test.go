package simplprom

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A bound in seconds becomes whole nanoseconds such that a duration is in
// a bucket exactly when its seconds are at most the bucket's bound.
func TestNanoseconds(t *testing.T) {
	for _, c := range []struct {
		b    float64
		want int64
	}{
		{0.5e-6, 500},
		{0.001, 1_000_000},
		{0.3, 300_000_000},
		{1.5e-9, 1},
		{5e-10, 0},
		{0, 0},
		{-0.001, -1_000_000},
		{1e12, math.MaxInt64},
	} {
		if got := nanoseconds(c.b); got != c.want {
			t.Errorf("nanoseconds(%v) = %d, want %d", c.b, got, c.want)
		}
	}
	for _, b := range append(DefaultLatencyBuckets(), 0.1, 0.2, 0.7, 1e-7, 3.3) {
		ns := nanoseconds(b)
		if float64(ns)/1e9 > b || float64(ns+1)/1e9 <= b {
			t.Errorf("nanoseconds(%v) = %d: %d ns is not the last whole nanosecond at most %v s", b, ns, ns, b)
		}
	}
}

func TestOptions(t *testing.T) {
	for _, bounds := range [][]float64{{1, 0.5}, {1, 1}, {math.NaN()}, {0.1, math.Inf(1)}} {
		_, err := New(WithLatencyBuckets(bounds...))
		if err == nil || !strings.HasPrefix(err.Error(), "simplprom: ") {
			t.Errorf("New(WithLatencyBuckets(%v)): %v, want an error beginning simplprom:", bounds, err)
		}
	}
	m, err := New(WithLatencyBuckets(0.001, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.bounds) != 2 || len(m.nsBound) != 2 {
		t.Errorf("bounds %v, %v, want 2 of each", m.bounds, m.nsBound)
	}
	m, err = New()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.bounds) != 26 || m.bounds[0] != 0.5e-6 {
		t.Errorf("default bounds %v, want 26 from 0.5e-6", m.bounds)
	}
}

// What each observer event does to the series: the mapping from
// simpl's events to the metrics of docs/metrics.md. (The events
// themselves, from real Channels in real processes, are checked by
// simpl's TestMetricsAcrossProcesses and TestMetricsOutcomes.)
func TestEvents(t *testing.T) {
	m, err := New(WithLatencyBuckets(0.001, 1))
	if err != nil {
		t.Fatal(err)
	}
	wrap := func(err error) error { return fmt.Errorf("simpl: something: %w", err) }
	a := m.ObserveChannel("A")
	a.Received(10)
	a.Received(5)
	a.ProxyReceived()
	a.Answered(simpl.OutcomeReply, time.Millisecond, nil) // on the bound: bucket 0.001
	a.Answered(simpl.OutcomeReplyError, 2*time.Second, wrap(simpl.ErrPeerGone))
	a.Received(1)
	a.Answered(simpl.OutcomeRelay, 0, simpl.ErrReplied) // changes nothing
	a.ReceiveFailed(wrap(simpl.ErrClosed))
	b := a.ObserveConn("B", simpl.SHM)
	b.Sent(500*time.Microsecond, nil)
	b.Sent(time.Second, wrap(simpl.ErrRejected))
	b.Triggered(nil)
	b.Triggered(wrap(simpl.ErrPeerGone))
	a.ObserveConn("B", simpl.FIFO).Sent(time.Minute, nil)

	// A second Channel of the same name shares the series; its
	// unanswered request counts as a blocked sender until it closes.
	a2 := m.ObserveChannel("A")
	a2.Received(100)
	a2.Answered(simpl.OutcomeReply, 3*time.Second, nil)
	a2.Received(7)
	a2.Answered(simpl.OutcomeRelay, 4*time.Second, simpl.ErrClosed) // Close answered it
	a2.Received(8)

	compare := func(blocked int) {
		t.Helper()
		want := fmt.Sprintf(`
# HELP simpl_blocked_senders Senders blocked on this channel's answer: requests received by an open Channel and not answered yet (senders whose requests are not received yet are not counted).
# TYPE simpl_blocked_senders gauge
simpl_blocked_senders{channel="A"} %d
# HELP simpl_errors_total Failed operations, by operation (receive, reply, send, trigger) and kind (the sentinel error: peer_gone, too_large, reply_too_large, rejected, closed, canceled, deadline, ...). A Receive ended by its context is not counted.
# TYPE simpl_errors_total counter
simpl_errors_total{channel="A",kind="closed",op="receive"} 1
simpl_errors_total{channel="A",kind="closed",op="reply"} 1
simpl_errors_total{channel="A",kind="peer_gone",op="reply"} 1
simpl_errors_total{channel="A",kind="peer_gone",op="trigger"} 1
simpl_errors_total{channel="A",kind="rejected",op="send"} 1
simpl_errors_total{channel="A",kind="replied",op="reply"} 1
# HELP simpl_received_bytes_total Bytes of the requests received.
# TYPE simpl_received_bytes_total counter
simpl_received_bytes_total{channel="A"} 131
# HELP simpl_received_messages_total Requests received (proxies not included).
# TYPE simpl_received_messages_total counter
simpl_received_messages_total{channel="A"} 6
# HELP simpl_received_proxies_total Proxies (Triggers) received.
# TYPE simpl_received_proxies_total counter
simpl_received_proxies_total{channel="A"} 1
# HELP simpl_receive_to_reply_seconds Time from Receive returning a request to its answer (successful, or failed with reply_too_large or peer_gone).
# TYPE simpl_receive_to_reply_seconds histogram
simpl_receive_to_reply_seconds_bucket{channel="A",le="0.001"} 1
simpl_receive_to_reply_seconds_bucket{channel="A",le="1"} 1
simpl_receive_to_reply_seconds_bucket{channel="A",le="+Inf"} 3
simpl_receive_to_reply_seconds_sum{channel="A"} 5.001
simpl_receive_to_reply_seconds_count{channel="A"} 3
# HELP simpl_replies_total Requests answered, by how: reply (Reply or ReplyInPlace), reply_error (ReplyError) or relay (Relay). Failed answers count in simpl_errors_total.
# TYPE simpl_replies_total counter
simpl_replies_total{channel="A",outcome="relay"} 0
simpl_replies_total{channel="A",outcome="reply"} 2
simpl_replies_total{channel="A",outcome="reply_error"} 0
# HELP simpl_send_round_trip_seconds Time each Send (Conn.Send, Buffer.Send) blocked, whatever its outcome; its count is the number of Sends.
# TYPE simpl_send_round_trip_seconds histogram
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="fifo",le="0.001"} 0
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="fifo",le="1"} 0
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="fifo",le="+Inf"} 1
simpl_send_round_trip_seconds_sum{channel="A",to="B",transport="fifo"} 60
simpl_send_round_trip_seconds_count{channel="A",to="B",transport="fifo"} 1
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="shm",le="0.001"} 1
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="shm",le="1"} 2
simpl_send_round_trip_seconds_bucket{channel="A",to="B",transport="shm",le="+Inf"} 2
simpl_send_round_trip_seconds_sum{channel="A",to="B",transport="shm"} 1.0005
simpl_send_round_trip_seconds_count{channel="A",to="B",transport="shm"} 2
# HELP simpl_sent_proxies_total Proxies (Triggers) sent.
# TYPE simpl_sent_proxies_total counter
simpl_sent_proxies_total{channel="A",to="B",transport="fifo"} 0
simpl_sent_proxies_total{channel="A",to="B",transport="shm"} 1
`, blocked)
		if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
			t.Error(err)
		}
	}
	// A: 3 received, 2 answered (the ErrReplied call changed nothing);
	// A2: 3 received, 2 answered.
	compare(2)
	a.Closed()
	compare(1)
	a2.Closed()
	compare(0)
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
	if err := prometheus.NewPedanticRegistry().Register(m); err != nil {
		t.Errorf("pedantic registry: %v", err)
	}
}
