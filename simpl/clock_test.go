package simpl

import (
	"sync/atomic"
	"testing"
	"time"
)

// The observers' clock measures a sleep as at least its length and at
// most the wall time around it: on the monotonic clock, across its switch
// to the time-stamp counter, and on the counter. Nothing waits for the
// switch: until it, readings are the monotonic clock's.
func TestClock(t *testing.T) {
	tsc := haveTSC && tscIsKernelClock()
	t.Logf("time-stamp counter usable: %v", tsc)
	measure := func(what string, c *clock) {
		t.Helper()
		const sleep = 20 * time.Millisecond
		start := time.Now()
		t0 := c.now()
		time.Sleep(sleep)
		d := c.since(t0)
		wall := time.Since(start)
		// The counter's rate is known to a few parts per million.
		if d < sleep-sleep/1000 || d > wall+wall/1000 {
			t.Errorf("%s: a %v sleep took %v, want between %v and %v", what, sleep, d, sleep, wall)
		}
	}

	mono := newClock(time.Nanosecond, false)
	measure("monotonic only", mono)
	if r := mono.now(); r >= 0 || mono.state.Load() != clockMonoOnly {
		t.Errorf("monotonic only: reading %d in state %d, want a negative one in state %d", r, mono.state.Load(), clockMonoOnly)
	}
	if !tsc {
		return
	}

	c := newClock(time.Hour, true)
	if r := c.now(); r >= 0 || c.state.Load() != clockMono {
		t.Fatalf("before calibrating: reading %d in state %d, want a negative one in state %d", r, c.state.Load(), clockMono)
	}
	// The start is read on the monotonic clock, the end (the first
	// reading once calibrated) on the counter.
	begin := time.Now()
	t0 := c.now()
	time.Sleep(20 * time.Millisecond)
	c.after = 0 // the hour is up: the next reading calibrates
	if r := c.now(); r >= 0 {
		t.Fatalf("the reading that calibrates is %d, want the monotonic clock's (negative)", r)
	}
	if c.state.Load() != clockTSC {
		t.Fatalf("state %d after calibrating, want %d (the counter)", c.state.Load(), clockTSC)
	}
	t.Logf("%.4f ns a tick", c.nsPerTick)
	time.Sleep(20 * time.Millisecond)
	d := c.since(t0)
	wall := time.Since(begin)
	if d < 40*time.Millisecond-40*time.Microsecond || d > wall+wall/1000 {
		t.Errorf("across the switch: 40ms of sleeps took %v, want between 40ms and %v", d, wall)
	}
	if r := c.now(); r < 0 {
		t.Fatalf("reading %d once calibrated, want the counter's (0 or more)", r)
	}
	measure("counter", c)
}

// BenchmarkClock is the cost of what an observer's timing adds to a
// message at each end: a clock reading (the counter once calibrated, and
// the monotonic clock it starts on and falls back to), and an atomic
// addition, what simplprom counts with (docs/metrics.md, "What it
// costs").
func BenchmarkClock(b *testing.B) {
	b.Run("reading", func(b *testing.B) {
		c := newClock(0, haveTSC && tscIsKernelClock())
		c.now() // calibrates
		b.Logf("state %d (%d is the counter)", c.state.Load(), clockTSC)
		var sink int64
		for b.Loop() {
			sink += c.now()
		}
		_ = sink
	})
	b.Run("monotonic", func(b *testing.B) {
		c := newClock(0, false)
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
