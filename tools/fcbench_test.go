package tools_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// fcbench starts its own receiver and senders and prints one line per
// configuration in the documented format; -json prints the same as JSON.
func TestFcbench(t *testing.T) {
	e := newEnv(t)
	line := regexp.MustCompile(`^transport=(fifo|shm) spin=(true|false) senders=(\d+) size=(\d+) n=(\d+) median_us=[0-9.]+ p99_us=[0-9.]+ mean_us=[0-9.]+ msgs_per_s=[0-9]+( slowest_pct=[0-9]+)? cpu_us_per_msg=[0-9.]+ cpu_pct=[0-9]+$`)
	r := e.run("", "fcbench", "-size", "64", "-n", "300")
	r.ok(t, "fcbench -size 64")
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != 2 {
		t.Fatalf("want a line per transport, got %q", r.stdout)
	}
	for i, want := range []string{"fifo", "shm"} {
		m := line.FindStringSubmatch(out[i])
		if m == nil || m[1] != want || m[3] != "1" || m[4] != "64" || m[5] != "300" {
			t.Errorf("line %d: %q", i, out[i])
		}
	}

	r = e.run("", "fcbench", "-transport", "shm", "-spin=false", "-senders", "3", "-size", "1000", "-n", "2000", "-json")
	r.ok(t, "fcbench -json")
	var got struct {
		Transport  string
		Spin       bool
		Senders    int
		Size       int
		N          int
		MedianUS   float64 `json:"median_us"`
		MsgsPerS   float64 `json:"msgs_per_s"`
		SlowestPct float64 `json:"slowest_pct"`
		CPUPerMsg  float64 `json:"cpu_us_per_msg"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("fcbench -json: %v: %q", err, r.stdout)
	}
	if got.Transport != "shm" || got.Spin || got.Senders != 3 || got.Size != 1000 || got.N != 2000 ||
		got.MedianUS <= 0 || got.MsgsPerS <= 0 || got.SlowestPct <= 0 || got.CPUPerMsg <= 0 {
		t.Errorf("fcbench -json: %+v", got)
	}

	r = e.run("", "fcbench", "-transport", "tcp")
	r.failed(t, "fcbench", "-transport")
}
