package pace

import (
	"runtime"
	"testing"
	"time"
)

// countYields makes the test's process have procs Ps, counts the
// pacers' calls of runtime.Gosched instead of making them, and returns
// the count.
func countYields(t *testing.T, procs int) *int {
	t.Helper()
	if off {
		t.Skipf("%s turns pacing off in this environment", Env)
	}
	n := new(int)
	old, oldProcs := gosched, runtime.GOMAXPROCS(procs)
	gosched = func() { *n++ }
	t.Cleanup(func() { gosched = old; runtime.GOMAXPROCS(oldProcs) })
	return n
}

// TestSchedule: a pacer yields when its yield is due (at first, and once
// the time it set has come), then sets the next one Every later; before
// that it does not yield. A Pacer and a KeepPAt pacer alike. The pacers'
// due times are set, so no timing decides it.
func TestSchedule(t *testing.T) {
	n := countYields(t, 2)
	var p Pacer
	var next int64
	kinds := []struct {
		name string
		keep func()
		due  func() int64
		set  func(int64)
	}{
		{"Pacer", p.KeepP, p.next.Load, p.next.Store},
		{"KeepPAt", func() { KeepPAt(&next) }, func() int64 { return next }, func(v int64) { next = v }},
	}
	for _, k := range kinds {
		*n = 0
		for round := range 3 {
			if round > 0 {
				k.set(int64(time.Since(base)) - 1) // its time has come
			}
			before := int64(time.Since(base))
			k.keep()
			after := int64(time.Since(base))
			if *n != round+1 {
				t.Fatalf("%s: %d yields after %d due calls, want %d", k.name, *n, round+1, round+1)
			}
			if d := k.due(); d < before+int64(Every) || d > after+int64(Every) {
				t.Fatalf("%s: next yield at %d, want Every after the call, in [%d, %d]", k.name, d, before+int64(Every), after+int64(Every))
			}
			k.set(int64(time.Since(base)) + int64(time.Hour))
			k.keep() // not due
			if *n != round+1 {
				t.Fatalf("%s: yielded again at once (%d yields)", k.name, *n)
			}
		}
	}
}

// TestKeepPAtOwnsItsSchedule: two threads' pacers (two *next) yield each
// on its own schedule, as the C library's threads do.
func TestKeepPAtOwnsItsSchedule(t *testing.T) {
	n := countYields(t, 2)
	var a, b int64
	KeepPAt(&a)
	KeepPAt(&b)
	if *n != 2 || a == 0 || b == 0 {
		t.Fatalf("%d yields for two threads' first calls (next %d, %d), want 2", *n, a, b)
	}
}

// TestOneP: with one P a due pacer moves its schedule on but does not
// yield, which would only add the yield's own thread switches (the
// runtime takes the one P at every sleep whatever the goroutine does).
func TestOneP(t *testing.T) {
	n := countYields(t, 1)
	var p Pacer
	var next int64
	p.KeepP()
	KeepPAt(&next)
	if *n != 0 {
		t.Fatalf("%d yields with one P, want 0", *n)
	}
	if p.next.Load() == 0 || next == 0 {
		t.Fatalf("schedules not moved on: %d, %d", p.next.Load(), next)
	}
}
