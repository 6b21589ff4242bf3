package tools_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// startBroker starts fcbroker with -metrics on a free port and returns it
// with its metrics URL.
func (e *env) startBroker(args ...string) (*simpltest.Proc, string) {
	e.t.Helper()
	p := e.start("fcbroker", append([]string{"-metrics", "127.0.0.1:0"}, args...)...)
	expectLine(e.t, p, fmt.Sprintf("attached FCBROKER pid %d", p.PID()))
	return p, metricsURL(e.t, p)
}

// startSub starts fcsub with args and waits for its "# subscribed" line.
func (e *env) startSub(args ...string) *simpltest.Proc {
	e.t.Helper()
	p := e.start("fcsub", args...)
	if line := p.ReadLine(lineTimeout); !strings.HasPrefix(line, "# subscribed ") {
		e.t.Fatalf("fcsub printed %q first, want \"# subscribed ...\"; stderr %q", line, p.Stderr())
	}
	return p
}

// The publish/subscribe tools as a user runs them: fcbroker, fcsub on a
// pattern and in latest mode, fcpub with -m and with lines of standard
// input, a stopped subscriber that comes back to a drop notice, /metrics
// counting all of it, and clean exits.
func TestPubSubTools(t *testing.T) {
	e := newEnv(t)
	broker, url := e.startBroker()
	all := e.startSub("-t", "plant/#", "-seq")
	temps := e.startSub("plant/+/temp") // the pattern as the argument, as fclocator takes its own
	e.run("", "fcsub", "-t", "a/b", "c/d").failed(t, "fcsub", "one pattern")

	r := e.run("", "fcpub", "-t", "plant/boiler/temp", "-m", "71.5")
	r.ok(t, "fcpub -m")
	if r.stdout != "published plant/boiler/temp seq 1\n" {
		t.Errorf("fcpub -m printed %q", r.stdout)
	}
	r = e.sh(`printf 'one\ntwo\n' | fcpub -t plant/log`)
	r.ok(t, "fcpub from stdin")
	if r.stdout != "published plant/log seq 1\npublished plant/log seq 2\n" {
		t.Errorf("fcpub from stdin printed %q", r.stdout)
	}
	e.run("", "fcpub", "-t", "plant/pump/temp", "-m", "\x01\x02").ok(t, "fcpub binary")
	r = e.run("", "fcpub", "-q", "-t", "plant/pump/temp", "-m", "")
	r.ok(t, "fcpub -q empty")
	if r.stdout != "" {
		t.Errorf("fcpub -q printed %q", r.stdout)
	}
	for _, want := range []string{
		"plant/boiler/temp 1: 71.5", "plant/log 1: one", "plant/log 2: two",
		"plant/pump/temp 1: hex:0102", "plant/pump/temp 2: (empty)",
	} {
		expectLine(t, all, want)
	}
	for _, want := range []string{"plant/boiler/temp: 71.5", "plant/pump/temp: hex:0102", "plant/pump/temp: (empty)"} {
		expectLine(t, temps, want)
	}

	// fcsub -list: a row per subscription.
	r = e.run("", "fcsub", "-list")
	r.ok(t, "fcsub -list")
	rows := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	var listed []string
	for _, row := range rows {
		listed = append(listed, strings.Join(strings.Fields(row), " "))
	}
	want := []string{
		"ID PATTERN MODE PID QUEUE QUEUED DELIVERED DROPPED WAITING",
		fmt.Sprintf("1 plant/# queue %d 1024 0 5 0 yes", all.PID()),
		fmt.Sprintf("2 plant/+/temp queue %d 1024 0 3 0 yes", temps.PID()),
	}
	if len(listed) != len(want) {
		t.Errorf("fcsub -list printed\n%s\nwant rows %q", r.stdout, want)
	} else {
		for i := range want {
			// A subscriber's Next may not be held at the broker at this moment.
			if listed[i] != want[i] && listed[i] != strings.TrimSuffix(want[i], "yes")+"no" {
				t.Errorf("fcsub -list row %d: %q, want %q", i, listed[i], want[i])
			}
		}
	}
	e.run("", "fcsub", "-list", "-t", "x").failed(t, "fcsub", "-list takes no pattern")

	// fcsub -list -json: the same rows as JSON lines.
	r = e.run("", "fcsub", "-list", "-json")
	r.ok(t, "fcsub -list -json")
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for i, want := range []struct {
		pattern   string
		pid       int
		delivered uint64
	}{{"plant/#", all.PID(), 5}, {"plant/+/temp", temps.PID(), 3}} {
		var got map[string]any
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("fcsub -list -json line %d: %v in\n%s", i, err, r.stdout)
		}
		if got["id"] != float64(i+1) || got["pattern"] != want.pattern || got["mode"] != "queue" ||
			got["pid"] != float64(want.pid) || got["queue"] != float64(1024) || got["queued"] != float64(0) ||
			got["delivered"] != float64(want.delivered) || got["dropped"] != float64(0) {
			t.Errorf("fcsub -list -json line %d: %v", i, got)
		}
		if _, ok := got["waiting"].(bool); !ok {
			t.Errorf("fcsub -list -json line %d: waiting %v, want a bool", i, got["waiting"])
		}
		if _, ok := got["host"]; ok {
			t.Errorf("fcsub -list -json line %d: a local subscriber with a host: %v", i, got)
		}
	}
	if dec.More() {
		t.Errorf("fcsub -list -json printed more than two subscriptions:\n%s", r.stdout)
	}

	// A latest-mode subscriber starts with the current values.
	latest := e.startSub("-t", "plant/+/temp", "-latest", "-count", "2")
	expectLine(t, latest, "plant/boiler/temp: 71.5")
	expectLine(t, latest, "plant/pump/temp: (empty)")
	if code := waitExit(t, latest); code != 0 {
		t.Errorf("fcsub -count 2 exited %d: %s", code, latest.Stderr())
	}

	// A subscriber that is stopped while 10 messages come, with a queue
	// of 2, gets the newest 2 and is told of the 8 it lost; or, if its
	// Next was already waiting at the broker when it stopped, the first
	// message (the reply went out at once), the newest 2, and 7 lost.
	slow := e.startSub("-t", "burst", "-queue", "2", "-seq")
	slow.Signal(syscall.SIGSTOP)
	r = e.sh(`seq 1 10 | fcpub -t burst`)
	r.ok(t, "fcpub burst")
	slow.Signal(syscall.SIGCONT)
	burstDelivered, burstDropped := 2.0, 8.0
	if line := slow.ReadLine(lineTimeout); line == "burst 1: 1" {
		burstDelivered, burstDropped = 3, 7
		expectLine(t, slow, "# dropped 7 (total 7)")
	} else if line != "# dropped 8 (total 8)" {
		t.Fatalf("fcsub -queue 2 after a burst of 10 printed %q", line)
	}
	expectLine(t, slow, "burst 9: 9")
	expectLine(t, slow, "burst 10: 10")

	// In latest mode, what newer values replaced is told as skipped, not
	// dropped.
	level := e.start("fcsub", "-t", "level", "-latest", "-seq")
	expectLine(t, level, "# subscribed level, latest value of up to 1024 topics")
	level.Signal(syscall.SIGSTOP)
	e.sh(`seq 1 5 | fcpub -q -t level`).ok(t, "fcpub level")
	level.Signal(syscall.SIGCONT)
	conflated := 4.0
	if line := level.ReadLine(lineTimeout); line == "level 1: 1" {
		conflated = 3
		expectLine(t, level, "# skipped 3 older values (total 3)")
	} else if line != "# skipped 4 older values (total 4)" {
		t.Fatalf("fcsub -latest after 5 values printed %q", line)
	}
	expectLine(t, level, "level 5: 5")
	stop(t, level, syscall.SIGTERM)

	stop(t, all, syscall.SIGTERM)
	stop(t, temps, syscall.SIGINT)
	stop(t, slow, syscall.SIGHUP)
	got := scrapeMetrics(t, url)
	for series, want := range map[string]float64{
		`simpl_pubsub_published_total{topic="plant/boiler/temp"}`:                1,
		`simpl_pubsub_published_total{topic="plant/log"}`:                        2,
		`simpl_pubsub_published_total{topic="plant/pump/temp"}`:                  2,
		`simpl_pubsub_published_total{topic="burst"}`:                            10,
		`simpl_pubsub_delivered_total{topic="plant/boiler/temp"}`:                3, // all, temps, latest
		`simpl_pubsub_delivered_total{topic="plant/log"}`:                        2,
		`simpl_pubsub_delivered_total{topic="plant/pump/temp"}`:                  5,
		`simpl_pubsub_delivered_total{topic="burst"}`:                            burstDelivered,
		`simpl_pubsub_dropped_total{reason="overflow",topic="burst"}`:            burstDropped,
		`simpl_pubsub_dropped_total{reason="closed",topic="burst"}`:              0,
		`simpl_pubsub_subscribers{mode="queue"}`:                                 0,
		`simpl_pubsub_subscribers{mode="latest"}`:                                0,
		`simpl_pubsub_subscriptions_ended_total{reason="unsubscribed"}`:          5,
		`simpl_pubsub_topics`:                                                    5,
		`simpl_pubsub_dropped_total{reason="conflated",topic="level"}`:           conflated,
		`simpl_pubsub_queued_messages`:                                           0,
		`simpl_pubsub_dropped_total{reason="conflated",topic="plant/pump/temp"}`: 0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}

	// The broker dies: a subscriber says so and exits 1.
	orphan := e.startSub("-t", "x")
	kill(t, broker)
	if code := waitExit(t, orphan); code != 1 {
		t.Errorf("fcsub after the broker died: exit %d", code)
	}
	checkOneLine(t, "fcsub", orphan.Stderr(), "subscription ended: broker FCBROKER gone")
	e.clean(2) // the killed broker's FIFOs

	// A clean stop of the broker ends a waiting subscriber the same way.
	broker, _ = e.startBroker()
	orphan = e.startSub("-t", "x")
	stop(t, broker, syscall.SIGTERM)
	if code := waitExit(t, orphan); code != 1 {
		t.Errorf("fcsub after the broker stopped: exit %d", code)
	}
	checkOneLine(t, "fcsub", orphan.Stderr(), "subscription ended: broker FCBROKER gone")
}

