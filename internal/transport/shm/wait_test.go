//go:build !race

package shm

import (
	"testing"
	"time"

	isys "github.com/gosimpl/gosimpl/internal/sys"
)

// Waiting for states rather than sleeping: a dead process, and a goroutine
// parked in a given function.

// watchDeath starts watching process pid through a pidfd, and returns died,
// which waits (failing the test after 10 s) for the process to exit and
// returns the moment this process saw it exit: when the pidfd became
// readable. Bounds on noticing a death are measured from then, not from
// the kill: the kernel ends a process only when each of its threads gets a
// CPU to die on, which on a loaded machine takes a while of its own. Call
// it before the kill.
func watchDeath(t *testing.T, pid int) (died func() time.Time) {
	t.Helper()
	p, err := isys.OpenPidfd(pid)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan time.Time, 1)
	go func() {
		if err := p.Wait(); err == nil {
			ch <- time.Now()
		}
	}()
	t.Cleanup(func() { p.Close() })
	return func() time.Time {
		t.Helper()
		select {
		case at := <-ch:
			p.Close()
			return at
		case <-time.After(10 * time.Second):
			t.Fatalf("pid %d did not die within 10s", pid)
			return time.Time{}
		}
	}
}
