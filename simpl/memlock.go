package simpl

import (
	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/sys"
)

// LockMemory locks every page of the process into RAM, those mapped now
// and those mapped later (mlockall with MCL_CURRENT|MCL_FUTURE), so that
// a real-time thread never waits for a page to be read back from swap or
// faulted in for the first time (docs/realtime.md). Call it once, early,
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
