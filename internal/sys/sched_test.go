package sys

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The calling thread's priority reads back as set, for a nice value and
// (as root) a real-time priority; out-of-range values are refused before
// the kernel is asked. The test's goroutine keeps its thread locked to the
// end, so the thread, whatever it was left at, exits with it.
func TestSched(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	own, err := GetSched(0)
	if err != nil {
		t.Fatal(err)
	}
	if own.Check() != nil {
		t.Fatalf("this thread's priority %+v does not check", own)
	}
	want := []Sched{{SchedOther, 5}, {SchedBatch, 7}, {SchedIdle, 0}}
	if os.Geteuid() == 0 {
		want = append(want, Sched{SchedFIFO, 1}, Sched{SchedRR, 3}, Sched{SchedOther, -5}, Sched{SchedOther, 0})
	}
	for _, s := range want {
		if err := SetSched(Gettid(), s); err != nil {
			t.Fatalf("set %+v: %v", s, err)
		}
		got, err := GetSched(0)
		if err != nil || got != s {
			t.Fatalf("set %+v, read back %+v (%v)", s, got, err)
		}
	}
	for _, s := range []Sched{{SchedFIFO, 0}, {SchedRR, 100}, {SchedOther, 20}, {SchedOther, -21}, {SchedIdle, 1}, {6, 0}} {
		if err := SetSched(0, s); !errors.Is(err, ErrBadSched) {
			t.Errorf("set %+v: %v, want ErrBadSched", s, err)
		}
	}
	// A thread id that is not one of the process's threads is left alone.
	if err := SetThreadSched(os.Getpid(), 1, Sched{SchedOther, 0}); !errors.Is(err, unix.ESRCH) {
		t.Errorf("SetThreadSched of pid 1 as a thread of this process: %v, want ESRCH", err)
	}
	if err := SetThreadSched(os.Getpid(), Gettid(), Sched{SchedIdle, 0}); err != nil {
		t.Errorf("SetThreadSched of this thread: %v", err)
	}
}

func TestPinThread(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	cpus, err := AllowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("allowed CPUs: %v (%v)", cpus, err)
	}
	last := cpus[len(cpus)-1]
	if err := PinThread(last); err != nil {
		t.Fatal(err)
	}
	if got, err := AllowedCPUs(); err != nil || len(got) != 1 || got[0] != last {
		t.Fatalf("pinned to %d, allowed %v (%v)", last, got, err)
	}
}
