package procfs

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// shmHeader is /proc/sysvipc/shm's first line, as Linux 6 writes it.
const shmHeader = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"

// shmLine is a segment's line as Linux writes it (ipc/shm.c sysvipc_shm_proc_show).
func shmLine(s Segment) string {
	return fmt.Sprintf("%10d %10d  %4o %21d %5d %5d  %5d %5d %5d %5d %5d %10d %10d %10d %21d %21d\n",
		s.Key, s.ID, s.Mode, s.Size, s.CPID, s.LPID, s.Attached, s.UID, s.GID, s.CUID, s.CGID,
		0, 0, s.Ctime.Unix(), 4096, 0)
}

// FuzzSegments: whatever /proc/sysvipc/shm holds, ParseSegments does not
// panic, and either lists at most one segment a line after the header or
// fails with an error naming the file, never both; and the segments of a
// table as Linux writes it come back exactly.
func FuzzSegments(f *testing.F) {
	seg := Segment{ID: 32769, Key: -1, Size: 4096, Mode: 0o1600, CPID: 1234, LPID: 1235, Attached: 2,
		UID: 1000, GID: 1000, CUID: 1000, CGID: 1000, Ctime: time.Unix(1700000000, 0)}
	f.Add([]byte(shmHeader+shmLine(seg)), int32(7), 1, int64(4096), uint16(0o600), 3)
	f.Add([]byte(shmHeader), int32(0), 0, int64(0), uint16(0), 0)
	f.Add([]byte(""), int32(-5), -1, int64(-1), uint16(0o1777), -1)
	f.Add([]byte("key shmid\n1 2\n"), int32(1), 2, int64(3), uint16(4), 5)
	f.Add([]byte("key shmid perms size cpid lpid nattch uid gid cuid cgid ctime\nx y z 1 2 3 4 5 6 7 8 9\n"), int32(1), 2, int64(3), uint16(4), 5)
	f.Add([]byte("key shmid perms size cpid lpid nattch uid gid cuid cgid ctime\n1 2 3\n\n"), int32(1), 2, int64(3), uint16(4), 5)
	f.Fuzz(func(t *testing.T, table []byte, key int32, id int, size int64, mode uint16, nattch int) {
		segs, err := ParseSegments(table)
		lines := bytes.Count(table, []byte("\n")) + 1
		switch {
		case err != nil && segs != nil:
			t.Fatalf("ParseSegments(%q): %v segments and error %v", table, segs, err)
		case err != nil && !strings.Contains(err.Error(), "/proc/sysvipc/shm"):
			t.Fatalf("ParseSegments(%q): error %q does not name the file", table, err)
		case err == nil && len(segs) > lines-1:
			t.Fatalf("ParseSegments(%q): %d segments from %d lines", table, len(segs), lines)
		}

		// A table as Linux writes it.
		want := Segment{ID: max(int(int32(id)), 0), Key: int(key), Size: int(max(size, 0)), Mode: uint32(mode) & 0o1777,
			CPID: 42, LPID: 43, Attached: max(nattch, 0), UID: 1, GID: 2, CUID: 3, CGID: 4, Ctime: time.Unix(1700000001, 0)}
		table = []byte(shmHeader + shmLine(want) + shmLine(seg))
		segs, err = ParseSegments(table)
		if err != nil || len(segs) != 2 || segs[0] != want || segs[1] != seg {
			t.Fatalf("ParseSegments(%q) = %+v, %v; want %+v and %+v", table, segs, err, want, seg)
		}
		if segs[0].MarkedForRemoval() != (mode&0o1000 != 0) {
			t.Fatalf("mode %o: MarkedForRemoval %v", mode, segs[0].MarkedForRemoval())
		}
	})
}

// A header that names a column twice is an error; before, ParseSegments
// (then Segments) indexed a line one field short by the column's
// position and panicked (found by FuzzSegments).
func TestSegmentsColumnTwice(t *testing.T) {
	table := "key key shmid perms size cpid lpid nattch uid gid cuid cgid ctime\n1 2 3 4 5 6 7 8 9 10 11 12\n"
	if segs, err := ParseSegments([]byte(table)); err == nil || !strings.Contains(err.Error(), "named twice") {
		t.Fatalf("ParseSegments of a header naming key twice = %v, %v; want an error", segs, err)
	}
}

// FuzzParseStat: whatever a process's /proc/PID/stat holds, ParseStat
// does not panic and gives a one-word state when it reads it; and a stat
// as Linux writes it (any command name, parentheses and spaces included)
// gives its state and ppid.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (cat) R 1 1234 1 0 -1 4194304 99 0 0 0\n"), "cat", byte('S'), 1)
	f.Add([]byte("1234 (a) b) Z 77\n"), "a) b", byte('Z'), 77)
	f.Add([]byte("1234 (x)\n"), ") (", byte('R'), 0)
	f.Add([]byte("1234 (x) S\n"), "", byte('D'), -1)
	f.Add([]byte("("), "\n", byte(' '), 1<<30)
	f.Add([]byte(")"), "(", byte(0), 2)
	f.Fuzz(func(t *testing.T, stat []byte, comm string, state byte, ppid int) {
		if st, _, ok := ParseStat(stat); ok && (st == "" || strings.ContainsAny(st, " \t\n\v\f\r")) {
			t.Fatalf("ParseStat(%q): state %q", stat, st)
		}

		// A stat as Linux writes it: the command name is anything (at
		// most 15 bytes, with no NUL), the state one letter.
		if !('A' <= state && state <= 'Z' || 'a' <= state && state <= 'z') {
			return
		}
		comm = strings.ReplaceAll(comm, "\x00", "")
		if len(comm) > 15 {
			comm = comm[:15]
		}
		ppid = max(ppid%(1<<22), 1)
		stat = fmt.Appendf(nil, "%d (%s) %c %d %d %d 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 1099468\n", 4321, comm, state, ppid, 4321, 4321)
		st, p, ok := ParseStat(stat)
		if !ok || st != string(state) || p != ppid {
			t.Fatalf("ParseStat(%q) = %q, %d, %v; want %c, %d", stat, st, p, ok, state, ppid)
		}
	})
}
