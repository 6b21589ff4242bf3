package tools_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// waitStderr waits until p has written want on stderr.
func waitStderr(t *testing.T, p *simpltest.Proc, want string) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for !strings.Contains(p.Stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%v wrote %q on stderr within %v, want %q in it", p.Cmd.Args, p.Stderr(), lineTimeout, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkOutage checks a watch's stderr over one outage of the daemon:
// exactly one line saying it went, then one saying it is back.
func checkOutage(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "fclocator: locator FCLOCATOR unreachable (") ||
		!strings.HasSuffix(lines[0], "); waiting for it to return") ||
		lines[1] != "fclocator: locator FCLOCATOR is back; resyncing" {
		t.Errorf("the watch's stderr over one outage: %q, want one line that it went, one that it is back", stderr)
	}
}

// nameLine matches fclocator's line for a name.
var nameLine = regexp.MustCompile(`^(\S+) pid (\d+) uid (\d+) transport (shm|fifo) since (\S+)$`)

// checkName checks that line describes name, attached by pid (0: any) as
// this user, over shared memory, within the last minute.
func checkName(t *testing.T, line, name string, pid int) {
	t.Helper()
	m := nameLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("%q is not \"NAME pid PID uid UID transport T since TIME\"", line)
	}
	since, err := time.Parse(time.RFC3339, m[5])
	if m[1] != name || (pid != 0 && m[2] != strconv.Itoa(pid)) || m[3] != strconv.Itoa(os.Getuid()) ||
		m[4] != "shm" || err != nil || time.Since(since) > time.Minute || time.Until(since) > time.Second {
		t.Fatalf("%q, want %s pid %d uid %d transport shm since a moment ago", line, name, pid, os.Getuid())
	}
}

// fclocator as a user runs it: the daemon, then -locate, -list and a
// -watch that sees a receiver attach, get killed, and the daemon die (it
// says so) and restart (it says so, and resyncs).
func TestFclocator(t *testing.T) {
	e := newEnv(t)
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)

	w := e.start("fclocator", "-watch", "SRV*", "-count", "3")
	r := e.startRecv("SRV1")
	line := w.ReadLine(lineTimeout)
	want := fmt.Sprintf("appeared SRV1 pid %d uid ", r.PID())
	if !strings.HasPrefix(line, want) || !strings.Contains(line, " transport shm since ") {
		t.Fatalf("watch printed %q, want %q...", line, want)
	}

	got := e.run("", "fclocator", "-locate", "SRV1")
	got.ok(t, "fclocator -locate SRV1")
	if !strings.HasPrefix(got.stdout, fmt.Sprintf("SRV1 pid %d ", r.PID())) {
		t.Fatalf("fclocator -locate SRV1: %q", got.stdout)
	}
	got = e.run("", "fclocator", "-list", "SRV*")
	got.ok(t, "fclocator -list")
	if strings.Count(got.stdout, "\n") != 1 || !strings.HasPrefix(got.stdout, "SRV1 ") {
		t.Fatalf("fclocator -list SRV*: %q", got.stdout)
	}
	e.run("", "fclocator", "-locate", "NOSUCH").failed(t, "fclocator", "not found")
	e.run("", "fclocator", "-list", "a", "b").failed(t, "fclocator", "usage")
	e.run("", "fclocator", "-watch", "[").failed(t, "fclocator", "pattern")

	kill(t, r)
	if line := w.ReadLine(lineTimeout); !strings.HasPrefix(line, fmt.Sprintf("disappeared SRV1 pid %d ", r.PID())) {
		t.Fatalf("after SIGKILL the watch printed %q", line)
	}

	// The daemon dies: the watch says so, once. It restarts: the watch
	// says so, carries on and learns what it missed.
	kill(t, d)
	waitStderr(t, w, "fclocator: locator FCLOCATOR unreachable (")
	r2 := e.startRecv("SRV2")
	// A few more looks for the daemon (one every 100 ms), which must stay
	// silent: the pause is what is tested, not a wait for a state, and
	// cannot fail a correct watch; checkOutage counts the lines.
	time.Sleep(300 * time.Millisecond)
	d = e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	waitStderr(t, w, "fclocator: locator FCLOCATOR is back; resyncing\n")
	line = w.ReadLine(lineTimeout)
	if !strings.HasPrefix(line, fmt.Sprintf("appeared SRV2 pid %d ", r2.PID())) || !strings.HasSuffix(line, " (resync)") {
		t.Fatalf("after the daemon's restart the watch printed %q", line)
	}
	if code := waitExit(t, w); code != 0 {
		t.Fatalf("watch -count 3 exited %d: %s", code, w.Stderr())
	}
	checkOutage(t, w.Stderr())
	stop(t, r2, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
	e.clean(2) // the killed SRV1's and the killed daemon's FIFOs
}

