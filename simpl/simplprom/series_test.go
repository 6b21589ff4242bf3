package simplprom

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gosimpl/gosimpl/simpl"
)

// Past MaxSeries, new channel names and new Send triples add up under
// OtherChannels: a process that attaches a new anonymous Channel for
// every job keeps a bounded set of series. Before, every name kept its
// series for the process's life.
func TestMaxSeries(t *testing.T) {
	m, err := New(WithMaxSeries(2))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"_1_1", "_1_2", "_1_3", "_1_4", "_1_5"} {
		c := m.ObserveChannel(name)
		c.Received(10)
		for _, to := range []string{"A", "B"} {
			c.ObserveConn(to, "shm").Sent(0, nil)
		}
		c.Closed()
	}
	// Channels: _1_1, _1_2 and #other; sends: (_1_1, A) and (_1_1, B),
	// then #other: 3 series of simpl_received_messages_total and 3 of
	// simpl_send_round_trip_seconds.
	if n := testutil.CollectAndCount(m, "simpl_received_messages_total"); n != 3 {
		t.Errorf("%d channel series, want 3", n)
	}
	if n := testutil.CollectAndCount(m, "simpl_send_round_trip_seconds"); n != 3 {
		t.Errorf("%d send series, want 3", n)
	}
	if _, err := New(WithMaxSeries(0)); err == nil {
		t.Error("WithMaxSeries(0) accepted")
	}
}

// A histogram's sum does not wrap: 10,000 requests each held 11 days
// (a server holding a thousand requests adds that up in about three
// years) sum to 9.5e9 seconds. Before, the nanoseconds wrapped past
// 292 years and the sum went negative, a counter going backwards
// (helper-51).
func TestHistogramSumHolds(t *testing.T) {
	m, err := New()
	if err != nil {
		t.Fatal(err)
	}
	c := m.ObserveChannel("HOLD")
	for range 10000 {
		c.Answered(simpl.OutcomeReply, 11*24*time.Hour, nil)
	}
	mfs, err := prometheus.NewPedanticRegistry(), error(nil)
	if err = mfs.Register(m); err != nil {
		t.Fatal(err)
	}
	fams, err := mfs.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := 10000 * (11 * 24 * time.Hour).Seconds()
	for _, f := range fams {
		if f.GetName() != "simpl_receive_to_reply_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if got := mt.GetHistogram().GetSampleSum(); math.Abs(got-want) > want*1e-9 {
				t.Errorf("sum %v, want %v", got, want)
			}
			return
		}
	}
	t.Fatal("no simpl_receive_to_reply_seconds")
}
