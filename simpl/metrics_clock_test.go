package simpl

import (
	"sync/atomic"
	"testing"
	"time"
)

// Both clocks Metrics may use measure a sleep as at least its length and
// at most the wall time around it, and convert seconds to ticks and back.
func TestMetricsClock(t *testing.T) {
	clocks := map[string]clock{
		"chosen":    newClock(),
		"monotonic": {start: time.Now(), nsPerTick: 1},
	}
	t.Logf("chosen clock: tsc %v, %.4f ns a tick", clocks["chosen"].tsc, clocks["chosen"].nsPerTick)
	for name, c := range clocks {
		const sleep = 20 * time.Millisecond
		start := time.Now()
		t0 := c.now()
		time.Sleep(sleep)
		t1 := c.now()
		wall := time.Since(start)
		if d := c.seconds(t1 - t0); d < sleep.Seconds() || d > wall.Seconds() {
			t.Errorf("%s clock: a %v sleep took %v s, want between %v and %v", name, sleep, d, sleep, wall)
		}
		for _, s := range []float64{0.5e-6, 1e-3, 17} {
			if got := c.seconds(c.ticks(s)); got < s*0.999 || got > s*1.001 {
				t.Errorf("%s clock: %v s is %d ticks, which is %v s", name, s, c.ticks(s), got)
			}
		}
	}
}

// BenchmarkMetricsClock is the cost of what metrics add to a message at
// each end: a clock reading, and an atomic addition into a counter of the
// package's own (docs/metrics.md, "What it costs").
func BenchmarkMetricsClock(b *testing.B) {
	c := newClock()
	b.Run("reading", func(b *testing.B) {
		var sink int64
		for b.Loop() {
			sink += c.now()
		}
		_ = sink
	})
	b.Run("atomic-add", func(b *testing.B) {
		var n atomic.Int64
		for b.Loop() {
			n.Add(1)
		}
	})
}