// TestFclocatorMetrics: fclocator -metrics serves the locator's names,
// events and held watches, and its channel's counters, over HTTP.
func TestFclocatorMetrics(t *testing.T) {
	e := newEnv(t)
	d := e.start("fclocator", "-metrics", "127.0.0.1:0")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	url := metricsURL(t, d)
	waitScrape(t, url, map[string]float64{
		`simpl_locator_names`:                                1, // itself
		`simpl_locator_events_total{kind="disappeared"}`:     0,
		`simpl_locator_watches`:                              0,
		`simpl_received_messages_total{channel="FCLOCATOR"}`: 0,
	})

	w := e.start("fclocator", "-watch", "SRV*", "-count", "2")
	waitScrape(t, url, map[string]float64{`simpl_locator_watches`: 1})
	r := e.startRecv("SRV1")
	if line := w.ReadLine(lineTimeout); !strings.HasPrefix(line, fmt.Sprintf("appeared SRV1 pid %d ", r.PID())) {
		t.Fatalf("the watch printed %q, want SRV1 appeared", line)
	}
	e.run("", "fclocator", "-locate", "SRV1").ok(t, "fclocator -locate SRV1")
	base := scrapeMetrics(t, url)
	kill(t, r)
	if line := w.ReadLine(lineTimeout); !strings.HasPrefix(line, fmt.Sprintf("disappeared SRV1 pid %d ", r.PID())) {
		t.Fatalf("after SIGKILL the watch printed %q", line)
	}
	if code := waitExit(t, w); code != 0 {
		t.Fatalf("watch -count 2 exited %d: %s", code, w.Stderr())
	}
	after := waitScrape(t, url, map[string]float64{
		`simpl_locator_names`:   1, // the clients and SRV1 are gone
		`simpl_locator_watches`: 0,
	})
	if a, b := after[`simpl_locator_events_total{kind="disappeared"}`], base[`simpl_locator_events_total{kind="disappeared"}`]; a <= b {
		t.Errorf("disappeared events went from %v to %v across SRV1's kill", b, a)
	}
	if n := after[`simpl_locator_events_total{kind="appeared"}`]; n < 3 { // FCLOCATOR, SRV1, the clients
		t.Errorf("appeared events = %v, want at least 3", n)
	}
	if n := after[`simpl_received_messages_total{channel="FCLOCATOR"}`]; n < 2 { // the locate, the watch
		t.Errorf("the daemon received %v messages, want at least 2", n)
	}
	e.run("", "fclocator", "-list", "-metrics", "127.0.0.1:0").failed(t, "fclocator", "-metrics is for the daemon")
	stop(t, d, syscall.SIGTERM)
	e.clean(2) // the killed SRV1's FIFOs (SRV1, YSRV1)
}

// With no daemon, -locate and -list read the FIFO directory and print the
// same lines; a receiver killed with SIGKILL, its FIFOs left behind, is
// not listed. A -watch says that it waits for the daemon, and when the
// daemon comes, that it is there, and what is there.
func TestFclocatorNoDaemon(t *testing.T) {
	e := newEnv(t)
	r1 := e.startRecv("SRV1")
	r2 := e.startRecv("SRV2")
	w := e.start("fclocator", "-watch", "SRV*", "-count", "1")
	waitStderr(t, w, "fclocator: locator FCLOCATOR unreachable (simpl: name not found")

	got := e.run("", "fclocator", "-locate", "SRV1")
	got.ok(t, "fclocator -locate SRV1")
	checkName(t, strings.TrimSuffix(got.stdout, "\n"), "SRV1", r1.PID())
	got = e.run("", "fclocator", "-list", "SRV*")
	got.ok(t, "fclocator -list SRV*")
	lines := strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("fclocator -list SRV*: %q, want SRV1 and SRV2", got.stdout)
	}
	checkName(t, lines[0], "SRV1", r1.PID())
	checkName(t, lines[1], "SRV2", r2.PID())
	got = e.run("", "fclocator", "-list")
	got.ok(t, "fclocator -list")
	lines = strings.Split(strings.TrimSuffix(got.stdout, "\n"), "\n")
	if len(lines) != 4 { // the two fclocators' own names, SRV1, SRV2
		t.Fatalf("fclocator -list: %q, want 4 names", got.stdout)
	}
	byName := map[string]string{}
	for _, l := range lines {
		name, _, _ := strings.Cut(l, " ")
		byName[name] = l
	}
	for _, pid := range []int{w.PID(), e.lastPID()} {
		name := fmt.Sprintf("FCLOC_%d", pid)
		checkName(t, byName[name], name, pid)
	}
	checkName(t, byName["SRV1"], "SRV1", r1.PID())
	e.run("", "fclocator", "-locate", "NOSUCH").failed(t, "fclocator", "not found", "NOSUCH")
	e.run("", "fclocator", "-list", "[").failed(t, "fclocator", "pattern")

	// SIGKILL leaves SRV1's FIFOs behind; its name is not listed.
	kill(t, r1)
	e.waitFile(fmt.Sprintf("SRV1.%d", r1.PID()))
	got = e.run("", "fclocator", "-list", "SRV*")
	got.ok(t, "fclocator -list SRV* after SRV1's kill")
	if strings.Count(got.stdout, "\n") != 1 {
		t.Fatalf("fclocator -list SRV* after SRV1's kill: %q, want SRV2 only", got.stdout)
	}
	checkName(t, strings.TrimSuffix(got.stdout, "\n"), "SRV2", r2.PID())
	e.run("", "fclocator", "-locate", "SRV1").failed(t, "fclocator", "not found", "SRV1")

	// The daemon comes: the watch says so, and learns what is there.
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	line := w.ReadLine(lineTimeout)
	if !strings.HasPrefix(line, fmt.Sprintf("appeared SRV2 pid %d ", r2.PID())) || !strings.HasSuffix(line, " (resync)") {
		t.Fatalf("when the daemon came the watch printed %q", line)
	}
	if code := waitExit(t, w); code != 0 {
		t.Fatalf("watch -count 1 exited %d: %s", code, w.Stderr())
	}
	checkOutage(t, w.Stderr())
	stop(t, r2, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
	e.clean(2) // the killed SRV1's FIFOs
}
