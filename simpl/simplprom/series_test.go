package simplprom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
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
