package main

import (
	"bufio"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// FuzzParseCPUs: a -cpus list parseCPUs accepts is not empty, holds only
// CPUs of allowed, each once, and reads back the same from cpuListText
// (what cyclictest's -a is given); a refused one is an error naming the
// flag.
func FuzzParseCPUs(f *testing.F) {
	for _, s := range []string{"1", "0-1,3", "0,0,0-0", "3-1", "-1", "1-", "1-2-3", "", ",", "0x1", "+1", " 1", "0-63", "0-9223372036854775807", "99999999999999999999"} {
		f.Add(s, uint64(0b1011))
	}
	f.Add("0-63", ^uint64(0))
	f.Fuzz(func(t *testing.T, s string, mask uint64) {
		var allowed []int
		for cpu := range 64 {
			if mask&(1<<cpu) != 0 {
				allowed = append(allowed, cpu)
			}
		}
		cpus, err := parseCPUs(s, allowed)
		if err != nil {
			if cpus != nil {
				t.Fatalf("parseCPUs(%q) = %v with error %v", s, cpus, err)
			}
			if !strings.Contains(err.Error(), "-cpus "+strconv.Quote(s)) {
				t.Fatalf("parseCPUs(%q): error %q does not give the flag", s, err)
			}
			return
		}
		if len(cpus) == 0 {
			t.Fatalf("parseCPUs(%q) accepted no CPU at all", s)
		}
		seen := map[int]bool{}
		for _, cpu := range cpus {
			if !slices.Contains(allowed, cpu) || seen[cpu] {
				t.Fatalf("parseCPUs(%q, %v) = %v: CPU %d not allowed or twice", s, allowed, cpus, cpu)
			}
			seen[cpu] = true
		}
		back, err := parseCPUs(cpuListText(cpus), allowed)
		if err != nil || !slices.Equal(back, cpus) {
			t.Fatalf("parseCPUs(%q) = %v, written %q, reads back %v, %v", s, cpus, cpuListText(cpus), back, err)
		}
	})
}

// FuzzReadStart: whatever a child's standard input holds, readStart
// (the "go T0" line from fcloop) does not panic, takes one line only,
// and gives T0 only when the line is "go" and a number (with an error,
// its callers ignore the number); a well-formed line
// comes back exactly, whatever follows it.
func FuzzReadStart(f *testing.F) {
	for _, s := range []string{"go 123\n", "go -5\nmore\n", "go 123", "go\n", "go 1 2\n", "Go 1\n", "go 99999999999999999999\n", "\n", "", "  go\t7 \r\n"} {
		f.Add(s, int64(1700000000000000000))
	}
	f.Fuzz(func(t *testing.T, in string, t0 int64) {
		r := bufio.NewReader(strings.NewReader(in))
		got, err := readStart(r)
		line, rest, found := strings.Cut(in, "\n")
		if err == nil {
			f := strings.Fields(line)
			if !found || len(f) != 2 || f[0] != "go" {
				t.Fatalf("readStart(%q) = %d: not a go T0 line", in, got)
			}
			if n, err := strconv.ParseInt(f[1], 10, 64); err != nil || n != got {
				t.Fatalf("readStart(%q) = %d", in, got)
			}
			if left, _ := r.Peek(r.Buffered()); !strings.HasPrefix(rest, string(left)) {
				t.Fatalf("readStart(%q) read past its line: %q left", in, left)
			}
		} else if err.Error() == "" {
			t.Fatalf("readStart(%q): an error with no text", in)
		}

		in = "go " + strconv.FormatInt(t0, 10) + "\n" + in
		r = bufio.NewReader(strings.NewReader(in))
		if got, err := readStart(r); err != nil || got != t0 {
			t.Fatalf("readStart(%q) = %d, %v; want %d", in, got, err, t0)
		}
	})
}

// FuzzConfigEnv: FCLOOP_CONFIG, read from the environment by every child
// role as run reads it (json, then check), gives a config only when its
// numbers are what run itself would give: period, cycles, priorities and
// work in range, and CPUs that can be pinned to (0 to CPU_SETSIZE-1).
func FuzzConfigEnv(f *testing.F) {
	good := config{PeriodNS: 1e6, Cycles: 10, FIFO: 80, CPUs: []int{0, 1}, LoadCPUs: []int{1}, WorkNS: 1000, Parent: 1}
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"period_ns":1000000,"cycles":1}`))
	f.Add([]byte(`{"period_ns":1000000,"cycles":1,"work_ns":1000000}`))
	f.Add([]byte(`{"period_ns":9999,"cycles":1}`))
	f.Add([]byte(`{"period_ns":1e6,"cycles":1}`))
	f.Add([]byte(`{"period_ns":1000000,"cycles":1,"fifo":100}`))
	f.Add([]byte(`{"period_ns":1000000,"cycles":1,"cpus":[1024]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte(`{"period_ns":1000000,"cycles":1,"parent":-1}`))
	f.Fuzz(func(t *testing.T, env []byte) {
		var c config
		if err := json.Unmarshal(env, &c); err != nil {
			return
		}
		if c.check() != nil {
			return
		}
		switch {
		case c.PeriodNS < 10_000 || c.PeriodNS > 60e9:
			t.Fatalf("FCLOOP_CONFIG %s: period %d ns accepted", env, c.PeriodNS)
		case c.Cycles < 1 || c.Cycles > maxCycles:
			t.Fatalf("FCLOOP_CONFIG %s: %d cycles accepted", env, c.Cycles)
		case c.FIFO < 0 || c.FIFO > 99 || c.Runtime < 0 || c.Runtime > 99:
			t.Fatalf("FCLOOP_CONFIG %s: priorities %d, %d accepted", env, c.FIFO, c.Runtime)
		case c.WorkNS < 0 || c.WorkNS >= c.PeriodNS:
			t.Fatalf("FCLOOP_CONFIG %s: work %d ns accepted", env, c.WorkNS)
		}
		for _, cpu := range slices.Concat(c.CPUs, c.LoadCPUs) {
			if cpu < 0 || cpu >= sys.MaxCPU {
				// Before, check let these through, and the mem and
				// hammer roles handed load_cpus to
				// sys.SetProcessAffinity, whose unix.CPUSet.Set
				// panicked for a CPU of -64 or less, took -1 to -63
				// as CPU 63 and ignored 1024 or more
				// (testdata/fuzz/FuzzConfigEnv/negative-cpu-*).
				t.Fatalf("FCLOOP_CONFIG %s: CPU %d accepted", env, cpu)
			}
		}
	})
}
