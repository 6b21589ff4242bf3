// Package procfs reads what the tests, the soak tool and the syscall layer
// learn from /proc: the System V segments of the IPC namespace, the
// children of a process, and whether a process shares this one's clocks. It imports nothing of gosimpl, so every one of
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
	return ParseSegments(b)
}

// ParseSegments reads a table as /proc/sysvipc/shm holds it: a header
// naming the columns, then a segment a line, each with a field for every
// column. A table it cannot read whole (a column missing or named twice,
// a line short of fields, a number it cannot parse) is an error saying
// where, never a partial list.
func ParseSegments(b []byte) ([]Segment, error) {
	lines := strings.Split(string(b), "\n")
	col := map[string]int{}
	header := strings.Fields(lines[0])
	for i, name := range header {
		if _, ok := col[name]; ok {
			return nil, fmt.Errorf("/proc/sysvipc/shm: column %q named twice", name)
		}
		col[name] = i
	}
	for _, name := range []string{"key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid", "cuid", "cgid", "ctime"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("/proc/sysvipc/shm: no %s column", name)
		}
	}
	var out []Segment
	for n, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue // the newline after the last line
		}
		if len(f) < len(header) {
			return nil, fmt.Errorf("/proc/sysvipc/shm: line %d: %d fields for %d columns", n+2, len(f), len(header))
		}
		var bad error
		num := func(name string, base, bits int) int64 {
			v, err := strconv.ParseInt(f[col[name]], base, bits)
			if err != nil && bad == nil {
				bad = fmt.Errorf("/proc/sysvipc/shm: line %d: %s: %w", n+2, name, err)
			}
			return v
		}
		unum := func(name string) uint32 {
			v, err := strconv.ParseUint(f[col[name]], 10, 32)
			if err != nil && bad == nil {
				bad = fmt.Errorf("/proc/sysvipc/shm: line %d: %s: %w", n+2, name, err)
			}
			return uint32(v)
		}
		s := Segment{
			ID: int(num("shmid", 10, 32)), Key: int(int32(num("key", 10, 64))), Size: int(num("size", 10, 64)),
			Mode: uint32(num("perms", 8, 32)), CPID: int(num("cpid", 10, 32)), LPID: int(num("lpid", 10, 32)),
			Attached: int(num("nattch", 10, 64)),
			UID:      unum("uid"), GID: unum("gid"), CUID: unum("cuid"), CGID: unum("cgid"),
			Ctime: time.Unix(num("ctime", 10, 64), 0),
		}
		if bad != nil {
			return nil, bad
		}
		out = append(out, s)
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
		if state, p, ok := ParseStat(stat); ok && p == ppid {
			out = append(out, Child{pid, state})
		}
	}
	return out
}

// ParseStat reads a process's state letter and its parent's pid from its
// /proc/PID/stat: after the command name, in parentheses (which may hold
// any byte, parentheses and spaces included), the state, then the ppid.
// ok is false for bytes it cannot read so.
func ParseStat(stat []byte) (state string, ppid int, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return "", 0, false
	}
	p, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return "", 0, false
	}
	return string(f[0]), p, true
}

// SameClocks tells whether process pid reads CLOCK_MONOTONIC as this
// process does: whether the two are in one time namespace (a namespace
// may offset the clock). True when it cannot tell (a kernel without time
// namespaces, a process gone or not visible).
func SameClocks(pid int) bool {
	theirs, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/time")
	if err != nil {
		return true
	}
	ours, err := os.Readlink("/proc/self/ns/time")
	return err != nil || theirs == ours
}