// TestPubSubToolErrors: usage and failures, each in one line on stderr.
func TestPubSubToolErrors(t *testing.T) {
	e := newEnv(t)
	e.run("", "fcpub", "-m", "x").failed(t, "fcpub", "usage")
	e.run("", "fcpub", "-t", "a b", "-m", "x").failed(t, "fcpub", "bad topic")
	e.run("", "fcpub", "-t", "a/+", "-m", "x").failed(t, "fcpub", "bad topic")
	e.run("", "fcpub", "-t", "a", "-m", "x").failed(t, "fcpub", `broker "FCBROKER" not found in `+e.dir+" (start fcbroker, or give -wait D to wait for it)")
	e.run("", "fcpub", "-b", "B9", "-wait", "50ms", "-t", "a", "-m", "x").failed(t, "fcpub", `broker "B9" not found in `+e.dir+" (start fcbroker -n B9)")
	e.run("", "fcpub", "-t", "a", "-m", "x", "-wait", "-1s").failed(t, "fcpub", "-wait")
	e.run("", "fcsub").failed(t, "fcsub", "usage")
	e.run("", "fcsub", "-t", "a/#/b").failed(t, "fcsub", "bad topic")
	e.run("", "fcsub", "-t", "a", "-count", "-1").failed(t, "fcsub", "-count")
	e.run("", "fcsub", "-t", "a").failed(t, "fcsub", `broker "FCBROKER" not found in `+e.dir+" (start fcbroker, or give -wait D to wait for it)")
	e.run("", "fcbroker", "-max-topics", "0").failed(t, "fcbroker", "-max-topics")
	e.run("", "fcbroker", "extra").failed(t, "fcbroker", "usage")
	e.run("", "fcbroker", "-metrics", "no-such-host-name.invalid:0").failed(t, "fcbroker", "-metrics")

	b := e.start("fcbroker", "-n", "B2", "-max-data", "4")
	expectLine(t, b, fmt.Sprintf("attached B2 pid %d", b.PID()))
	e.run("", "fcpub", "-b", "B2", "-t", "a", "-m", "12345").failed(t, "fcpub", "too large")
	e.run("", "fcbroker", "-n", "B2").failed(t, "fcbroker", "B2")
	// -wait: a subscriber started before its broker.
	sub := e.start("fcsub", "-b", "B3", "-t", "a", "-wait", "20s", "-count", "1")
	b3 := e.start("fcbroker", "-n", "B3")
	expectLine(t, b3, fmt.Sprintf("attached B3 pid %d", b3.PID()))
	if line := sub.ReadLine(lineTimeout); !strings.HasPrefix(line, "# subscribed a") {
		t.Fatalf("fcsub -wait printed %q", line)
	}
	e.run("", "fcpub", "-b", "B3", "-t", "a", "-m", "hi").ok(t, "fcpub -b B3")
	expectLine(t, sub, "a: hi")
	if code := waitExit(t, sub); code != 0 {
		t.Errorf("fcsub -count 1: exit %d: %s", code, sub.Stderr())
	}
	stop(t, b3, syscall.SIGTERM)
	stop(t, b, syscall.SIGTERM)
}
