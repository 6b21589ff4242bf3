package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// smallPayload is the NATS payload limit of the names-in-parts test: a
// snapshot part holds at most 34 names of the longest, so hundreds of
// names take many parts, and a batch of events several messages.
const smallPayload = 2048

// startSmallNode starts a NATS node on host h, with routes to the
// others' nodes, whose max_payload is smallPayload.
func startSmallNode(t *testing.T, h *netlab.Host, others ...*netlab.Host) *proctest.Proc {
	t.Helper()
	var routes []string
	for _, o := range others {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats://%s:%d", o.Addr(), clusterPort)))
	}
	conf := fmt.Sprintf(`server_name: %q
listen: "%s:%d"
http: "%s:%d"
max_payload: %d
ping_interval: "1s"
ping_max: 2
cluster {
  name: "gosimpl-small"
  listen: "%s:%d"
  routes: [%s]
}
`, nodeName(h), h.Addr(), clientPort, h.Addr(), monitorPort, smallPayload, h.Addr(), clusterPort, strings.Join(routes, ", "))
	file := filepath.Join(t.TempDir(), nodeName(h)+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return proctest.StartCmd(t, h.Command(context.Background(), natsServer(t), "-c", file))
}

// longName is the i-th name of a prefix, padded to the longest a name
// may be.
func longName(prefix string, i int) string {
	n := fmt.Sprintf("%s%04d_", prefix, i)
	return n + strings.Repeat("x", naming.MaxNameLen-len(n))
}

// runNames (the "names" role, args COUNT CHURN MORE) attaches COUNT names
// of the longest length, says "attached", then attaches and detaches
// CHURN more, one after another in turn, every 2 ms, until SIGUSR1; then
// it prints "final " and the churned names it holds, as JSON; on SIGUSR2
// it attaches MORE names at once (Q0000_xxx...) and says "more"; then it
// waits for SIGTERM (or 60 s).
func runNames(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want COUNT CHURN MORE, got %q", args)
	}
	count, err1 := strconv.Atoi(args[0])
	churn, err2 := strconv.Atoi(args[1])
	more, err3 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || err3 != nil || count < 0 || churn < 1 || more < 0 {
		return fmt.Errorf("want COUNT CHURN MORE, got %q", args)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	var held []*simpl.Channel
	defer func() {
		for _, ch := range held {
			ch.Close()
		}
	}()
	for i := range count {
		ch, err := simpl.Attach(longName("P", i))
		if err != nil {
			return err
		}
		held = append(held, ch)
	}
	fmt.Println("attached", count)
	churned := make([]*simpl.Channel, churn)
	tick := time.NewTicker(2 * time.Millisecond) // the churn's pace
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-usr1:
			var names []string
			for _, ch := range churned {
				if ch != nil {
					names = append(names, ch.Name())
					held = append(held, ch)
				}
			}
			b, err := json.Marshal(names)
			if err != nil {
				return err
			}
			fmt.Printf("final %s\n", b)
			select {
			case <-term:
				return nil
			case <-usr2:
			case <-time.After(60 * time.Second):
				return nil
			}
			for i := range more {
				ch, err := simpl.Attach(longName("Q", i))
				if err != nil {
					return err
				}
				held = append(held, ch)
			}
			fmt.Println("more")
			select {
			case <-term:
			case <-time.After(60 * time.Second):
			}
			return nil
		case <-tick.C:
		}
		k := i % churn
		if churned[k] != nil {
			if err := churned[k].Close(); err != nil {
				return err
			}
			churned[k] = nil
			continue
		}
		ch, err := simpl.Attach(longName("C", k))
		if err != nil {
			return err
		}
		churned[k] = ch
	}
}

