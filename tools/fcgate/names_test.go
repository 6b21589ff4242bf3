package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/nats-io/nats-server/v2/server"
)

// nameEvent is a line of fclocator -watch -json.
type nameEvent struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Name   string    `json:"name"`
	Host   string    `json:"host"`
	PID    int       `json:"pid"`
	Since  time.Time `json:"since"`
	Resync bool      `json:"resync"`
}

// expectEvent reads watch's lines until the event of name, and returns
// it with the time it was read.
func expectEvent(t *testing.T, watch *proctest.Proc, event, name string) (nameEvent, time.Time) {
	t.Helper()
	line := watch.Expect(`"event":"`+event+`","name":"`+name+`"`, lineTimeout)
	at := time.Now()
	var ev nameEvent
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("fclocator -watch -json: %q: %v", line, err)
	}
	return ev, at
}

// expectEvents reads watch's lines until it has seen each of want, in
// any order.
func expectEvents(t *testing.T, watch *proctest.Proc, want ...string) {
	t.Helper()
	left := append([]string(nil), want...)
	for len(left) > 0 {
		line := watch.ReadLine(lineTimeout)
		for i, w := range left {
			if strings.Contains(line, w) {
				left = append(left[:i], left[i+1:]...)
				break
			}
		}
	}
}

