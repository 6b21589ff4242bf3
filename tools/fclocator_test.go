package tools_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
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

// The lines a watch writes on stderr about the daemon, in e's directory.
func noDaemonLine(e *env) string {
	return "fclocator: no locator FCLOCATOR is running in " + e.dir + "; start one with: fclocator &; waiting for it\n"
}

const (
	goneStart  = "fclocator: locator FCLOCATOR unreachable ("
	goneEnd    = "); waiting for it to return (or start one with: fclocator &)"
	runningNow = "fclocator: locator FCLOCATOR is running; resyncing"
	backNow    = "fclocator: locator FCLOCATOR is back; resyncing"
)

// checkOutage checks a watch's stderr over one outage of the daemon:
// exactly one line saying it went (or was not there, when absent), then
// one saying it is back, with fclocator's prefix only.
func checkOutage(t *testing.T, e *env, stderr string, absent bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	var ok bool
	if absent {
		ok = len(lines) == 2 && lines[0]+"\n" == noDaemonLine(e) && lines[1] == runningNow
	} else {
		ok = len(lines) == 2 && strings.HasPrefix(lines[0], goneStart) && strings.HasSuffix(lines[0], goneEnd) &&
			!strings.Contains(lines[0], "simpl: ") && lines[1] == backNow
	}
	if !ok {
		t.Errorf("the watch's stderr over one outage: %q, want one line that it went (absent %v), one that it is back", stderr, absent)
	}
}

