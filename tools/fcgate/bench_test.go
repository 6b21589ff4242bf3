package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// fcbench across hosts, as docs/benchmarks.md runs it (here on one
// machine, through a gateway serving another host name): -remote
// measures Sends to a remote fcbench -serve through the gateway, -nats
// raw request/reply through the same server to fcbench -serve-nats; each
// echo is checked, so the rows are of right answers.
func TestBenchRemote(t *testing.T) {
	dir := proctest.Dir(t)
	gw, line := startGate(t, local(t, dir, "me", "fcgate", "-host", "other", "-listen", "127.0.0.1:0"))
	url := line[strings.LastIndex(line, " ")+1:]
	srv := proctest.StartCmd(t, local(t, dir, "me", "fcbench", "-serve", "BENCH"))
	srv.Expect("ready", lineTimeout)
	raw := proctest.StartCmd(t, local(t, dir, "me", "fcbench", "-serve-nats", url))
	raw.Expect("ready", lineTimeout)

	r := runCmd(t, local(t, dir, "me", "fcbench", "-remote", "other:BENCH", "-nats", url, "-size", "100", "-n", "50", "-senders", "2", "-json"))
	if r.code != 0 {
		t.Fatalf("fcbench -remote -nats: exit %d, stderr %q", r.code, r.stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row struct {
			Transport, Target, URL string
			Size, N, Senders       int
			MedianUS               float64 `json:"median_us"`
			MsgsPerS               float64 `json:"msgs_per_s"`
		}
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatalf("fcbench -json line %q: %v", l, err)
		}
		if row.Size != 100 || row.N != 50 || row.Senders != 2 || row.MedianUS <= 0 || row.MsgsPerS <= 0 {
			t.Errorf("fcbench row %q", l)
		}
		got = append(got, row.Transport+" "+row.Target+row.URL)
	}
	if want := []string{"net other:BENCH", "nats " + url}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("fcbench rows %q, want %q", got, want)
	}
	// The table names the comparison.
	r = runCmd(t, local(t, dir, "me", "fcbench", "-remote", "other:BENCH", "-nats", url, "-size", "64", "-n", "20"))
	if r.code != 0 || !strings.Contains(r.stdout, "VS NATS") || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("fcbench table: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A name nobody serves fails at once, clearly.
	r = runCmd(t, local(t, dir, "me", "fcbench", "-remote", "other:NOPE", "-size", "64", "-n", "20"))
	if r.code != 1 || !strings.Contains(r.stderr, "name not found") {
		t.Errorf("fcbench -remote other:NOPE: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, p := range []*proctest.Proc{srv, raw} {
		p.Signal(15)
		if err := p.Wait(runTimeout); err != nil {
			t.Errorf("fcbench -serve: %v", err)
		}
	}
	stopGate(t, gw)
}
