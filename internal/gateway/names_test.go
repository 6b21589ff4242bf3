package gateway

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The protocol of names across hosts as a gateway follows it, with this
// test playing another host's gateway on raw NATS: a snapshot, then
// events; a message that skips some makes the gateway ask a snapshot
// again, which it reports as the differences, once each; a stale
// message and garbage change nothing; silence drops the host's names
// within the 2 s bound. A program watching through the gateway (the
// locator Client) sees exactly the changes, in order. Real processes
// across real hosts are tested in tools/fcgate.
func TestNamesFollow(t *testing.T) {
	const host, other, gen = "gw-names-host", "z", 5
	if h, _ := os.Hostname(); h == host || h == other {
		t.Skip("this machine is named like the test's hosts")
	}
	// A deployment of the test's own, without permissions: an
	// embedded server would hold the test's client to its host's
	// (auth.go), and it plays another host here.
	g, dir, conn := setupFree(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The other host: answers snapshots with snap, publishes what the
	// test says, and a presence every 300 ms.
	peer := peerOn(t, conn)
	var mu sync.Mutex
	snap := netwire.Names{Type: netwire.NamesSnapshot, Gen: gen, To: 3, Records: []netwire.NameRecord{rec(0, 0, "Z1", 10)}}
	pos := uint64(3)
	asked := 0
	if _, err := peer.Subscribe(netwire.NamesListSubject(other, gen), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		b, err := netwire.AppendNames(nil, &snap)
		if err != nil {
			t.Error(err)
		}
		m.Respond(b)
	}); err != nil {
		t.Fatal(err)
	}
	publish := func(n netwire.Names) {
		t.Helper()
		b, err := netwire.AppendNames(nil, &n)
		if err != nil {
			t.Fatal(err)
		}
		if err := peer.Publish(netwire.NamesSubject(other), b); err != nil {
			t.Fatal(err)
		}
	}
	stopPresence := make(chan struct{})
	presenceDone := make(chan struct{})
	go func() {
		defer close(presenceDone)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			mu.Lock()
			n := netwire.Names{Type: netwire.NamesPresence, Gen: gen, To: pos}
			mu.Unlock()
			b, _ := netwire.AppendNames(nil, &n)
			peer.Publish(netwire.NamesSubject(other), b)
			select {
			case <-stopPresence:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stopPresence:
		default:
			close(stopPresence)
		}
		<-presenceDone
	}()

	prog, err := simpl.Attach("PROG", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	w := locator.NewClient(prog, "").WatchHosts(other + ":*")
	next := func(want string) {
		t.Helper()
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("watch: %v, want %s", err, want)
		}
		if got := fmt.Sprintf("%v %s %d", ev.Kind, ev.Info.Name, ev.Info.PID); got != want {
			t.Fatalf("watch: %s (%+v), want %s", got, ev, want)
		}
	}
	next("appeared z:Z1 10") // from the first snapshot
	mu.Lock()
	pos = 4
	mu.Unlock()
	publish(netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: 3, To: 4, Records: []netwire.NameRecord{rec(netwire.NameAppeared, 4, "Z2", 11)}})
	next("appeared z:Z2 11")

	// Events 5 and 6 lost: Z2 went and Z3 came; 7 says so of Z4.
	mu.Lock()
	snap = netwire.Names{Type: netwire.NamesSnapshot, Gen: gen, To: 7, Records: []netwire.NameRecord{rec(0, 0, "Z1", 10), rec(0, 0, "Z3", 12), rec(0, 0, "Z4", 13)}}
	pos = 7
	mu.Unlock()
	publish(netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: 6, To: 7, Records: []netwire.NameRecord{rec(netwire.NameAppeared, 7, "Z4", 13)}})
	next("disappeared z:Z2 11")
	sortedPair(ctx, t, w, "appeared z:Z3 12", "appeared z:Z4 13")
	// Stale (before the snapshot) and garbage: nothing.
	publish(netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: 5, To: 6, Records: []netwire.NameRecord{rec(netwire.NameAppeared, 6, "Z9", 19)}})
	peer.Publish(netwire.NamesSubject(other), []byte("GSM1 not really"))
	mu.Lock()
	pos = 8
	mu.Unlock()
	publish(netwire.Names{Type: netwire.NamesEvents, Gen: gen, From: 7, To: 8, Records: []netwire.NameRecord{rec(netwire.NameDisappeared, 8, "Z1", 10)}})
	next("disappeared z:Z1 10")
	// Two runs (this host's and z's), three snapshots (one of this
	// host's, two of z's), the garbage counted.
	if st := g.NamesStats(); st.Runs != 2 || st.Snapshots != 3 || st.Bad != 1 || st.Names != 3 {
		t.Errorf("NamesStats = %+v, want 2 runs, 3 snapshots, 1 bad, 3 names", st)
	}
	mu.Lock()
	if asked != 2 {
		t.Errorf("%d snapshots asked, want 2 (the first, and after the gap)", asked)
	}
	mu.Unlock()

	// Silence: the host's names go within 2 s of its last message.
	close(stopPresence)
	<-presenceDone
	t0 := time.Now()
	sortedPair(ctx, t, w, "disappeared z:Z3 12", "disappeared z:Z4 13")
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("a silent host's names went %v after its last message, want within 2s", el)
	}
}

