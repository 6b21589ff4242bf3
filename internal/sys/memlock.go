package sys

import "golang.org/x/sys/unix"

// LockMemory locks the process's pages into RAM as they are faulted in,
// those mapped now and those mapped from now on (mlockall with
// MCL_CURRENT, MCL_FUTURE and MCL_ONFAULT), so that no page a real-time
// thread has touched is ever paged out; Prefault touches a buffer's pages
// ahead of the loop. Without MCL_ONFAULT every new mapping would be
// faulted in whole when it is made: the Go runtime maps its heap 64 MiB
// at a time, under its heap lock, and a garbage collection that stops
// the world waits for that; a controller growing its heap to 1 GiB so
// stalled for over 2 s (fcloop, docs/realtime.md). It needs CAP_IPC_LOCK
// or a RLIMIT_MEMLOCK as large as the process; the kernel's error
// (ENOMEM, EPERM, EINVAL before Linux 4.4) is returned otherwise.
func LockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
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
