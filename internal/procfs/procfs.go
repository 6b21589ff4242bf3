// Package procfs reads what the tests, the soak tool and the syscall layer
// learn from /proc: the System V segments of the IPC namespace and the
// children of a process. It imports nothing of gosimpl, so every one of
// them may use it (internal/testmain included, below internal/sys's own
// tests).
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Segment is what /proc/sysvipc/shm tells of a System V segment.
type Segment struct {
	ID, Key    int
	Size       int
	Mode       uint32 // permission bits, and SHM_DEST (0o1000) once marked for removal
	CPID, LPID int    // creator, and last to attach or detach
	Attached   int
	UID, GID   uint32 // owner (IPC_SET may change them)
	CUID, CGID uint32 // creator (never change)
	Ctime      time.Time
}

// shmDest is the mode bit of a segment marked for removal.
const shmDest = 0o1000

// MarkedForRemoval tells whether IPC_RMID was done on the segment.
func (s Segment) MarkedForRemoval() bool { return s.Mode&shmDest != 0 }

// Segments lists every System V segment of this IPC namespace, as
// /proc/sysvipc/shm shows them (whatever their permissions), finding its
// columns by name. Without that file it returns an error wrapping
// fs.ErrNotExist.
func Segments() ([]Segment, error) {
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	col := map[string]int{}
	for i, name := range strings.Fields(lines[0]) {
		col[name] = i
	}
	for _, name := range []string{"key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid", "cuid", "cgid", "ctime"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("/proc/sysvipc/shm: no %s column", name)
		}
	}
	var out []Segment
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < len(col) {
			continue
		}
		num := func(name string, base int) int64 {
			n, _ := strconv.ParseInt(f[col[name]], base, 64)
			return n
		}
		out = append(out, Segment{
			ID: int(num("shmid", 10)), Key: int(int32(num("key", 10))), Size: int(num("size", 10)),
			Mode: uint32(num("perms", 8)), CPID: int(num("cpid", 10)), LPID: int(num("lpid", 10)),
			Attached: int(num("nattch", 10)),
			UID:      uint32(num("uid", 10)), GID: uint32(num("gid", 10)),
			CUID: uint32(num("cuid", 10)), CGID: uint32(num("cgid", 10)),
			Ctime: time.Unix(num("ctime", 10), 0),
		})
	}
	return out, nil
}

// Child is a child process: its pid and its state letter (R, S, Z, ...).
type Child struct {
	PID   int
	State string
}

// Children lists the processes whose parent is ppid.
func Children(ppid int) []Child {
	des, _ := os.ReadDir("/proc")
	var out []Child
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + de.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the command name, in parentheses: state, then ppid.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 2 {
			continue
		}
		if p, _ := strconv.Atoi(string(f[1])); p == ppid {
			out = append(out, Child{pid, string(f[0])})
		}
	}
	return out
}
