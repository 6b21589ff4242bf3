package fifo

import (
	"errors"
	"io/fs"
	"os"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
)

// Leaked segments. A sender makes its segment with shmget, attaches it and
// marks it for removal (IPC_RMID) at once, so the kernel frees it with the
// last detach, crash or not. But no System V call creates a segment
// already marked, and a sender killed between shmget and IPC_RMID leaves
// one that nothing frees. Such a segment keeps the key it was created
// with, in gosimpl's key space (see sys.ShmKey), which is how it is found
// again: every Attach, and fcshow -clean, call ReclaimSegments.

// ReclaimSegments removes the System V segments that FIFO-transport
// senders of this user left when they were killed while making one, and
// returns how many it removed. A segment is removed only if all of these
// hold, so that no segment that is not gosimpl's, or is still in use, is
// ever touched:
//
//   - its key is in gosimpl's key space and names its creator's pid (the
//     kernel's shm_cpid), and it is not already marked for removal;
//   - that creator has exited: no process has its pid, or the one that
//     has it is a zombie or started after the segment was made (a reused
//     pid, as naming.Alive decides it);
//   - nobody has it attached;
//   - this user (the effective uid) created it and owns it;
//   - its size is a whole number of pages, as every gosimpl segment's is.
//
// Each is checked again through shmctl(IPC_STAT) just before the removal.
// Without /proc/sysvipc/shm there is nothing to look at and it returns 0.
func ReclaimSegments() (int, error) {
	list, err := sys.ShmList()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	uid := uint32(os.Geteuid())
	n := 0
	var errs []error
	for _, s := range list {
		if !leaked(s, uid) {
			continue
		}
		cur, err := sys.ShmStat(s.ID)
		if err != nil || cur.Key != s.Key || cur.CPID != s.CPID || !leaked(cur, uid) {
			continue
		}
		removed, err := sys.ShmRemove(s.ID)
		if removed {
			n++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// leaked tells whether segment s is one a gosimpl sender of user uid left
// behind (see ReclaimSegments).
func leaked(s sys.ShmInfo, uid uint32) bool {
	pid, ok := sys.ShmKeyCreator(s.Key)
	return ok && pid == s.CPID && s.CPID > 0 &&
		!s.MarkedForRemoval() && s.Attached == 0 &&
		s.UID == uid && s.CUID == uid &&
		s.Size > 0 && s.Size%sys.PageSize == 0 &&
		!naming.Alive(s.CPID, s.Ctime)
}
