package sys

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations, without FUTEX_PRIVATE_FLAG: the words are shared
// between processes.
const (
	futexWait = 0
	futexWake = 1
)

// FutexWait sleeps while *w == val, until a FutexWake on w, a signal or
// timeout (0 means none). The futex is shared between processes. It returns
// false on timeout.
func FutexWait(w *atomic.Uint32, val uint32, timeout time.Duration) bool {
	var tsp *unix.Timespec
	if timeout > 0 {
		ts := unix.NsecToTimespec(int64(timeout))
		tsp = &ts
	}
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait,
		uintptr(val), uintptr(unsafe.Pointer(tsp)), 0, 0)
	return errno != unix.ETIMEDOUT
}

// FutexWake wakes up to n waiters on w.
func FutexWake(w *atomic.Uint32, n int) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, uintptr(n), 0, 0, 0)
}
