package sys

import "golang.org/x/sys/unix"

// LockMemory locks every page the process has mapped, and every page it
// maps from now on, into RAM (mlockall with MCL_CURRENT and MCL_FUTURE),
// so that no page fault on a swapped-out or not yet present page stalls
// a real-time thread. It needs CAP_IPC_LOCK or a RLIMIT_MEMLOCK as large
// as the process; the kernel's error (ENOMEM, EPERM) is returned
// otherwise.
func LockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
}

// UnlockMemory undoes LockMemory (munlockall).
func UnlockMemory() error { return unix.Munlockall() }

// Prefault writes a zero into every page of b, so that each is backed by
// RAM before a real-time loop first touches it (the first write to a page
// of a fresh allocation faults, read faults may map the shared zero page
// only). With LockMemory in force the pages then stay.
func Prefault(b []byte) {
	page := unix.Getpagesize()
	for i := 0; i < len(b); i += page {
		b[i] = 0
	}
	if len(b) > 0 {
		b[len(b)-1] = 0
	}
}
