package simpl

import (
	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/sys"
)

// LockMemory keeps every page of the process in RAM once it has been
// touched, those mapped now and those mapped later (mlockall with
// MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT), so that a real-time thread never
// waits for a page to be read back from swap. A page is locked as it is
// first touched, not when it is mapped (locking the Go heap's 64 MiB
// arenas whole at map time stalled a growing heap for seconds;
// docs/realtime.md): its first touch still faults, so touch what the loop
// will use before it starts (Prefault, and the buffers it reuses). Call it once, early,
// in a control process. It needs CAP_IPC_LOCK, or an RLIMIT_MEMLOCK as
// large as the process will grow; otherwise the kernel's error (EPERM or
// ENOMEM) is returned and nothing is locked. Go's heap grows by mapping
// more, and each new mapping is then locked too: bound the heap (see
// GOMEMLIMIT in docs/realtime.md) so that locking cannot take all of RAM.
func LockMemory() error {
	if err := sys.LockMemory(); err != nil {
		return errs.Errorf("lock memory: %w", err)
	}
	return nil
}

// Prefault writes a zero into every page of b (the first byte of each,
// and the last byte of b), so that each page is backed by RAM before a
// real-time loop first uses it: a page Go has mapped but nobody has
// touched yet faults on its first write. Use it on buffers made before
// the loop starts, before they are filled: it overwrites those bytes.
func Prefault(b []byte) { sys.Prefault(b) }

// SetProcessPriority sets every thread of the process to p: the thread
// that calls it, the Go runtime's threads, and (as a Linux thread starts
// at the priority of the thread that makes it) the threads the runtime
// starts later. A control process wants this, not only its loop thread
// at a real-time priority: a goroutine locked to its thread still needs
// the runtime's other threads at times (the one that waits for socket
// events and wakes the goroutine reading a proxy, the one that hands a
// processor back to a goroutine after a long system call, the garbage
// collector's), and in places the runtime has one thread wait for
// another by spinning and yielding (sched_yield). A yield lets threads
// of the same or a higher priority run, never a lower one: a loop thread
// at SCHED_FIFO that spins for a runtime thread of lower priority on its
// CPU spins until the kernel's real-time throttling stops it (950 ms of
// every second by default). So run the loop thread at p too, not above
// it: docs/realtime.md measures both ("The runtime's threads").
//
// Raising needs CAP_SYS_NICE or room under RLIMIT_RTPRIO and RLIMIT_NICE;
// otherwise the kernel's error is returned, wrapped, and the threads set
// before the refusal stay set. Everything in the process then runs at p:
// a goroutine that spins at SCHED_FIFO keeps lower-priority work off its
// CPU (real-time throttling still leaves that 5% of each second).
func SetProcessPriority(p Priority) error {
	if _, err := sys.SetProcessSched(sys.Sched(p)); err != nil {
		return errs.Errorf("set the process's threads to policy %d priority %d: %w", p.Policy, p.Level, err)
	}
	return nil
}
