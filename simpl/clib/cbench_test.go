package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

var (
	cbenchOnce sync.Once
	cbenchErr  error
)

// buildCbench builds testdata/cbench.c twice, as docs/bench/c-run.sh
// does: against the drop-in library (cbench) and against testdata/csimpl.c,
// the stand-in for C SIMPL's own library (cbench-csimpl).
func buildCbench(t *testing.T) {
	t.Helper()
	built(t)
	cbenchOnce.Do(func() {
		for _, args := range [][]string{
			{"-O2", "-Wall", "-Werror", "-I", "include", "testdata/cbench.c", "-L", binDir, "-lsimpl", "-o", filepath.Join(binDir, "cbench")},
			{"-O2", "-Wall", "-Werror", "-I", "include", "testdata/cbench.c", "testdata/csimpl.c", "-o", filepath.Join(binDir, "cbench-csimpl")},
		} {
			if out, err := exec.Command("cc", args...).CombinedOutput(); err != nil {
				cbenchErr = fmt.Errorf("cc %v: %v\n%s", args, err, out)
				return
			}
		}
	})
	if cbenchErr != nil {
		t.Fatal(cbenchErr)
	}
}

// TestCbench runs the benchmark program with tiny counts, for correctness
// only (timing decides nothing here): built against the drop-in library,
// ported C to ported C through shared memory and through the FIFO wire,
// and built against the C SIMPL stand-in; each also with a receiver that
// waits in select() on whatsMyRecvfd() before each Receive (-select). Each run checks every byte of
// every reply (-check), must exit 0 and report the round trips it was
// asked for, and leave nothing behind (proctest.Dir: no FIFO left; the
// stand-in's segments are removed as C SIMPL's are).
func TestCbench(t *testing.T) {
	buildCbench(t)
	type variant struct {
		name, bin string
		env       []string
		args      []string
	}
	var variants []variant
	for _, v := range []variant{
		{"ported-shm", "cbench", []string{"GOSIMPL_TRANSPORT=auto", "GOSIMPL_SPIN=off"}, nil},
		{"ported-fifo", "cbench", []string{"GOSIMPL_TRANSPORT=fifo", "GOSIMPL_SPIN=off"}, nil},
		{"csimpl-standin", "cbench-csimpl", nil, nil},
	} {
		sel := v
		sel.name, sel.args = v.name+"-select", []string{"-select"}
		variants = append(variants, v, sel)
	}
	for _, v := range variants {
		for _, size := range []int{64, 5000} {
			t.Run(fmt.Sprintf("%s/%dB", v.name, size), func(t *testing.T) {
				dir := proctest.Dir(t)
				args := append([]string{"-size", fmt.Sprint(size), "-n", "200", "-warm", "10", "-check", "-json", "-label", v.name}, v.args...)
				p := start(t, dir, v.env, v.bin, args...)
				out := p.output(t, 60*time.Second)
				p.exits(t, 0)
				var r struct {
					Label    string  `json:"label"`
					Size     int     `json:"size"`
					N        int     `json:"n"`
					Median   float64 `json:"median_us"`
					P99      float64 `json:"p99_us"`
					P999     float64 `json:"p999_us"`
					CPU      float64 `json:"cpu_us_per_msg"`
					MsgsPerS float64 `json:"msgs_per_s"`
				}
				if err := json.Unmarshal(out, &r); err != nil {
					t.Fatalf("output %q: %v; stderr: %s", out, err, p.Stderr())
				}
				if r.Size != size || r.N != 200 {
					t.Errorf("ran %d round trips of %d bytes, want 200 of %d: %s", r.N, r.Size, size, out)
				}
				if r.Label != v.name || r.Median <= 0 || r.P99 < r.Median || r.P999 < r.P99 || r.CPU < 0 || r.MsgsPerS <= 0 {
					t.Errorf("implausible figures: %s", out)
				}
			})
		}
	}
}
