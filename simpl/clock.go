package simpl

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clock is the monotonic clock that times messages for observers (the
// durations of ChannelObserver.Answered and ConnObserver.Sent). It reads
// the processor's time-stamp counter where that is what the kernel's own
// clock uses (x86-64 with the tsc clocksource), about 10 ns a reading
// against about 24 ns for time.Since on the 2-core VM of docs/metrics.md,
// and Go's monotonic clock elsewhere.
//
// Nothing waits to measure the counter's rate: the clock starts on the
// monotonic clock and takes a reading of both clocks; the first reading
// at least calibrateAfter later takes a second, derives the rate from
// the two, and switches to the counter. A duration whose start was read
// before the switch and whose end after converts the end to the
// monotonic clock's time through that rate.
//
// A reading is an int64: ticks of the counter since tsc0 when it is
// 0 or more, and -1-ns, ns the monotonic nanoseconds since start, when it
// is negative. Safe for concurrent use.
type clock struct {
	start     time.Time     // origin of the monotonic readings
	tsc0      int64         // the counter read with ns0
	ns0       int64         // nanoseconds since start when tsc0 was read
	after     time.Duration // how long after start to calibrate
	state     atomic.Int32  // clockMono, clockCalibrating, clockTSC or clockMonoOnly
	nsPerTick float64       // the counter's period; written before state becomes clockTSC
}

const (
	clockMono        = iota // monotonic now, the counter once calibrated
	clockCalibrating        // one reader is measuring the counter's rate
	clockTSC                // the counter, at nsPerTick
	clockMonoOnly           // monotonic for good: no counter to trust
)

// calibrateAfter is how long a clock reads the monotonic clock before it
// measures the counter's rate: two readings of both clocks that far apart
// give the rate to a few parts per million.
const calibrateAfter = 10 * time.Millisecond

// processClock is the clock every Channel of the process observes with,
// made at the first Attach WithObserver.
var processClock = sync.OnceValue(func() *clock { return newClock(calibrateAfter, haveTSC && tscIsKernelClock()) })

// newClock makes a clock that moves to the counter after after, if tsc.
func newClock(after time.Duration, tsc bool) *clock {
	c := &clock{start: time.Now(), after: after}
	if !tsc {
		c.state.Store(clockMonoOnly)
		return c
	}
	c.tsc0, c.ns0 = c.pair()
	return c
}

// pair is a reading of the counter and of the monotonic clock taken
// together: the tightest of a few, so that a preemption between the two
// reads does not skew the rate.
func (c *clock) pair() (tick, ns int64) {
	best := int64(-1)
	for range 5 {
		a := readTSC()
		n := int64(time.Since(c.start))
		b := readTSC()
		if best < 0 || b-a < best {
			best, tick, ns = b-a, a+(b-a)/2, n
		}
	}
	return tick, ns
}

// tscIsKernelClock reports whether the kernel keeps time with the TSC,
// which it does only once it has found the counter stable and in step on
// every processor.
func tscIsKernelClock() bool {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	return err == nil && strings.TrimSpace(string(b)) == "tsc"
}

// now is a reading.
func (c *clock) now() int64 {
	switch c.state.Load() {
	case clockTSC:
		return max(readTSC()-c.tsc0, 0)
	case clockMono:
		return c.monoNow()
	}
	return -1 - int64(time.Since(c.start))
}

// monoNow is a reading of the monotonic clock before the counter is
// calibrated; the first one at least c.after since start calibrates it.
func (c *clock) monoNow() int64 {
	ns := int64(time.Since(c.start))
	if ns >= int64(c.after) && c.state.CompareAndSwap(clockMono, clockCalibrating) {
		c.calibrate()
	}
	return -1 - ns
}

// calibrate measures the counter's rate against the monotonic clock since
// newClock and switches to the counter, or gives it up when the rate is
// not one to trust.
func (c *clock) calibrate() {
	tick, ns := c.pair()
	if tick <= c.tsc0 || ns <= c.ns0 {
		c.state.Store(clockMonoOnly)
		return
	}
	r := float64(ns-c.ns0) / float64(tick-c.tsc0)
	if r < 0.05 || r > 10 { // 100 MHz to 20 GHz: anything else is not a TSC
		c.state.Store(clockMonoOnly)
		return
	}
	c.nsPerTick = r
	c.state.Store(clockTSC)
}

// since is the time from the reading t0 to now, never negative (the
// counters of two processors may differ by a hair).
func (c *clock) since(t0 int64) time.Duration {
	t1 := c.now()
	if t0 >= 0 { // then so is t1: the clock never leaves the counter
		return time.Duration(max(float64(t1-t0)*c.nsPerTick, 0))
	}
	return max(time.Duration(c.ns(t1)-c.ns(t0)), 0)
}

// ns is the reading r in monotonic nanoseconds since start.
func (c *clock) ns(r int64) int64 {
	if r < 0 {
		return -1 - r
	}
	return c.ns0 + int64(float64(r)*c.nsPerTick)
}
