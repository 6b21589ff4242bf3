package proctest

import (
	"sync"
	"time"
)

// A test's time budget is set on the machine CI runs on natively
// (linux/amd64, 2 cores). The same test binary cross-built for ARM and run
// under qemu-user runs the same code several times slower, so a budget
// that holds natively fails there although nothing is wrong. Tests that
// bound their run time by what the work should take scale the budget by
// Slowdown: measured, never assumed from GOARCH, so a slow board, an
// emulator and a loaded machine all get what they need, and a fast
// machine keeps the native budget.

// calibrationRef is the fastest calibration run measured natively on
// the CI machine (linux/amd64, 2 shared cores, idle: 2.3-2.5 ms, Go 1.26),
// rounded up, so that Slowdown is 1 there.
const calibrationRef = 3 * time.Millisecond

// maxSlowdown bounds the factor, so that a budget still ends on a machine
// gone pathologically slow: a test that then fails says so with its
// scaled budget.
const maxSlowdown = 40

var slowdown = sync.OnceValue(func() float64 {
	return slowdownOf(measureCalibration(5), calibrationRef)
})

// Slowdown is how many times longer than on the CI machine this test
// binary takes for a fixed piece of CPU and memory work: at least 1, at
// most 40. It is measured once per binary, on first use (about 5 runs of
// the work; 15 ms natively), as the fastest run, so that a moment of
// other load does not inflate it. Safe for concurrent use.
func Slowdown() float64 { return slowdown() }

// Scale is d times Slowdown: a time budget set on the CI machine, for
// this one.
func Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * Slowdown())
}

// slowdownOf is the factor for a fastest calibration run of took against
// the reference ref: took/ref, within [1, maxSlowdown].
func slowdownOf(took, ref time.Duration) float64 {
	return min(max(float64(took)/float64(ref), 1), maxSlowdown)
}

// measureCalibration runs the calibration work runs times and returns
// the fastest run.
func measureCalibration(runs int) time.Duration {
	best := time.Duration(-1)
	for range runs {
		start := time.Now()
		calibrationSink += calibrationWork()
		if d := time.Since(start); best < 0 || d < best {
			best = d
		}
	}
	return best
}

// calibrationSink keeps the compiler from discarding calibrationWork.
var calibrationSink uint64

// calibrationWork is plain Go, the same on every GOARCH (no assembly, no
// special instructions): integer arithmetic, 64-bit words (several
// instructions each on 32-bit ARM, as in the code under test), branches
// and scattered stores and loads over 256 KiB, which is what the
// transports' hot paths spend their time on besides system calls. It is
// not instrumented by the race detector (go:norace): the factor is the
// machine's, and a -race build keeps the budgets it passes with natively.
//
//go:norace
func calibrationWork() uint64 {
	const words = 1 << 16 // 256 KiB of uint32
	buf := make([]uint32, words)
	x := uint64(0x9e3779b97f4a7c15)
	var sum uint64
	for i := range 1 << 19 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := x & (words - 1)
		buf[j] += uint32(x >> 32)
		if buf[(j*7)&(words-1)]&1 == 0 {
			sum += uint64(i)
		}
	}
	return sum + uint64(buf[x&(words-1)])
}