// listRows checks that out is fclocator's name table (-list, -locate):
// its header, then rows, which it returns split into their columns.
func listRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"NAME", "PID", "UID", "TRANSPORT", "SINCE"}) {
		t.Fatalf("fclocator's table starts %q, want its header NAME PID UID TRANSPORT SINCE; all:\n%s", lines[0], out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	// The columns line up: each starts where the header's does.
	for _, l := range lines[1:] {
		for _, col := range []string{"PID", "UID", "TRANSPORT", "SINCE"} {
			at := strings.Index(lines[0], col)
			if at > len(l) || at == 0 || l[at-1] != ' ' || l[at] == ' ' {
				t.Errorf("column %s starts at %d in the header %q but not in the row %q", col, at, lines[0], l)
			}
		}
	}
	return rows
}

// checkInfo checks that cols (NAME PID UID TRANSPORT SINCE) describe
// name, attached by pid (0: any) as this user, over shared memory, within
// the last minute.
func checkInfo(t *testing.T, cols []string, name string, pid int) {
	t.Helper()
	if len(cols) != 5 {
		t.Fatalf("%q, want NAME PID UID TRANSPORT SINCE", cols)
	}
	since, err := time.Parse(time.RFC3339, cols[4])
	if cols[0] != name || (pid != 0 && cols[1] != strconv.Itoa(pid)) || cols[2] != strconv.Itoa(os.Getuid()) ||
		cols[3] != "shm" || err != nil || time.Since(since) > time.Minute || time.Until(since) > time.Second {
		t.Fatalf("%q, want %s pid %d uid %d transport shm since a moment ago", cols, name, pid, os.Getuid())
	}
}

// rowsByName indexes table rows by their NAME.
func rowsByName(rows [][]string) map[string][]string {
	m := map[string][]string{}
	for _, r := range rows {
		m[r[0]] = r
	}
	return m
}

// expectWatchHeader reads the header of a watch's table.
func expectWatchHeader(t *testing.T, w *simpltest.Proc) {
	t.Helper()
	line := w.ReadLine(lineTimeout)
	if got := strings.Fields(line); !slices.Equal(got, []string{"TIME", "EVENT", "NAME", "PID", "UID", "TRANSPORT", "SINCE"}) {
		t.Fatalf("the watch's first line is %q, want its header", line)
	}
}

// watchEvent is one line of a watch's table.
type watchEvent struct {
	line   string
	at     time.Time
	event  string
	info   []string // NAME PID UID TRANSPORT SINCE
	resync bool
}

func parseWatch(t *testing.T, line string) watchEvent {
	t.Helper()
	f := strings.Fields(line)
	ev := watchEvent{line: line}
	if len(f) == 8 && f[7] == "(resync)" {
		ev.resync = true
		f = f[:7]
	}
	if len(f) != 7 {
		t.Fatalf("the watch printed %q, want TIME EVENT NAME PID UID TRANSPORT SINCE [(resync)]", line)
	}
	at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", f[0])
	if err != nil {
		t.Fatalf("the watch printed %q: its TIME: %v", line, err)
	}
	ev.at, ev.event, ev.info = at, f[1], f[2:]
	return ev
}

// expectEvent reads a watch's next event and checks that it is event for
// name, attached by pid, heard (its TIME) after after and before now.
func expectEvent(t *testing.T, w *simpltest.Proc, event, name string, pid int, resync bool, after time.Time) watchEvent {
	t.Helper()
	ev := parseWatch(t, w.ReadLine(lineTimeout))
	if ev.event != event || ev.info[0] != name || ev.info[1] != strconv.Itoa(pid) || ev.resync != resync {
		t.Fatalf("the watch printed %q, want %s %s pid %d (resync %v)", ev.line, event, name, pid, resync)
	}
	checkInfo(t, ev.info, name, pid)
	if ev.at.Before(after.Truncate(time.Millisecond)) || ev.at.After(time.Now()) {
		t.Fatalf("the watch printed %q: its TIME is not between %v and now", ev.line, after)
	}
	return ev
}

// expectEventEither is expectEvent for an event that may come in a resync
// or live.
func expectEventEither(t *testing.T, w *simpltest.Proc, event, name string, pid int, after time.Time) watchEvent {
	t.Helper()
	ev := parseWatch(t, w.ReadLine(lineTimeout))
	if ev.event != event || ev.info[0] != name || ev.info[1] != strconv.Itoa(pid) {
		t.Fatalf("the watch printed %q, want %s %s pid %d", ev.line, event, name, pid)
	}
	checkInfo(t, ev.info, name, pid)
	if ev.at.Before(after.Truncate(time.Millisecond)) || ev.at.After(time.Now()) {
		t.Fatalf("the watch printed %q: its TIME is not between %v and now", ev.line, after)
	}
	return ev
}

// fclocator as a user runs it: the daemon, then -locate, -list and a
// -watch that sees a receiver attach, get killed, and the daemon die (it
// says so) and restart (it says so, and resyncs). The name or pattern may
// come before or after the other flags, and in the older -flag=VALUE form.
func TestFclocator(t *testing.T) {
	e := newEnv(t)
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)

	w := e.start("fclocator", "-watch", "SRV*", "-count", "3") // the pattern before a flag
	expectWatchHeader(t, w)
	before := time.Now()
	r := e.startRecv("SRV1")
	// The header is printed before the watch's first look at the
	// daemon: SRV1 may attach before it, and come in its snapshot (a
	// resync) rather than live (seen in CI).
	expectEventEither(t, w, "appeared", "SRV1", r.PID(), before)

	for _, args := range [][]string{{"-locate", "SRV1"}, {"-locate=SRV1"}, {"-n", "FCLOCATOR", "-locate", "SRV1"}} {
		got := e.run("", "fclocator", args...)
		got.ok(t, fmt.Sprint("fclocator ", args))
		rows := listRows(t, got.stdout)
		if len(rows) != 1 {
			t.Fatalf("fclocator %q: %q, want one row", args, got.stdout)
		}
		checkInfo(t, rows[0], "SRV1", r.PID())
	}
	for _, args := range [][]string{{"-list", "SRV*"}, {"-list=SRV*"}, {"SRV*", "-list"}} {
		got := e.run("", "fclocator", args...)
		got.ok(t, fmt.Sprint("fclocator ", args))
		rows := listRows(t, got.stdout)
		if len(rows) != 1 {
			t.Fatalf("fclocator %q: %q, want SRV1 only", args, got.stdout)
		}
		checkInfo(t, rows[0], "SRV1", r.PID())
	}
	// -list shows every name but the one it attached itself to ask.
	got := e.run("", "fclocator", "-list")
	got.ok(t, "fclocator -list")
	byName := rowsByName(listRows(t, got.stdout))
	own := fmt.Sprintf("FCLOC_%d", e.lastPID())
	watcher := fmt.Sprintf("FCLOC_%d", w.PID())
	if _, ok := byName[own]; ok || len(byName) != 3 {
		t.Fatalf("fclocator -list: %q, want FCLOCATOR, %s and SRV1, not its own %s", got.stdout, watcher, own)
	}
	checkInfo(t, byName["FCLOCATOR"], "FCLOCATOR", d.PID())
	checkInfo(t, byName[watcher], watcher, w.PID())
	checkInfo(t, byName["SRV1"], "SRV1", r.PID())

	e.run("", "fclocator", "-locate", "NOSUCH").failed(t, "fclocator", "not found", `"NOSUCH"`)
	e.run("", "fclocator", "-list", "a", "b").failed(t, "fclocator", "unexpected arguments", "usage")
	e.run("", "fclocator", "-watch", "[").failed(t, "fclocator", "pattern", `"["`)

	before = time.Now()
	kill(t, r)
	expectEvent(t, w, "disappeared", "SRV1", r.PID(), false, before)

	// The daemon dies: the watch says so, once. It restarts: the watch
	// says so, carries on and learns what it missed.
	kill(t, d)
	waitStderr(t, w, goneStart)
	r2 := e.startRecv("SRV2")
	// A few more looks for the daemon (one every 100 ms), which must stay
	// silent: the pause is what is tested, not a wait for a state, and
	// cannot fail a correct watch; checkOutage counts the lines.
	time.Sleep(300 * time.Millisecond)
	before = time.Now()
	d = e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	waitStderr(t, w, backNow+"\n")
	expectEvent(t, w, "appeared", "SRV2", r2.PID(), true, before)
	if code := waitExit(t, w); code != 0 {
		t.Fatalf("watch -count 3 exited %d: %s", code, w.Stderr())
	}
	checkOutage(t, e, w.Stderr(), false)
	stop(t, r2, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
	e.clean(2) // the killed SRV1's and the killed daemon's FIFOs
}

// A watch leaves out the names the tools attach for themselves (a
// fclocator's FCLOC_PID, a fcsend's fcsend_PID) unless given -all; a name
// a person chose that only looks like one of them is shown. -count counts
// the events shown.
func TestFclocatorWatchFilter(t *testing.T) {
	e := newEnv(t)
	// Before the daemon: the watch's first events are the names already
	// there, with the time they appeared.
	before := time.Now()
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	all := e.start("fclocator", "-watch", "-all")
	expectWatchHeader(t, all)
	expectEvent(t, all, "appeared", "FCLOCATOR", d.PID(), true, before)
	// Its own name: in the first snapshot, or just after it as an event
	// of its own (the daemon learns of a name through inotify, so one
	// attached as the watch starts may miss its snapshot).
	expectEventEither(t, all, "appeared", fmt.Sprintf("FCLOC_%d", all.PID()), all.PID(), before)
	def := e.start("fclocator", "-count", "4", "-watch") // no pattern: every name
	expectWatchHeader(t, def)
	// Its first events, the names already there, leave out its own and
	// the other watch's.
	expectEvent(t, def, "appeared", "FCLOCATOR", d.PID(), true, before)
	expectEvent(t, all, "appeared", fmt.Sprintf("FCLOC_%d", def.PID()), def.PID(), false, before)

	// A fcsend waits for LATER: its name lives until LATER answers.
	s := e.start("fcsend", "-wait", "20s", "-r", "LATER", "-m", "x")
	sender, defName := fmt.Sprintf("fcsend_%d", s.PID()), fmt.Sprintf("FCLOC_%d", def.PID())
	expectEvent(t, all, "appeared", sender, s.PID(), false, before)
	lookalike := e.startRecv("fcsend_1") // a person's name: pid 1 did not attach it
	expectEvent(t, all, "appeared", "fcsend_1", lookalike.PID(), false, before)
	later := e.startRecv("LATER")
	expectLine(t, s, "x")
	if code := waitExit(t, s); code != 0 {
		t.Fatalf("fcsend exited %d: %s", code, s.Stderr())
	}
	// LATER came and the sender went, in either order: the daemon may
	// see both in one look at the directory.
	awaitEvents := func(want ...string) {
		t.Helper()
		seen := map[string]bool{}
		for len(seen) < len(want) {
			ev := parseWatch(t, all.ReadLine(lineTimeout))
			what := ev.event + " " + ev.info[0]
			if what == "disappeared "+defName { // the default watch exits after its fourth event
				continue
			}
			if !slices.Contains(want, what) || seen[what] {
				t.Fatalf("the -all watch printed %q, want %q", ev.line, want)
			}
			seen[what] = true
		}
	}
	awaitEvents("appeared LATER", "disappeared "+sender)
	stop(t, later, syscall.SIGTERM)
	awaitEvents("disappeared LATER")

	// The default watch saw the look-alike and LATER come and LATER go,
	// in order, and nothing of the tools' own names.
	var seen []string
	for range 3 {
		ev := parseWatch(t, def.ReadLine(lineTimeout))
		seen = append(seen, ev.event+" "+ev.info[0])
	}
	want := []string{"appeared fcsend_1", "appeared LATER", "disappeared LATER"}
	if !slices.Equal(seen, want) {
		t.Fatalf("the default watch printed %q, want %q", seen, want)
	}
	if code := waitExit(t, def); code != 0 || def.Stderr() != "" {
		t.Fatalf("watch -count 4 exited %d: %q", code, def.Stderr())
	}
	stop(t, all, syscall.SIGTERM)
	stop(t, lookalike, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
}

// -json prints one JSON object per name or event, with the table's
// fields.
func TestFclocatorJSON(t *testing.T) {
	e := newEnv(t)
	r := e.startRecv("SRV1")
	type info struct {
		Name      string    `json:"name"`
		PID       int       `json:"pid"`
		UID       int       `json:"uid"`
		Transport string    `json:"transport"`
		Since     time.Time `json:"since"`
		Time      time.Time `json:"time"`
		Event     string    `json:"event"`
		Resync    bool      `json:"resync"`
	}
	decode := func(line string) info {
		t.Helper()
		var i info
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&i); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if i.Name != "SRV1" || i.PID != r.PID() || i.UID != os.Getuid() || i.Transport != "shm" || time.Since(i.Since) > time.Minute {
			t.Fatalf("%q, want SRV1's owner", line)
		}
		return i
	}
	for _, args := range [][]string{{"-json", "-locate", "SRV1"}, {"-list", "SRV*", "-json"}} {
		got := e.run("", "fclocator", args...)
		got.ok(t, fmt.Sprint("fclocator ", args))
		if strings.Count(got.stdout, "\n") != 1 {
			t.Fatalf("fclocator %q: %q, want one line", args, got.stdout)
		}
		if i := decode(got.stdout); !i.Time.IsZero() || i.Event != "" {
			t.Fatalf("fclocator %q: %q, want no event fields", args, got.stdout)
		}
	}
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	before := time.Now()
	w := e.start("fclocator", "-watch", "-json", "-count", "1", "SRV*")
	i := decode(w.ReadLine(lineTimeout))
	if i.Event != "appeared" || !i.Resync || i.Time.Before(before) || i.Time.After(time.Now()) {
		t.Fatalf("fclocator -watch -json: %+v, want SRV1 appeared, resync, heard just now", i)
	}
	if code := waitExit(t, w); code != 0 || w.Stderr() != "" {
		t.Fatalf("watch -count 1 exited %d: %q", code, w.Stderr())
	}
	stop(t, r, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
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
	expectWatchHeader(t, w)
	waitScrape(t, url, map[string]float64{`simpl_locator_watches`: 1})
	before := time.Now()
	r := e.startRecv("SRV1")
	// The header is printed before the watch's first look at the
	// daemon: SRV1 may attach before it, and come in its snapshot (a
	// resync) rather than live (seen in CI).
	expectEventEither(t, w, "appeared", "SRV1", r.PID(), before)
	e.run("", "fclocator", "-locate", "SRV1").ok(t, "fclocator -locate SRV1")
	base := scrapeMetrics(t, url)
	kill(t, r)
	expectEvent(t, w, "disappeared", "SRV1", r.PID(), false, before)
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
// same tables; a receiver killed with SIGKILL, its FIFOs left behind, is
// not listed. A -watch says, in one line, that no daemon runs and how to
// start one, and when the daemon comes, that it is there, and what is
// there.
func TestFclocatorNoDaemon(t *testing.T) {
	e := newEnv(t)
	r1 := e.startRecv("SRV1")
	r2 := e.startRecv("SRV2")
	w := e.start("fclocator", "-watch", "SRV*", "-count", "1")
	expectWatchHeader(t, w)
	waitStderr(t, w, noDaemonLine(e))

	got := e.run("", "fclocator", "-locate", "SRV1")
	got.ok(t, "fclocator -locate SRV1")
	rows := listRows(t, got.stdout)
	if len(rows) != 1 {
		t.Fatalf("fclocator -locate SRV1: %q, want one row", got.stdout)
	}
	checkInfo(t, rows[0], "SRV1", r1.PID())
	got = e.run("", "fclocator", "-list", "SRV*")
	got.ok(t, "fclocator -list SRV*")
	rows = listRows(t, got.stdout)
	if len(rows) != 2 {
		t.Fatalf("fclocator -list SRV*: %q, want SRV1 and SRV2", got.stdout)
	}
	checkInfo(t, rows[0], "SRV1", r1.PID())
	checkInfo(t, rows[1], "SRV2", r2.PID())
	got = e.run("", "fclocator", "-list")
	got.ok(t, "fclocator -list")
	byName := rowsByName(listRows(t, got.stdout))
	watcher := fmt.Sprintf("FCLOC_%d", w.PID())
	if len(byName) != 3 { // the watch's name, SRV1, SRV2: not its own
		t.Fatalf("fclocator -list: %q, want %s, SRV1 and SRV2", got.stdout, watcher)
	}
	checkInfo(t, byName[watcher], watcher, w.PID())
	checkInfo(t, byName["SRV1"], "SRV1", r1.PID())
	e.run("", "fclocator", "-locate", "NOSUCH").failed(t, "fclocator", "not found", "NOSUCH")
	e.run("", "fclocator", "-list", "[").failed(t, "fclocator", "pattern")

	// SIGKILL leaves SRV1's FIFOs behind; its name is not listed.
	kill(t, r1)
	e.waitFile(fmt.Sprintf("SRV1.%d", r1.PID()))
	got = e.run("", "fclocator", "-list", "SRV*")
	got.ok(t, "fclocator -list SRV* after SRV1's kill")
	rows = listRows(t, got.stdout)
	if len(rows) != 1 {
		t.Fatalf("fclocator -list SRV* after SRV1's kill: %q, want SRV2 only", got.stdout)
	}
	checkInfo(t, rows[0], "SRV2", r2.PID())
	e.run("", "fclocator", "-locate", "SRV1").failed(t, "fclocator", "not found", "SRV1")

	// The daemon comes: the watch says so, and learns what is there.
	before := time.Now()
	d := e.start("fclocator")
	expectLine(t, d, "fclocator: FCLOCATOR watching "+e.dir)
	expectEvent(t, w, "appeared", "SRV2", r2.PID(), true, before)
	if code := waitExit(t, w); code != 0 {
		t.Fatalf("watch -count 1 exited %d: %s", code, w.Stderr())
	}
	checkOutage(t, e, w.Stderr(), true)

	// A watch on a locator of another name says how to start that one;
	// a signal ends it quietly.
	other := e.start("fclocator", "-n", "OTHER", "-watch")
	expectWatchHeader(t, other)
	waitStderr(t, other, "fclocator: no locator OTHER is running in "+e.dir+"; start one with: fclocator -n OTHER &; waiting for it\n")
	other.Signal(syscall.SIGTERM)
	if err := other.Wait(exitTimeout); err != nil {
		t.Errorf("fclocator -n OTHER -watch after SIGTERM: %v, want exit 0", err)
	}
	if strings.Count(other.Stderr(), "\n") != 1 {
		t.Errorf("fclocator -n OTHER -watch wrote %q on stderr, want one line", other.Stderr())
	}

	stop(t, r2, syscall.SIGTERM)
	stop(t, d, syscall.SIGTERM)
	e.clean(2) // the killed SRV1's FIFOs
}
