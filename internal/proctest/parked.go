package proctest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Parked counts the goroutines of this process that are blocked (not
// running or runnable) with fn, a function's qualified name as stack
// traces print it ("github.com/gosimpl/gosimpl/transport.(*Queue).Receive"),
// on their stack: how a test sees that a call has got as far as waiting.
func Parked(fn string) int {
	count := 0
	for _, g := range stacks() {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[running]") || strings.Contains(header, "[runnable]") {
			continue
		}
		if strings.Contains(g, fn+"(") {
			count++
		}
	}
	return count
}

// WaitParked waits until at least n goroutines are parked in fn (see
// Parked), failing the test after d.
func WaitParked(t testing.TB, d time.Duration, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for Parked(fn) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s", fmt.Sprintf("%d goroutines parked in %s: not within %v", n, fn, d))
		}
		time.Sleep(time.Millisecond)
	}
}

// stacks are the stacks of this process's goroutines, one a string.
func stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// GoroutinesWith are the ids of this process's goroutines with s (a
// function as stack traces print it, say) on their stack, running or
// not.
func GoroutinesWith(s string) map[string]bool {
	ids := map[string]bool{}
	for _, g := range stacks() {
		if !strings.Contains(g, s) {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
		ids[id] = true
	}
	return ids
}