// Names across hosts, with real processes on two hosts: a watch on a
// sees b's names appear and disappear (a detach, a holder killed) within
// 1 s of the event on b; a list on a shows both hosts' names, as
// HOST:NAME; b cut off the network, or its gateway killed, its names
// disappear within the 2 s docs/network.md promises, and come back with
// b.
func TestNamesAcrossHosts(t *testing.T) {
	fclocator := bin("fclocator")
	h := newTwoHosts(t)
	pre := h.recv(t, "-n", "PRE")
	watch := proctest.StartCmd(t, h.a.Command(context.Background(), fclocator, "-hosts", "-watch", "-json"))
	// The watch is up, and hears b: PRE, attached before it started,
	// comes first as a resync (or as an event, if b's gateway told a of
	// it only just now).
	expectEvent(t, watch, "appeared", "b:PRE")

	srv := h.recv(t, "-n", "SRV")
	ev, _ := expectEvent(t, watch, "appeared", "b:SRV")
	// Both times are this machine's clock: when b's FIFO was made, and
	// when the watch on a heard of it.
	if lag := ev.Time.Sub(ev.Since); ev.Resync || ev.Host != "b" || ev.PID != srv.PID() || lag > time.Second {
		t.Errorf("b:SRV appeared %+v, %v after it was attached; want host b, pid %d, no resync, within 1s", ev, lag, srv.PID())
	} else {
		t.Logf("b:SRV attached on b, seen on a %v later", lag)
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	aloc := proctest.StartCmd(t, h.a.Command(ctx, bin("fcrecv"), "-n", "ALOC"))
	aloc.Expect("attached", lineTimeout)
	expectEvent(t, watch, "appeared", "a:ALOC")
	r := runCmd(t, h.a.Command(ctx, fclocator, "-hosts", "-list"))
	if r.code != 0 {
		t.Fatalf("fclocator -hosts -list: exit %d, stderr %q", r.code, r.stderr)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		names = append(names, strings.Fields(line)[0])
	}
	// The watch's own name is listed too (the list leaves out only its
	// own, as -list does).
	want := fmt.Sprintf("a:ALOC a:FCLOC_%d b:PRE b:SRV", watch.PID())
	if got := strings.Join(names, " "); got != want {
		t.Errorf("fclocator -hosts -list on a: names %q, want %q; stdout:\n%s", got, want, r.stdout)
	}
	r = runCmd(t, h.a.Command(ctx, fclocator, "-hosts", "-list", "-json", "b:S*"))
	if r.code != 0 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"name":"b:SRV","host":"b"`) {
		t.Errorf("fclocator -hosts -list -json b:S*: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// A detach, then a holder killed: each seen within 1 s.
	t0 := time.Now()
	srv.Signal(15)
	_, at := expectEvent(t, watch, "disappeared", "b:SRV")
	if lag := at.Sub(t0); lag > time.Second {
		t.Errorf("b:SRV detached, seen on a %v later, want within 1s", lag)
	} else {
		t.Logf("b:SRV detached, seen on a within %v", lag)
	}
	srv.Wait(runTimeout)
	held := h.recv(t, "-n", "HELD")
	expectEvent(t, watch, "appeared", "b:HELD")
	t0 = time.Now()
	held.Kill()
	_, at = expectEvent(t, watch, "disappeared", "b:HELD")
	if lag := at.Sub(t0); lag > time.Second {
		t.Errorf("b:HELD's holder killed, seen on a %v later, want within 1s", lag)
	} else {
		t.Logf("b:HELD's holder killed, seen on a within %v", lag)
	}

	// b cut off the network: its names go on a within 2 s (its
	// silence); a name attached on b meanwhile comes with them when b is
	// back.
	t0 = time.Now()
	if err := h.lab.Cut("b"); err != nil {
		t.Fatal(err)
	}
	_, at = expectEvent(t, watch, "disappeared", "b:PRE")
	if lag := at.Sub(t0); lag > 2*time.Second {
		t.Errorf("b cut off, b:PRE gone on a %v later, want within 2s", lag)
	} else {
		t.Logf("b cut off, b:PRE gone on a %v later", lag)
	}
	cut := h.recv(t, "-n", "CUT")
	if err := h.lab.Heal("b"); err != nil {
		t.Fatal(err)
	}
	h.waitRoute(t)
	expectEvents(t, watch, `"event":"appeared","name":"b:PRE"`, `"event":"appeared","name":"b:CUT"`)
	cut.Signal(15)
	expectEvent(t, watch, "disappeared", "b:CUT")
	cut.Wait(runTimeout)

	// b's gateway killed: its names go within 2 s; a's stay.
	t0 = time.Now()
	h.gwB.Kill()
	_, at = expectEvent(t, watch, "disappeared", "b:PRE")
	if lag := at.Sub(t0); lag > 2*time.Second {
		t.Errorf("b's gateway killed, b:PRE gone on a %v later, want within 2s", lag)
	} else {
		t.Logf("b's gateway killed, b:PRE gone on a %v later", lag)
	}
	r = runCmd(t, h.a.Command(ctx, fclocator, "-hosts", "-list", "-json"))
	if r.code != 0 || !strings.Contains(r.stdout, `"name":"a:ALOC"`) || strings.Contains(r.stdout, `"host":"b"`) {
		t.Errorf("fclocator -hosts -list -json after b's gateway died: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// b's gateway back (a new run: a new generation), b:PRE is back as a
	// resync of its snapshot; stopped (SIGTERM), its goodbye takes b's
	// names away at once, not after the silence.
	gwB, _ := startGate(t, h.b.Command(context.Background(), bin("fcgate"),
		"-listen", h.b.Addr()+":4222", "-cluster", h.b.Addr()+":6222", "-routes", "nats://"+h.a.Addr()+":6222", "-insecure"))
	if ev, _ := expectEvent(t, watch, "appeared", "b:PRE"); ev.PID != pre.PID() {
		t.Errorf("b:PRE back: %+v, want pid %d", ev, pre.PID())
	}
	t0 = time.Now()
	gwB.Signal(15)
	_, at = expectEvent(t, watch, "disappeared", "b:PRE")
	if lag := at.Sub(t0); lag > time.Second {
		t.Errorf("b's gateway stopped, b:PRE gone on a %v later, want within 1s", lag)
	} else {
		t.Logf("b's gateway stopped, b:PRE gone on a %v later", lag)
	}
	if err := gwB.Wait(runTimeout); err != nil {
		t.Errorf("b's gateway after SIGTERM: %v", err)
	}
	for _, p := range []*proctest.Proc{watch, aloc, pre} {
		p.Signal(15)
		if err := p.Wait(runTimeout); err != nil {
			t.Errorf("%v after SIGTERM: %v", p.Cmd.Args, err)
		}
	}
	// a's counts: its own run and b's three (first, back from the cut,
	// restarted), at least; nothing unreadable.
	h.gwA.Signal(15)
	line := h.gwA.Expect("fcgate: names across hosts: ", lineTimeout)
	var runs, snaps, bad int
	if _, err := fmt.Sscanf(line, "fcgate: names across hosts: runs followed %d, snapshots asked %d, bad %d", &runs, &snaps, &bad); err != nil || runs < 4 || snaps < runs || bad != 0 {
		t.Errorf("a's gateway's names counts: %q (%v); want 4 runs or more, a snapshot each, none bad", line, err)
	}
	if err := h.gwA.Wait(runTimeout); err != nil {
		t.Errorf("a's gateway after SIGTERM: %v", err)
	}
}

// Names across hosts through an existing deployment: gateways whose users
// may subscribe to the names subjects (docs/network.md) list each
// other's names; one whose user may not still carries Sends, says on
// stderr that names across hosts are off, and fclocator -hosts there
// says why; with no gateway, fclocator -hosts says to start one.
func TestNamesDeployment(t *testing.T) {
	keys := t.TempDir()
	seed1, pub1 := writeSeed(t, keys, "h1")
	seed2, pub2 := writeSeed(t, keys, "h2")
	seed3, pub3 := writeSeed(t, keys, "h3")
	noNames := hostUser(pub3, "h3")
	noNames.Permissions.Subscribe.Allow = slices.DeleteFunc(noNames.Permissions.Subscribe.Allow, func(s string) bool { return strings.HasPrefix(s, netwire.NamesPrefix) })
	url := testServer(t, server.Options{Nkeys: []*server.NkeyUser{hostUser(pub1, "h1"), hostUser(pub2, "h2"), noNames}})
	dir1, dir2, dir3, dir4 := proctest.Dir(t), proctest.Dir(t), proctest.Dir(t), proctest.Dir(t)

	r := runCmd(t, local(t, dir4, "h4", "fclocator", "-hosts", "-list"))
	if r.code != 1 || !strings.Contains(r.stderr, "no gateway runs on this host (start fcgate)") {
		t.Errorf("fclocator -hosts -list with no gateway: exit %d, stderr %q", r.code, r.stderr)
	}

	gw1, _ := startGate(t, local(t, dir1, "h1", "fcgate", "-nats", url, "-nkey", seed1))
	gw2, _ := startGate(t, local(t, dir2, "h2", "fcgate", "-nats", url, "-nkey", seed2))
	srv := proctest.StartCmd(t, local(t, dir2, "h2", "fcrecv", "-n", "SRV"))
	srv.Expect("attached SRV", lineTimeout)
	// h1 hears of h2's run within a heartbeat, then asks its snapshot.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = runCmd(t, local(t, dir1, "h1", "fclocator", "-hosts", "-list", "-json", "h2:*"))
		if r.code == 0 && strings.Contains(r.stdout, `"name":"h2:SRV","host":"h2"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fclocator -hosts -list on h1: exit %d, stdout %q, stderr %q; want h2:SRV within 5s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling h1's view, bounded above
	}

	gw3, _ := startGate(t, local(t, dir3, "h3", "fcgate", "-nats", url, "-nkey", seed3))
	for deadline := time.Now().Add(lineTimeout); !strings.Contains(gw3.Stderr(), "names across hosts are off"); {
		if time.Now().After(deadline) {
			t.Fatalf("fcgate without the names permissions: stderr %q, want it to say names across hosts are off", gw3.Stderr())
		}
		time.Sleep(10 * time.Millisecond) // polling its stderr, bounded above
	}
	r = runCmd(t, local(t, dir3, "h3", "fclocator", "-hosts", "-list"))
	if r.code != 1 || !strings.Contains(r.stderr, "does not follow names across hosts") || !strings.Contains(r.stderr, "Permissions Violation") {
		t.Errorf("fclocator -hosts -list where names are off: exit %d, stderr %q", r.code, r.stderr)
	}
	if r = runCmd(t, local(t, dir3, "h3", "fcsend", "-r", "h2:SRV", "-m", "still carried")); r.code != 0 || r.stdout != "still carried\n" {
		t.Errorf("fcsend -r h2:SRV from h3: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	srv.Signal(15)
	srv.Wait(runTimeout)
	for _, gw := range []*proctest.Proc{gw3, gw2, gw1} {
		stopGate(t, gw)
	}
}

// waitStderr waits for p's stderr to hold want.
func waitStderr(t *testing.T, p *proctest.Proc, want string) {
	t.Helper()
	for deadline := time.Now().Add(lineTimeout); !strings.Contains(p.Stderr(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("%v: stderr %q, want %q", p.Cmd.Args, p.Stderr(), want)
		}
		time.Sleep(10 * time.Millisecond) // polling its stderr, bounded above
	}
}

// A watch across hosts on one host follows its gateway as a watch
// follows the daemon: it says when none runs and when one does; a name
// attached is seen within 1 s; the gateway killed, it says so and, with a
// new gateway, resyncs without reporting again what it knew.
func TestNamesWatchGateway(t *testing.T) {
	dir := proctest.Dir(t)
	watch := proctest.StartCmd(t, local(t, dir, "me", "fclocator", "-hosts", "-watch", "-json"))
	waitStderr(t, watch, "fclocator: no gateway _gosimpl_gw is running in "+dir+"; start one with: fcgate &; waiting for it")
	// Without C SIMPL's router, whose name would come and go with each
	// gateway among the names watched.
	gw, _ := startGate(t, local(t, dir, "me", "fcgate", "-host", "other", "-listen", "127.0.0.1:0", "-csimpl=false"))
	waitStderr(t, watch, "fclocator: gateway _gosimpl_gw is running; resyncing")
	srv := proctest.StartCmd(t, local(t, dir, "me", "fcrecv", "-n", "SRV"))
	srv.Expect("attached SRV", lineTimeout)
	ev, _ := expectEvent(t, watch, "appeared", "other:SRV")
	if lag := ev.Time.Sub(ev.Since); lag > time.Second || ev.Host != "other" {
		t.Errorf("other:SRV appeared %+v, %v after it was attached; want within 1s", ev, lag)
	}
	gw.Kill()
	waitStderr(t, watch, "fclocator: gateway _gosimpl_gw unreachable")
	again, _ := startGate(t, local(t, dir, "me", "fcgate", "-host", "other", "-listen", "127.0.0.1:0", "-csimpl=false"))
	waitStderr(t, watch, "fclocator: gateway _gosimpl_gw is back; resyncing")
	srv.Signal(15)
	srv.Wait(runTimeout)
	// The next event is SRV's going: not SRV again, which the watch knew.
	line := watch.ReadLine(lineTimeout)
	if !strings.Contains(line, `"event":"disappeared","name":"other:SRV"`) || strings.Contains(line, `"resync":true`) {
		t.Errorf("after the new gateway and SRV's detach, the watch printed %q; want other:SRV disappeared", line)
	}
	// Stopped (not killed), the gateway ends the held watch: the watch
	// says so.
	stopGate(t, again)
	for deadline := time.Now().Add(lineTimeout); strings.Count(watch.Stderr(), "fclocator: gateway _gosimpl_gw unreachable") < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("fclocator after its gateway stopped: stderr %q, want a second 'unreachable'", watch.Stderr())
		}
		time.Sleep(10 * time.Millisecond) // polling its stderr, bounded above
	}
	t.Logf("fclocator's stderr:\n%s", watch.Stderr())
	watch.Signal(15)
	if err := watch.Wait(runTimeout); err != nil {
		t.Errorf("fclocator after SIGTERM: %v", err)
	}
}
