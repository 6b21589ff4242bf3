package sys

import (
	"errors"
	"math"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// A CPU number no affinity mask holds is EINVAL, with nothing changed:
// before, unix.CPUSet.Set panicked on -64 and less, took -1 to -63 for
// CPU 63 and ignored 1024 and more (found by fcloop's FuzzConfigEnv).
func TestBadCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	for _, cpu := range []int{-1, -63, -64, math.MinInt32, MaxCPU, math.MaxInt32} {
		if err := PinThread(cpu); !errors.Is(err, unix.EINVAL) {
			t.Errorf("PinThread(%d): %v, want EINVAL", cpu, err)
		}
		if err := SetProcessAffinity([]int{0, cpu}); !errors.Is(err, unix.EINVAL) {
			t.Errorf("SetProcessAffinity(0, %d): %v, want EINVAL", cpu, err)
		}
	}
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("affinity changed by refused calls: %v, was %v", after, before)
	}
}
