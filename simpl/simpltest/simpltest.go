// Package simpltest helps test programs built on gosimpl across real
// processes: it re-executes the test binary as a helper process playing a
// named role, and checks that nothing was left behind (FIFOs, System V
// segments, mappings).
//
// A test package wires it up once in TestMain:
//
//	func TestMain(m *testing.M) {
//		simpltest.Main(m, map[string]simpltest.Role{
//			"echo": runEcho,
//		})
//	}
//
// and starts helpers with Start. Nothing here is safe for use outside
// tests.
package simpltest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// Role is the body of a helper process. It prints "ready" on stdout (see
// Ready) when the test may go on, and returns nil on success; an error
// exits the helper with status 3 after printing it on stderr.
type Role = proctest.Role

// Option configures Main.
type Option = proctest.Option

// Proc is a running helper process.
type Proc = proctest.Proc

// Segment is one System V shared memory segment as /proc reports it.
type Segment = proctest.Segment

// WithLifetime makes a helper exit (status 5) after d, in case the test
// that started it forgot it.
func WithLifetime(d time.Duration) Option { return proctest.WithLifetime(d) }

// Main runs the role named in the environment, if any, and exits;
// otherwise it runs the tests, then checks once that they left nothing
// behind, and exits: a descriptor, file or FIFO, /dev/shm entry, System V
// segment or mapping, child process or goroutine that the tests (or the
// helpers they started) left fails the package, listed on stderr.
func Main(m *testing.M, roles map[string]Role, opts ...Option) { proctest.Main(m, roles, opts...) }

// Slowdown is how many times longer than the CI machine (linux/amd64,
// natively) this test binary takes for a fixed piece of work, measured
// once per binary: at least 1, at most 40. Under qemu-user it is several.
func Slowdown() float64 { return proctest.Slowdown() }

// Scale is d times Slowdown: for a test whose time budget is set by what
// its work takes on the CI machine, so that it holds on a slower one (an
// ARM board, an emulator) without being skipped or guessed from GOARCH.
func Scale(d time.Duration) time.Duration { return proctest.Scale(d) }

// Env is the environment that makes the test binary run role with args
// under Main, for tests that build the helper's command themselves.
func Env(role string, args ...string) []string { return proctest.Env(role, args...) }

// Ready tells the test that started this helper that it may go on.
func Ready() { proctest.Ready() }

// Start runs the test binary as a helper in role with args and the
// environment extra (KEY=VALUE) added, and waits up to 10 s for it to print
// "ready". The helper is killed when the test ends if it is still running.
func Start(t testing.TB, role string, extra []string, args ...string) *Proc {
	t.Helper()
	return proctest.Start(t, role, extra, args...)
}

// StartNoWait is Start without waiting for "ready".
func StartNoWait(t testing.TB, role string, extra []string, args ...string) *Proc {
	t.Helper()
	return proctest.StartNoWait(t, role, extra, args...)
}

// StartCmd starts any command as a helper: its stdout can be read with
// Expect, its stderr is kept for failure messages.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	return proctest.StartCmd(t, cmd)
}

// Dir makes an empty FIFO directory for one test and, when the test ends,
// fails it if anything is left in it or if this process still has a System
// V segment mapped or created. Call it first in a test, so that its check
// runs after every other cleanup.
func Dir(t testing.TB) string {
	t.Helper()
	return proctest.Dir(t)
}

// CheckDirEmpty fails the test if dir holds anything.
func CheckDirEmpty(t testing.TB, dir string) {
	t.Helper()
	proctest.CheckDirEmpty(t, dir)
}

// Segments returns the System V segments created by any of pids.
func Segments(t testing.TB, pids ...int) []Segment {
	t.Helper()
	return proctest.Segments(t, pids...)
}

// AttachedHere counts the System V segments this process has mapped.
func AttachedHere(t testing.TB) int {
	t.Helper()
	return proctest.AttachedHere(t)
}

// CheckNoSegments fails the test if this process still maps a segment or
// any segment created by this process or pids still exists.
func CheckNoSegments(t testing.TB, pids ...int) {
	t.Helper()
	proctest.CheckNoSegments(t, pids...)
}

// Context is a context that ends at the test's deadline or after d,
// whichever is first, and is cancelled when the test ends.
func Context(t testing.TB, d time.Duration) context.Context { return proctest.Context(t, d) }
