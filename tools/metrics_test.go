package tools_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// startRecvMetrics starts fcrecv -metrics 127.0.0.1:0 with args and
// returns it with the URL it printed.
func (e *env) startRecvMetrics(name string, args ...string) (*simpltest.Proc, string) {
	e.t.Helper()
	p := e.start("fcrecv-metrics", append([]string{"-n", name, "-metrics", "127.0.0.1:0"}, args...)...)
	expectLine(e.t, p, fmt.Sprintf("attached %s pid %d", name, p.PID()))
	return p, metricsURL(e.t, p)
}

// metricsURL reads the "metrics http://127.0.0.1:PORT/metrics" line a
// command started with -metrics 127.0.0.1:0 prints, and returns the URL.
func metricsURL(t *testing.T, p *simpltest.Proc) string {
	t.Helper()
	line := p.ReadLine(lineTimeout)
	url, ok := strings.CutPrefix(line, "metrics http://127.0.0.1:")
	if !ok || !strings.HasSuffix(url, "/metrics") {
		t.Fatalf("%v printed %q, want \"metrics http://127.0.0.1:PORT/metrics\"", p.Cmd.Args, line)
	}
	if port, err := strconv.Atoi(strings.TrimSuffix(url, "/metrics")); err != nil || port <= 0 || port > 65535 {
		t.Fatalf("%v printed %q: no port", p.Cmd.Args, line)
	}
	return strings.TrimPrefix(line, "metrics ")
}

// scrapeMetrics GETs url and returns its series, each line of the text
// format as name{labels} mapped to its value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: lineTimeout}).Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s, %v: %s", url, resp.Status, err, body)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape %s: bad line %q", url, line)
		}
		out[line[:i]] = v
	}
	return out
}

// waitScrape scrapes url until every series in want has its value (the
// receiver counts an answer just after its sender is woken), failing the
// test after lineTimeout; it returns the last scrape.
func waitScrape(t *testing.T, url string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for {
		got := scrapeMetrics(t, url)
		var diff []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, fmt.Sprintf("%s = %v (present %v), want %v", k, g, ok, v))
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			slices.Sort(diff)
			t.Fatalf("scrape %s after %v:\n%s", url, lineTimeout, strings.Join(diff, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRecvMetrics: fcrecv -metrics serves /metrics over HTTP while it
// receives, and its counters move by exactly what fcsend sent.
func TestRecvMetrics(t *testing.T) {
	e := newEnv(t)
	srv, url := e.startRecvMetrics("SRV", "-reply", "0123456789")
	got := waitScrape(t, url, map[string]float64{
		`simpl_received_messages_total{channel="SRV"}`: 0,
		`simpl_blocked_senders{channel="SRV"}`:         0,
	})
	// The runtime's and the process's metrics come along.
	for _, name := range []string{"go_goroutines", "process_open_fds"} {
		if _, ok := got[name]; !ok {
			t.Errorf("scrape has no %s", name)
		}
	}

	for _, msg := range []string{"hello", "hi"} {
		r := e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-m", msg)
		r.ok(t, "fcsend -m "+msg)
		expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: %s", e.lastPID(), msg))
	}
	e.run("", "fcsend", "-r", "SRV", "-p", "4").ok(t, "fcsend -p 4")
	expectLine(t, srv, "proxy 4")
	e.run("", "fcsend", "-n", "CLI", "-r", "SRV", "-max-reply", "4", "-m", "x").failed(t, "fcsend", "reply too large")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", e.lastPID()))
	if line := srv.ReadLine(lineTimeout); !strings.HasPrefix(line, "reply to CLI failed: ") {
		t.Errorf("fcrecv printed %q, want its reply to CLI reported failed", line)
	}
	got = waitScrape(t, url, map[string]float64{
		`simpl_received_messages_total{channel="SRV"}`:                        3,
		`simpl_received_bytes_total{channel="SRV"}`:                           8, // hello, hi, x
		`simpl_received_proxies_total{channel="SRV"}`:                         1,
		`simpl_replies_total{channel="SRV",outcome="reply"}`:                  2,
		`simpl_replies_total{channel="SRV",outcome="reply_error"}`:            0,
		`simpl_errors_total{channel="SRV",kind="reply_too_large",op="reply"}`: 1,
		`simpl_receive_to_reply_seconds_count{channel="SRV"}`:                 3,
		`simpl_receive_to_reply_seconds_bucket{channel="SRV",le="+Inf"}`:      3,
		`simpl_blocked_senders{channel="SRV"}`:                                0,
	})
	if s := got[`simpl_receive_to_reply_seconds_sum{channel="SRV"}`]; !(s > 0 && s < 60) {
		t.Errorf("receive to reply took %v s in all, want more than 0 and less than a minute", s)
	}
	stop(t, srv, syscall.SIGTERM)
}

// TestRecvMetricsBlocked: a sender waiting on a slow fcrecv shows as
// blocked until fcrecv is stopped.
func TestRecvMetricsBlocked(t *testing.T) {
	e := newEnv(t)
	srv, url := e.startRecvMetrics("SRV", "-delay", "1h")
	cli := e.start("fcsend", "-n", "CLI", "-r", "SRV", "-m", "x")
	expectLine(t, srv, fmt.Sprintf("message from CLI pid %d: x", cli.PID()))
	waitScrape(t, url, map[string]float64{
		`simpl_received_messages_total{channel="SRV"}`: 1,
		`simpl_blocked_senders{channel="SRV"}`:         1,
	})
	stop(t, srv, syscall.SIGTERM)
	if code := waitExit(t, cli); code != 1 {
		t.Errorf("fcsend exited %d when its receiver detached, want 1", code)
	}
}

// TestRecvMetricsBadAddress: an address fcrecv cannot listen on fails it
// before it attaches, with one line.
func TestRecvMetricsBadAddress(t *testing.T) {
	e := newEnv(t)
	e.run("", "fcrecv-metrics", "-n", "SRV", "-metrics", "no-port").failed(t, "fcrecv", "-metrics no-port")
	if left := e.fifos(); len(left) > 0 {
		t.Errorf("fcrecv left %v", left)
	}
}

// TestRecvMetricsNotBuiltIn: the default fcrecv (no -tags metrics) fails
// -metrics with one line that says how to get it, before it attaches.
func TestRecvMetricsNotBuiltIn(t *testing.T) {
	e := newEnv(t)
	e.run("", "fcrecv", "-n", "SRV", "-metrics", "127.0.0.1:0").failed(t, "fcrecv", "-metrics 127.0.0.1:0", "go install -tags metrics ./tools/fcrecv")
	if left := e.fifos(); len(left) > 0 {
		t.Errorf("fcrecv left %v", left)
	}
}
