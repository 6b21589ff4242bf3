package sys

import (
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/procfs"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// PageSize rounds segment sizes.
var PageSize = os.Getpagesize()

// Segment keys. A segment is created with a key in gosimpl's own key space
// instead of IPC_PRIVATE, so that one whose creator is killed between
// shmget and IPC_RMID (a window no System V call closes) can be found and
// removed later (see internal/transport/fifo's ReclaimSegments). The key never goes
// on the wire, C peers see only the shmid, and IPC_RMID turns it back into
// IPC_PRIVATE at once:
//
//	bit 31..26  keyPrefix (0b010111: keys 0x5c000000 to 0x5fffffff)
//	bit 25..4   the creator's pid (pids are below 2^22, PID_MAX_LIMIT)
//	bit  3..0   a per-process counter, so concurrent creations differ
//
// The kernel records the real creator (shm_cpid), which a reclaimer checks
// against the pid bits: a key of this shape made by anyone else is left
// alone.
const (
	keyPrefix    = 0x17
	keyPrefixBit = 26
	keyPIDBits   = 22
	keyPIDShift  = 4
	keyCounter   = 1 << keyPIDShift
)

var keyCount atomic.Uint32

// ShmKey is the key of the n-th (mod 16) segment created by process pid.
func ShmKey(pid int, n uint32) int {
	return keyPrefix<<keyPrefixBit | (pid&(1<<keyPIDBits-1))<<keyPIDShift | int(n%keyCounter)
}

// ShmKeyCreator returns the creator pid a key of gosimpl's key space
// names, and false for any other key.
func ShmKeyCreator(key int) (int, bool) {
	if key < 0 || key>>keyPrefixBit != keyPrefix {
		return 0, false
	}
	return key >> keyPIDShift & (1<<keyPIDBits - 1), true
}

// ShmCreateHook, when set (by tests only), is called in ShmCreate with
// stage "shmget" after the segment is made and "shmat" after it is
// attached, both before IPC_RMID: a test stops a helper there and kills it
// to leak a segment on purpose.
var ShmCreateHook func(stage string, id int)

// ShmGetKeyed makes a segment of size bytes with permissions perm and a key
// of gosimpl's key space (ShmKey), not attached and not marked for
// removal. After 16 keys in use (EEXIST) it falls back to IPC_PRIVATE.
func ShmGetKeyed(size int, perm os.FileMode) (int, error) {
	pid := os.Getpid()
	flags := unix.IPC_CREAT | unix.IPC_EXCL | int(perm.Perm())
	for range keyCounter {
		id, err := unix.SysvShmGet(ShmKey(pid, keyCount.Add(1)), size, flags)
		if !errors.Is(err, unix.EEXIST) {
			if err != nil {
				return -1, fmt.Errorf("shmget %d bytes: %w", size, err)
			}
			return id, nil
		}
	}
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, flags)
	if err != nil {
		return -1, fmt.Errorf("shmget %d bytes: %w", size, err)
	}
	return id, nil
}

// ShmCreate makes a segment of size bytes with permissions perm (ShmGetKeyed),
// attaches it and marks it for removal at once, so the kernel frees it when
// the last process detaches, even after a crash. It returns the id others
// attach by. A process killed before the mark leaves the segment with its
// key; ReclaimSegments finds it by that.
func ShmCreate(size int, perm os.FileMode) (int, []byte, error) {
	id, err := ShmGetKeyed(size, perm)
	if err != nil {
		return -1, nil, err
	}
	if ShmCreateHook != nil {
		ShmCreateHook("shmget", id)
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return -1, nil, fmt.Errorf("shmat: %w", err)
	}
	if ShmCreateHook != nil {
		ShmCreateHook("shmat", id)
	}
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		unix.SysvShmDetach(mem)
		return -1, nil, fmt.Errorf("shmctl IPC_RMID: %w", err)
	}
	return id, mem, nil
}

// ShmAttach attaches segment id read-write; the slice is the whole segment.
func ShmAttach(id int) ([]byte, error) {
	mem, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("shmat %d: %w", id, err)
	}
	return mem, nil
}

// ShmDetach detaches a mapping from ShmCreate or ShmAttach.
func ShmDetach(mem []byte) error { return unix.SysvShmDetach(mem) }

// ShmAttached returns how many processes have segment id attached.
func ShmAttached(id int) (int, error) {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return 0, err
	}
	return int(d.Nattch), nil
}

// ShmInfo is what the kernel tells of a segment (procfs.Segment, which
// /proc/sysvipc/shm gives too).
type ShmInfo = procfs.Segment

// ShmStat is IPC_STAT of segment id.
func ShmStat(id int) (ShmInfo, error) {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return ShmInfo{}, fmt.Errorf("shmctl %d IPC_STAT: %w", id, err)
	}
	return ShmInfo{
		ID: id, Key: int(d.Perm.Key), Size: int(d.Segsz), Mode: uint32(d.Perm.Mode),
		CPID: int(d.Cpid), LPID: int(d.Lpid), Attached: int(d.Nattch),
		UID: d.Perm.Uid, GID: d.Perm.Gid, CUID: d.Perm.Cuid, CGID: d.Perm.Cgid,
		Ctime: time.Unix(int64(d.Ctime), 0),
	}, nil
}

// ShmRemove marks segment id for removal (IPC_RMID). A segment already
// gone is no error: it returns false.
func ShmRemove(id int) (bool, error) {
	_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EIDRM):
		return false, nil
	}
	return false, fmt.Errorf("shmctl %d IPC_RMID: %w", id, err)
}

// ShmList lists every System V segment of this IPC namespace
// (procfs.Segments).
func ShmList() ([]ShmInfo, error) { return procfs.Segments() }