// sortedPair reads two events from w, which may come in either order
// (one snapshot's differences), and checks that they are a and b.
func sortedPair(ctx context.Context, t *testing.T, w *locator.Watch, a, b string) {
	t.Helper()
	var got []string
	for range 2 {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("watch: %v, want %s and %s", err, a, b)
		}
		got = append(got, fmt.Sprintf("%v %s %d", ev.Kind, ev.Info.Name, ev.Info.PID))
	}
	if !(got[0] == a && got[1] == b) && !(got[0] == b && got[1] == a) {
		t.Fatalf("watch: %q, want %q and %q", got, a, b)
	}
}

func rec(kind uint8, seq uint64, name string, pid int) netwire.NameRecord {
	if kind == 0 {
		kind = netwire.NameAppeared
	}
	return netwire.NameRecord{Kind: kind, Transport: netwire.NameFIFO, Name: name, PID: pid, Seq: seq, Since: 1}
}

// fakeRun plays one gateway run of another host on raw NATS: it answers
// snapshot requests with its names and says it is present every 300 ms
// until stopped.
type fakeRun struct {
	nc    *nats.Conn
	host  string
	gen   uint64
	names []netwire.NameRecord
	stop  chan struct{}
	done  chan struct{}
}

func startFakeRun(t *testing.T, nc *nats.Conn, host string, gen uint64, names ...netwire.NameRecord) *fakeRun {
	t.Helper()
	f := &fakeRun{nc: nc, host: host, gen: gen, names: names, stop: make(chan struct{}), done: make(chan struct{})}
	sub, err := nc.Subscribe(netwire.NamesListSubject(host, gen), func(m *nats.Msg) {
		b, _ := netwire.AppendNames(nil, &netwire.Names{Type: netwire.NamesSnapshot, Gen: gen, Records: f.names})
		m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(f.done)
		defer sub.Unsubscribe()
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			b, _ := netwire.AppendNames(nil, &netwire.Names{Type: netwire.NamesPresence, Gen: gen})
			nc.Publish(netwire.NamesSubject(host), b)
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(f.end)
	return f
}

// bye stops the run as a gateway that closes does.
func (f *fakeRun) bye() {
	f.end()
	b, _ := netwire.AppendNames(nil, &netwire.Names{Type: netwire.NamesBye, Gen: f.gen})
	f.nc.Publish(netwire.NamesSubject(f.host), b)
}

func (f *fakeRun) end() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// Two gateways of one host (two runs): a name both report is listed
// once, and stays while one of them reports it; a goodbye takes only its
// run's names.
func TestNamesTwoRuns(t *testing.T) {
	const host, other = "gw-names-host", "y"
	if h, _ := os.Hostname(); h == host || h == other {
		t.Skip("this machine is named like the test's hosts")
	}
	_, dir, conn := setupFree(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer := peerOn(t, conn)
	prog, err := simpl.Attach("PROG", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	c := locator.NewClient(prog, "")
	w := c.WatchHosts(other + ":*")
	next := func(want string) {
		t.Helper()
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("watch: %v, want %s", err, want)
		}
		if got := fmt.Sprintf("%v %s %d", ev.Kind, ev.Info.Name, ev.Info.PID); got != want {
			t.Fatalf("watch: %s (%+v), want %s", got, ev, want)
		}
	}

	r6 := startFakeRun(t, peer, other, 6, rec(0, 0, "Y1", 1), rec(0, 0, "Y2", 2))
	sortedPair(ctx, t, w, "appeared y:Y1 1", "appeared y:Y2 2")
	r7 := startFakeRun(t, peer, other, 7, rec(0, 0, "Y2", 2), rec(0, 0, "Y3", 3))
	next("appeared y:Y3 3") // Y2 not again
	if infos, err := c.ListHosts(ctx, "y:*"); err != nil || len(infos) != 3 {
		t.Errorf("ListHosts(y:*) = %+v, %v; want Y1, Y2, Y3", infos, err)
	}
	r6.bye()
	next("disappeared y:Y1 1") // Y2 stays: run 7 reports it
	r7.bye()
	sortedPair(ctx, t, w, "disappeared y:Y2 2", "disappeared y:Y3 3")
}

// deployment starts a NATS server of the test's own, on loopback, with no
// authentication or permissions, stopped when the test ends; it returns
// its URL.
func deployment(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the test's NATS server is not ready")
	}
	return ns.ClientURL()
}

// A snapshot in parts, with the test playing another host's gateway on
// raw NATS and a cap of 50 names of a host: 40 names come in parts (the
// asker's MaxPart honoured), with an event published between two parts
// (applied after the snapshot, once) and one from before the snapshot
// (ignored); parts out of order are refused whole, counted as bad, and
// the snapshot asked again; a snapshot of more names than the cap takes
// the host's names away, is counted and told (Hooks.Note) instead of
// being held.
func TestNamesParts(t *testing.T) {
	const host, other, gen = "gw-names-host", "x", 9
	if h, _ := os.Hostname(); h == host || h == other {
		t.Skip("this machine is named like the test's hosts")
	}
	var notes []string
	var mu sync.Mutex
	g, dir, conn := setupFree(t, host, WithMaxHostNames(50), WithHooks(Hooks{Note: func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		notes = append(notes, msg)
	}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer := peerOn(t, conn)
	publish := func(n netwire.Names) {
		t.Helper()
		b, err := netwire.AppendNames(nil, &n)
		if err != nil {
			t.Fatal(err)
		}
		if err := peer.Publish(netwire.NamesSubject(other), b); err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func(to uint64, n int) netwire.Names {
		s := netwire.Names{Type: netwire.NamesSnapshot, Gen: gen, To: to}
		for i := range n {
			s.Records = append(s.Records, rec(0, 0, fmt.Sprintf("N%02d", i), 100+i))
		}
		return s
	}
	// What the peer answers: the snapshot, and whether to swap its
	// second and third parts; between the first two parts it publishes
	// between, if any.
	var (
		snap    = snapshot(5, 40)
		swap    bool
		between []netwire.Names
		pos     = uint64(5)
		answers int
	)
	sub, err := peer.Subscribe(netwire.NamesListSubject(other, gen), func(m *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		answers++
		list, err := netwire.DecodeNamesList(m.Data)
		if err != nil || list.MaxPart != int(conn.Conn.MaxPayload()) {
			t.Errorf("list request %q: %+v, %v; want parts of at most the connection's limit", m.Data, list, err)
			return
		}
		parts, err := netwire.SplitSnapshot(&snap, 300) // a few names a part
		if err != nil {
			t.Error(err)
			return
		}
		if swap && len(parts) > 2 {
			parts[1], parts[2] = parts[2], parts[1]
			swap = false
		}
		for i := range parts {
			b, err := netwire.AppendNamesPart(nil, &parts[i])
			if err != nil {
				t.Error(err)
				return
			}
			peer.Publish(m.Reply, b)
			if i == 0 {
				for _, ev := range between {
					publish(ev)
				}
				between = nil
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	presence := func() {
		mu.Lock()
		p := pos
		mu.Unlock()
		publish(netwire.Names{Type: netwire.NamesPresence, Gen: gen, To: p})
	}

	prog, err := simpl.Attach("PROG", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	w := locator.NewClient(prog, "").WatchHosts(other + ":*")
	// expect reads events until it has seen each of want once, in any
	// order, failing on any other.
	expect := func(want ...string) {
		t.Helper()
		left := map[string]bool{}
		for _, s := range want {
			left[s] = true
		}
		for len(left) > 0 {
			ev, err := w.Next(ctx)
			if err != nil {
				t.Fatalf("watch: %v, with %d events to come", err, len(left))
			}
			got := fmt.Sprintf("%v %s %d", ev.Kind, ev.Info.Name, ev.Info.PID)
			if !left[got] {
				t.Fatalf("watch: %s, not one of the %d still due", got, len(left))
			}
			delete(left, got)
		}
	}
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprintf("appeared x:N%02d %d", i, 100+i))
	}
	// Between the first parts: an event from before the snapshot (its
	// position 5 is in it), and one after it.
	mu.Lock()
	between = []netwire.Names{
		{Type: netwire.NamesEvents, Gen: gen, From: 4, To: 5, Records: []netwire.NameRecord{rec(netwire.NameAppeared, 5, "STALE", 7)}},
		{Type: netwire.NamesEvents, Gen: gen, From: 5, To: 6, Records: []netwire.NameRecord{rec(netwire.NameAppeared, 6, "E1", 8)}},
	}
	pos = 6
	mu.Unlock()
	presence()
	expect(append(want, "appeared x:E1 8")...)
	// x's snapshot came in parts. (The presence that asked for it, and
	// then waited for it, may ask for one more if the event published
	// between the parts comes after it: another subscription's
	// goroutine hands it over. That is the guarantee at work, not a
	// fault: nothing is reported twice.)
	if st := g.NamesStats(); st.InParts < 1 || st.Bad != 0 {
		t.Errorf("after the first snapshot: %+v, want 1 in parts or more, none bad", st)
	}

	// Events 7 and 8 missed: the presence at 8 asks a snapshot again,
	// whose parts come out of order the first time.
	mu.Lock()
	snap = snapshot(8, 39) // N39 went; E1 too
	snap.Records = append(snap.Records, rec(0, 0, "E2", 9))
	swap, pos = true, 8
	mu.Unlock()
	presence()
	expect("disappeared x:N39 139", "disappeared x:E1 8", "appeared x:E2 9")
	mu.Lock()
	if answers < 3 {
		t.Errorf("the peer answered %d list requests, want 3 or more (the first, the one in disorder, the one after)", answers)
	}
	mu.Unlock()
	if st := g.NamesStats(); st.Bad != 1 || st.InParts < 2 {
		t.Errorf("after the snapshot out of order: %+v, want 1 bad, 2 in parts or more", st)
	}

	// Over the cap: 60 names. The host's names go, and it is said.
	mu.Lock()
	snap, pos = snapshot(9, 60), 9
	mu.Unlock()
	presence()
	var gone []string
	for i := range 39 {
		gone = append(gone, fmt.Sprintf("disappeared x:N%02d %d", i, 100+i))
	}
	expect(append(gone, "disappeared x:E2 9")...)
	if st := g.NamesStats(); st.OverCap != 1 || st.Names != 1 {
		t.Errorf("after a snapshot over the cap: %+v, want 1 over the cap, no names but this host's PROG", st)
	}
	mu.Lock()
	if len(notes) != 1 || !strings.Contains(notes[0], "host x has 60 names or more") || !strings.Contains(notes[0], "over the 50 followed of one host") {
		t.Errorf("notes %q, want one saying host x is over the cap", notes)
	}
	mu.Unlock()
}
