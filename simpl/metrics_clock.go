package simpl

import (
	"os"
	"strings"
	"time"
)

// clock is the monotonic clock Metrics time messages with. It reads the
// processor's time-stamp counter where that is what the kernel's own
// clock uses (x86-64 with the tsc clocksource), about 8 ns a reading
// against about 21 ns for time.Since on the 2-core VM of
// docs/metrics.md, and the runtime's monotonic clock elsewhere. Readings
// are ticks: nanoseconds, or counter ticks at the rate measured when the
// clock was made.
type clock struct {
	start     time.Time // origin of the monotonic readings
	tsc       bool      // read the time-stamp counter
	nsPerTick float64   // 1, or the counter's period measured against start
}

func newClock() clock {
	c := clock{start: time.Now(), nsPerTick: 1}
	if !haveTSC || !tscIsKernelClock() {
		return c
	}
	// Two pairs of readings of both clocks, 5 ms apart; each pair the
	// tightest of a few, so that a preemption between the two reads of a
	// pair does not skew the rate.
	pair := func() (tick int64, ns int64) {
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
	t0, n0 := pair()
	time.Sleep(5 * time.Millisecond)
	t1, n1 := pair()
	if t1 <= t0 || n1 <= n0 {
		return c
	}
	ns := float64(n1-n0) / float64(t1-t0)
	if ns < 0.05 || ns > 10 { // 100 MHz to 20 GHz: anything else is not a TSC to trust
		return c
	}
	c.tsc, c.nsPerTick = true, ns
	return c
}

// tscIsKernelClock reports whether the kernel keeps time with the TSC,
// which it does only once it has found the counter stable and in step on
// every processor.
func tscIsKernelClock() bool {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	return err == nil && strings.TrimSpace(string(b)) == "tsc"
}

// now is a reading in ticks.
func (c *clock) now() int64 {
	if c.tsc {
		return readTSC()
	}
	return int64(time.Since(c.start))
}

// ticks converts seconds to ticks.
func (c *clock) ticks(seconds float64) int64 { return int64(seconds * 1e9 / c.nsPerTick) }

// seconds converts ticks to seconds.
func (c *clock) seconds(ticks int64) float64 { return float64(ticks) * c.nsPerTick / 1e9 }