// A host's names snapshot larger than one NATS message, across real
// hosts: with NATS's payload limit at 2 KiB on both nodes, b holds 400
// names of the longest (about 12 parts' worth) while it attaches and
// detaches 8 more every 2 ms; a's gateway, started first, follows b's
// from b's gateway's first snapshot (taken in parts while the churn goes
// on) and then its events. A watch on a, running throughout, must see
// every name of b appear once and the churned ones come and go strictly
// in turn (an event lost or applied twice would show as a name appearing
// twice, or going while gone), and end with exactly b's names, as does
// fclocator -hosts -list on a. Then b attaches 150 more at once: their
// events, batched by b's Watcher, go in as many messages as 2 KiB needs,
// and the watch sees each once. a's gateway took b's snapshot in parts,
// asked no snapshot but one per run (no event was missed: a gap would
// have made it ask again), and counted nothing bad. A gateway on a that
// follows at most 100 names of a host (-max-host-names) then says b has
// more, lists none of b's, and counts it.
func TestNamesInParts(t *testing.T) {
	const count, churn, more = 400, 8, 150
	lab := netlab.New(t, "a", "b")
	a, b := lab.Host("a"), lab.Host("b")
	startSmallNode(t, a, b)
	startSmallNode(t, b, a)
	m := role(t, b, "meshed", fmt.Sprintf("%s:%d", a.Addr(), monitorPort), fmt.Sprintf("%s:%d", b.Addr(), monitorPort))
	m.Expect("meshed", routeTimeout)
	if err := m.Wait(runTimeout); err != nil {
		t.Fatalf("the nodes' routes: %v", err)
	}
	url := func(h *netlab.Host) string { return fmt.Sprintf("nats://%s:%d", h.Addr(), clientPort) }
	gwA, _ := startGate(t, a.Command(context.Background(), bin("fcgate"), "-v", "-nats", url(a)+","+url(b), "-insecure", "-csimpl=false"))
	watch := proctest.StartCmd(t, a.Command(context.Background(), bin("fclocator"), "-hosts", "-watch", "-json"))
	// The watch is up once it reports a's gateway's own names: wait for
	// a name of a's.
	aloc := proctest.StartCmd(t, a.Command(context.Background(), bin("fcrecv"), "-n", "ALOC"))
	aloc.Expect("attached", lineTimeout)
	expectEvent(t, watch, "appeared", "a:ALOC")

	names := role(t, b, "names", strconv.Itoa(count), strconv.Itoa(churn), strconv.Itoa(more))
	names.Expect(fmt.Sprintf("attached %d", count), lineTimeout)
	gwB, _ := startGate(t, b.Command(context.Background(), bin("fcgate"), "-nats", url(b)+","+url(a), "-insecure", "-csimpl=false"))

	// Follow the watch: b's names as it reports them, each event checked
	// against what it said before.
	have := map[string]bool{}
	bad := 0
	read := func(d time.Duration) {
		t.Helper()
		line := watch.ReadLine(d)
		var ev nameEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("fclocator -watch -json: %q: %v", line, err)
		}
		if ev.Host != "b" {
			return
		}
		switch {
		case ev.Event == "appeared" && have[ev.Name], ev.Event == "disappeared" && !have[ev.Name]:
			if bad++; bad <= 10 {
				t.Errorf("the watch on a: %s %s (pid %d), which it had %v; line %q", ev.Event, ev.Name, ev.PID, have[ev.Name], line)
			}
		}
		have[ev.Name] = ev.Event == "appeared"
	}
	present := func(prefix string) int {
		n := 0
		for name, in := range have {
			if in && strings.HasPrefix(name, "b:"+prefix) {
				n++
			}
		}
		return n
	}
	// Every one of b's fixed names, with churn going on.
	t0 := time.Now()
	for present("P") < count {
		read(lineTimeout)
	}
	t.Logf("b's %d names seen on a %v after b's gateway started", count, time.Since(t0).Round(time.Millisecond))
	// The churn goes on for a while after the snapshot: events applied
	// after it, across messages split to fit the limit.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		read(lineTimeout)
	}
	names.Signal(syscall.SIGUSR1)
	var final []string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(names.Expect("final ", lineTimeout), "final ")), &final); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range count {
		want["b:"+longName("P", i)] = true
	}
	for _, n := range final {
		want["b:"+n] = true
	}
	same := func() bool {
		n := 0
		for name, in := range have {
			if in {
				if !want[name] {
					return false
				}
				n++
			}
		}
		return n == len(want)
	}
	// Within 1 s of the churn's end the watch holds exactly b's names.
	for deadline := time.Now().Add(time.Second); !same(); {
		if time.Now().After(deadline) {
			t.Fatalf("1 s after the churn stopped, the watch on a holds %d of b's names (%d fixed, %d churned), want %d (%d churned: %q)",
				present(""), present("P"), present("C"), len(want), len(final), final)
		}
		read(time.Until(deadline) + 10*time.Millisecond)
	}
	if bad > 0 {
		t.Errorf("%d events of the watch did not follow from the ones before", bad)
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	r := runCmd(t, a.Command(ctx, bin("fclocator"), "-hosts", "-list", "-json", "b:*"))
	if r.code != 0 {
		t.Fatalf("fclocator -hosts -list on a: exit %d, stderr %q", r.code, r.stderr)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev nameEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("fclocator -hosts -list -json: %q: %v", line, err)
		}
		listed = append(listed, ev.Name)
	}
	var wantList []string
	for n := range want {
		wantList = append(wantList, n)
	}
	slices.Sort(listed)
	slices.Sort(wantList)
	if !slices.Equal(listed, wantList) {
		t.Errorf("fclocator -hosts -list on a: %d names, want b's %d", len(listed), len(wantList))
	}

	// 150 attached at once on b: their events in messages of 2 KiB.
	t0 = time.Now()
	names.Signal(syscall.SIGUSR2)
	names.Expect("more", lineTimeout)
	t.Logf("b attached %d more in %v", more, time.Since(t0).Round(time.Millisecond))
	for i := range more {
		want["b:"+longName("Q", i)] = true
	}
	for deadline := time.Now().Add(lineTimeout); !same(); {
		if time.Now().After(deadline) {
			t.Fatalf("the watch on a holds %d of b's %d names (%d of the %d attached at once), want all", present(""), len(want), present("Q"), more)
		}
		read(time.Until(deadline) + 10*time.Millisecond)
	}
	if bad > 0 {
		t.Errorf("%d events of the watch did not follow from the ones before", bad)
	}

	for _, p := range []*proctest.Proc{watch, aloc} {
		p.Signal(15)
		if err := p.Wait(runTimeout); err != nil {
			t.Errorf("%v after SIGTERM: %v", p.Cmd.Args, err)
		}
	}
	gwA.Signal(15)
	line := gwA.Expect("fcgate: names across hosts: ", lineTimeout)
	var runs, snaps, badN, parts, over int
	if _, err := fmt.Sscanf(line, "fcgate: names across hosts: runs followed %d, snapshots asked %d, bad %d, in parts %d, over the cap %d", &runs, &snaps, &badN, &parts, &over); err != nil || parts < 1 || snaps != runs || badN != 0 || over != 0 {
		t.Errorf("a's gateway's names counts: %q (%v); want a snapshot in parts or more, one snapshot per run, none bad or over the cap", line, err)
	} else {
		t.Logf("a's gateway: %s", line)
	}
	if err := gwA.Wait(runTimeout); err != nil {
		t.Errorf("a's gateway after SIGTERM: %v", err)
	}

	// A gateway on a that follows at most 100 names of a host: it says
	// that b has more, lists none of b's, and counts it.
	gwA, _ = startGate(t, a.Command(context.Background(), bin("fcgate"), "-v", "-max-host-names", "100", "-nats", url(a)+","+url(b), "-insecure", "-csimpl=false"))
	waitStderr(t, gwA, fmt.Sprintf("fcgate: names across hosts: host b has %d names or more", len(want)))
	waitStderr(t, gwA, "over the 100 followed of one host: its names are not listed; asking again in 10s")
	ctx2, cancel2 := context.WithTimeout(context.Background(), runTimeout)
	defer cancel2()
	r = runCmd(t, a.Command(ctx2, bin("fclocator"), "-hosts", "-list", "b:*"))
	if r.code != 0 || strings.Contains(r.stdout, "b:") {
		t.Errorf("fclocator -hosts -list b:* on a, over the cap: exit %d, stdout %q, stderr %q; want no names", r.code, r.stdout, r.stderr)
	}
	gwA.Signal(15)
	line = gwA.Expect("fcgate: names across hosts: ", lineTimeout)
	if _, err := fmt.Sscanf(line, "fcgate: names across hosts: runs followed %d, snapshots asked %d, bad %d, in parts %d, over the cap %d", &runs, &snaps, &badN, &parts, &over); err != nil || over != 1 || badN != 0 {
		t.Errorf("the capped gateway's names counts: %q (%v); want 1 over the cap, none bad", line, err)
	}
	if err := gwA.Wait(runTimeout); err != nil {
		t.Errorf("a's capped gateway after SIGTERM: %v", err)
	}
	names.Signal(syscall.SIGTERM)
	if err := names.Wait(runTimeout); err != nil {
		t.Errorf("the names role: %v", err)
	}
	stopGate(t, gwB)
}
