package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fcbench starts its own receiver and senders and prints a table, a row
// per configuration, fifo and shm side by side per size; -json prints
// the same figures as JSON.
func TestFcbench(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "fcbench", "-size", "64", "-n", "300")
	r.ok(t, "fcbench -size 64")
	out := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	header := regexp.MustCompile(`^SIZE +TRANSPORT +SPIN +N +MEDIAN µs +P99 µs +MEAN µs +MSGS/S +CPU µs/MSG +CPU % +VS FIFO$`)
	rows := []*regexp.Regexp{
		regexp.MustCompile(`^64 B +fifo +- +300 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+$`),
		regexp.MustCompile(`^64 B +shm +on +300 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9.]+x$`),
	}
	if len(out) != 3 || !header.MatchString(out[0]) {
		t.Fatalf("fcbench printed\n%s\nwant a header and a row per transport", r.stdout)
	}
	for i, re := range rows {
		if !re.MatchString(out[i+1]) {
			t.Errorf("row %d: %q, want %v", i+1, out[i+1], re)
		}
	}
	// The columns line up: each header title ends where its cells end
	// (numbers are aligned right).
	for _, title := range []string{"N", "MEDIAN µs", "MSGS/S", "CPU %"} {
		end := len([]rune(out[0][:strings.Index(out[0], "  "+title+" ")+2])) + len([]rune(title))
		for _, row := range out[1:] {
			if rr := []rune(row); len(rr) < end || rr[end-1] == ' ' || (len(rr) > end && rr[end] != ' ') {
				t.Errorf("column %q does not end at %d in %q", title, end, row)
			}
		}
	}

	// -json: spin only for shm, slowest_pct with several senders (0 is
	// a value).
	r = e.run("", "fcbench", "-size", "64", "-n", "200", "-json")
	r.ok(t, "fcbench -json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Contains(lines[0], `"spin"`) || !strings.Contains(lines[1], `"spin":true`) ||
		strings.Contains(r.stdout, "slowest_pct") {
		t.Errorf("fcbench -json printed %q; want spin for shm only, and no slowest_pct with one sender", r.stdout)
	}
	r = e.run("", "fcbench", "-transport", "shm", "-spin=false", "-senders", "3", "-size", "1000", "-n", "2000", "-json")
	r.ok(t, "fcbench -json")
	var got struct {
		Transport  string
		Spin       *bool
		Senders    int
		Size       int
		N          int
		MedianUS   float64  `json:"median_us"`
		MsgsPerS   float64  `json:"msgs_per_s"`
		SlowestPct *float64 `json:"slowest_pct"`
		CPUPerMsg  float64  `json:"cpu_us_per_msg"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("fcbench -json: %v: %q", err, r.stdout)
	}
	if got.Transport != "shm" || got.Spin == nil || *got.Spin || got.Senders != 3 || got.Size != 1000 || got.N != 2000 ||
		got.MedianUS <= 0 || got.MsgsPerS <= 0 || got.SlowestPct == nil || got.CPUPerMsg <= 0 {
		t.Errorf("fcbench -json: %+v", got)
	}

	// Several senders: a SLOWEST % column, and the spin setting in SPIN.
	r = e.run("", "fcbench", "-transport", "shm", "-spin=false", "-senders", "2", "-size", "4096", "-n", "200")
	r.ok(t, "fcbench -senders 2")
	out = strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(out) != 2 || !strings.Contains(out[0], " SLOWEST % ") ||
		!regexp.MustCompile(`^4 KiB +shm +off +200 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9.]+ +[0-9]+ +[0-9]+$`).MatchString(out[1]) {
		t.Errorf("fcbench -senders 2 printed\n%s", r.stdout)
	}

	r = e.run("", "fcbench", "-transport", "tcp")
	r.failed(t, "fcbench", "-transport")
	r = e.run("", "fcbench", "-senders", "0")
	r.failed(t, "fcbench", "-senders 0")
}

// fcbench -plot draws the latencies into an image; a file type it cannot
// draw is refused before anything is measured.
func TestFcbenchPlot(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "lat.png")
	r := e.run("", "fcbench", "-size", "64", "-n", "200", "-plot", file)
	r.ok(t, "fcbench -plot")
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("fcbench -plot made no %s: %v", file, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("%s is %v", file, b)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("fcbench -plot left %d files in %s, want the plot only", len(des), dir)
	}
	for _, bad := range []string{filepath.Join(dir, "lat.txt"), filepath.Join(dir, "no", "lat.png")} {
		r := e.run("", "fcbench", "-plot", bad)
		r.failed(t, "fcbench", "-plot "+bad)
		if r.stdout != "" {
			t.Errorf("fcbench -plot %s measured: %q", bad, r.stdout)
		}
	}
}

// fcbench -progress says on stderr which configuration it measures, and
// every D how far it is; without -progress (stderr not a terminal) it
// says nothing.
func TestFcbenchProgress(t *testing.T) {
	e := newEnv(t)
	r := e.run("", "fcbench", "-size", "64", "-n", "3000", "-progress", "1ms")
	if r.code != 0 {
		t.Fatalf("fcbench -progress: exit %d, stderr %q", r.code, r.stderr)
	}
	starts := []string{"fcbench: 1 of 2: fifo, 64 B, 3000 round trips per sender", "fcbench: 2 of 2: shm, 64 B, 3000 round trips per sender"}
	running := regexp.MustCompile(`^fcbench: (fifo|shm), 64 B: [0-9]+ of 3000 round trips in [0-9.]+m?s$`)
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
		if strings.Contains(line, " of 2: ") {
			got = append(got, line)
		} else if !running.MatchString(line) {
			t.Errorf("fcbench -progress wrote %q", line)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(starts) {
		t.Errorf("fcbench -progress announced %q, want %q", got, starts)
	}
	if n := len(strings.Split(strings.TrimSpace(r.stdout), "\n")); n != 3 {
		t.Errorf("fcbench -progress printed %d lines on stdout, want the table's 3", n)
	}
}

// The plotting library is the tools' alone (fcbench, fcloop): nothing a library user
// imports depends on it.
func TestPlotOutOfCore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "./simpl/...", "./transport/...", "./naming/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "gonum.org/") || strings.HasPrefix(pkg, "github.com/gosimpl/gosimpl/tools") {
			t.Errorf("the library depends on %s", pkg)
		}
	}
}
