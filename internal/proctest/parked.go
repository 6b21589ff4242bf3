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
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
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
