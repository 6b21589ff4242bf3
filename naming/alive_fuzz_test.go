package naming

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FuzzReadProc: readProc parses a process's /proc stat (whose command
// name, in parentheses, the process chose: any bytes) and readBootTime
// parses /proc/stat's btime. Here procDir is a directory of the fuzzer's
// with those files. Whatever they hold, neither crashes; this process,
// alive, is never judged gone but by a zombie's state ('Z' or 'X') as
// the first field after the name; a start time it reads is never before
// the boot time (a tick count is a time after boot); and readBootTime
// reads the first btime line that holds a decimal number, or nothing.
func FuzzReadProc(f *testing.F) {
	real := "27265 (cat) R 27260 27260 19376 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 3123200 3133440 390 18446744073709551615 94786044796928 94786044816809 140731697242288 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	boot := "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1765090000\nprocesses 7\n"
	f.Add([]byte(real), []byte(boot))
	f.Add([]byte("1 (a) b c) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0\n"), []byte("btime 0\n"))
	f.Add([]byte("1 (zombie) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 3 0 100 0\n"), []byte("btime -5\n"))
	f.Add([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615 0\n"), []byte("btime 9223372036854775807\n"))
	// The largest start time whose nanoseconds fit a time.Duration.
	f.Add([]byte("1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 922337203685 0\n"), []byte(boot))
	f.Add([]byte("no parenthesis at all"), []byte("btime x\nbtime 12\n"))
	f.Add([]byte("1 (short) R 1 2"), []byte(""))
	f.Add([]byte(")"), []byte("btime "))
	dir := f.TempDir()
	pid := os.Getpid()
	p := strconv.Itoa(pid)
	task := filepath.Join(dir, p, "task", p)
	if err := os.MkdirAll(task, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, stat, procStat []byte) {
		if err := os.WriteFile(filepath.Join(task, "stat"), stat, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), procStat, 0o644); err != nil {
			t.Fatal(err)
		}
		was := procDir
		procDir = dir
		defer func() { procDir = was }()

		bt := readBootTime()
		var want time.Time
		for _, line := range bytes.Split(procStat, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
				if s, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err == nil {
					want = time.Unix(s, 0)
					break
				}
			}
		}
		if !bt.Equal(want) {
			t.Fatalf("/proc/stat %q: boot time %v, want %v", procStat, bt, want)
		}

		pi := readProc(pid)
		if !pi.exists {
			i := bytes.LastIndexByte(stat, ')')
			fields := bytes.Fields(stat[i+1:])
			if i < 0 || len(fields) == 0 || (fields[0][0] != 'Z' && fields[0][0] != 'X') {
				t.Fatalf("stat %q: this live process judged gone", stat)
			}
		}
		if !pi.started.IsZero() && pi.started.Before(bootTime()) {
			t.Fatalf("stat %q: started %v, before the boot at %v", stat, pi.started, bootTime())
		}
	})
}

// FuzzSinceBoot: sinceBoot turns a start time in clock ticks after boot,
// read from /proc, into a duration: never negative, whatever the count
// (it saturates rather than overflow), and never smaller for a later
// tick, so a start time read from a stat is never placed before the boot.
func FuzzSinceBoot(f *testing.F) {
	for _, ticks := range []uint64{0, 1, 99, 100, 3123200, 922337203700, 1 << 63, 1<<64 - 1} {
		f.Add(ticks)
	}
	f.Fuzz(func(t *testing.T, ticks uint64) {
		d := sinceBoot(ticks)
		if d < 0 {
			t.Fatalf("sinceBoot(%d) = %v, negative", ticks, d)
		}
		if ticks < 1<<64-1 {
			if next := sinceBoot(ticks + 1); next < d {
				t.Fatalf("sinceBoot(%d) = %v, less than sinceBoot(%d) = %v", ticks+1, next, ticks, d)
			}
		}
	})
}
