package naming

import (
	"math"
	"testing"
	"time"
)

// A process started years after boot is placed years after boot: the
// start time in clock ticks is turned into a duration without
// overflowing. Before, ticks * time.Second overflowed past 2.9 years of
// uptime (found by helper-35's review).
func TestSinceBoot(t *testing.T) {
	for _, c := range []struct {
		ticks uint64
		want  time.Duration
	}{
		{0, 0},
		{1, 10 * time.Millisecond},
		{150, 1500 * time.Millisecond},
		{100 * 86400 * 365 * 3, 3 * 365 * 24 * time.Hour},                 // 3 years
		{100*86400*365*50 + 7, 50*365*24*time.Hour + 70*time.Millisecond}, // 50 years
		{math.MaxUint64, math.MaxInt64},
	} {
		if got := sinceBoot(c.ticks); got != c.want {
			t.Errorf("sinceBoot(%d) = %v, want %v", c.ticks, got, c.want)
		}
	}
}
