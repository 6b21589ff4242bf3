package proctest

import (
	"testing"
	"time"
)

func TestSlowdownOf(t *testing.T) {
	for _, c := range []struct {
		took, ref time.Duration
		want      float64
	}{
		{time.Millisecond, 3 * time.Millisecond, 1}, // faster than CI: never below 1
		{3 * time.Millisecond, 3 * time.Millisecond, 1},
		{15 * time.Millisecond, 3 * time.Millisecond, 5},
		{time.Hour, 3 * time.Millisecond, maxSlowdown}, // bounded
	} {
		if got := slowdownOf(c.took, c.ref); got != c.want {
			t.Errorf("slowdownOf(%v, %v) = %v, want %v", c.took, c.ref, got, c.want)
		}
	}
}

// TestSlowdown checks that the factor is measured (the calibration work
// takes time and is not optimised away) and that Scale applies it.
func TestSlowdown(t *testing.T) {
	took := measureCalibration(5)
	t.Logf("calibration: fastest of 5 runs %v (reference %v); Slowdown %.2f", took, calibrationRef, Slowdown())
	if took < 100*time.Microsecond {
		t.Errorf("calibration took %v: the work was optimised away or is too small to measure", took)
	}
	if s := Slowdown(); s < 1 || s > maxSlowdown {
		t.Errorf("Slowdown %v outside [1, %d]", s, maxSlowdown)
	}
	if got, want := Scale(time.Second), time.Duration(float64(time.Second)*Slowdown()); got != want {
		t.Errorf("Scale(1s) = %v, want %v", got, want)
	}
}
