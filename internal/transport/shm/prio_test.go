//go:build !race

package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// Seeds live in testdata/fuzz/FuzzDecodePrio.

// FuzzDecodePrio: the lane's prio word is either none (0), a priority
// that encodes back to the same word, or ErrBadMessage; never a
// priority Linux would refuse.
func FuzzDecodePrio(f *testing.F) {
	f.Fuzz(func(t *testing.T, w uint32) {
		p, ok, err := decodePrio(w)
		switch {
		case err != nil:
			if !errors.Is(err, transport.ErrBadMessage) || ok {
				t.Fatalf("word %#x: ok %v, error %v, want ErrBadMessage", w, ok, err)
			}
		case !ok:
			if w != 0 {
				t.Fatalf("word %#x read as none", w)
			}
		case !p.Valid():
			t.Fatalf("word %#x read as invalid %+v", w, p)
		case encodePrio(p) != w:
			t.Fatalf("word %#x read as %+v, which encodes as %#x", w, p, encodePrio(p))
		}
	})
}

// postPrio posts an echo request on one of c's lanes with the prio word
// forged, as a hostile sender would, and returns the receiver's code.
func postPrio(t *testing.T, c *Conn, word uint32) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := postWaiting(t, c, []byte{opEcho, 'p'}, word)
	if st, _ := l.wait(ctx, true, false); st != laneAnswered {
		c.discard(l)
		t.Fatalf("prio word %#x: no answer within 10s (state %d)", word, st)
	}
	code := l.w.code.Load()
	l.w.prio.Store(0)
	l.w.state.Store(laneIdle)
	c.put(l)
	return code
}

// A prio word that no valid priority encodes to fails the Send with
// ErrBadMessage, across processes; the request is never delivered and the
// receiver serves on. Valid words are served.
func TestBadPrioWord(t *testing.T) {
	p := startRecv(t, "badprio", 0, holdForever)
	c := dial(t, p, Options{})
	for _, w := range []uint32{
		1<<31 | 6<<8 | 128,                   // SCHED_DEADLINE: not carried
		1<<31 | 4<<8 | 128,                   // no policy 4
		1<<31 | transport.SchedFIFO<<8 | 128, // FIFO priority 0
		1<<31 | transport.SchedFIFO<<8 | 228, // FIFO priority 100
		1<<31 | 0<<8 | 107,                   // nice -21
		1<<31 | 0<<8 | 148,                   // nice 20
		1<<31 | 5<<8 | 129,                   // SCHED_IDLE with a level
		1<<31 | 1<<16 | 1<<8 | 150,           // bits beyond the policy
		1<<8 | 150,                           // no bit 31
	} {
		code := postPrio(t, c, w)
		if err := codeErr(code, 0, 0, 0); code != codeBadHeader || !errors.Is(err, transport.ErrBadMessage) {
			t.Fatalf("prio word %#x: code %d (%v), want codeBadHeader", w, code, err)
		}
		echo(t, c, "after a forged prio word")
	}
	for _, p := range []transport.Prio{{Policy: transport.SchedFIFO, Level: 99}, {Policy: transport.SchedRR, Level: 1},
		{Policy: transport.SchedOther, Level: -20}, {Policy: transport.SchedBatch, Level: 19}, {Policy: transport.SchedIdle}} {
		if code := postPrio(t, c, encodePrio(p)); code != codeOK {
			t.Fatalf("valid priority %+v (word %#x): code %d, want OK", p, encodePrio(p), code)
		}
	}
	if m := counts(t, c); m["recv"] != 9+5+1 {
		t.Fatalf("the receiver got %d requests, want 15 (9 echoes, 5 valid priorities, this count)", m["recv"])
	}
}

// In priority order, requests through shared memory (from other
// processes) and requests posted to the queue (as the FIFO transport's
// are; proxies here) take their arrival tickets from one counter, the
// bell's, so of one priority they are received in arrival order across
// the two: shm, posted, shm, posted.
func TestMixedPriorityOrder(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := transport.NewQueue("MIX", true)
	q.SetPriorityOrder()
	e, addr := listen(t, "MIX", Options{Queue: q})
	t.Cleanup(func() { q.Close() })
	var want []string
	var senders []*proc
	for i := 1; i <= 2; i++ {
		senders = append(senders, startSend(t, addr, fmt.Sprintf("S%d", i), "one", 0))
		waitFor(t, 10*time.Second, fmt.Sprintf("sender %d's request waiting", i), func() bool { return e.Waiting() == i })
		if !q.Post(transport.Request{}, i) {
			t.Fatal("posting a proxy failed")
		}
		want = append(want, fmt.Sprintf("S%d", i), fmt.Sprintf("proxy%d", i))
	}
	var got []string
	for range 4 {
		r, proxy, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if proxy > 0 {
			got = append(got, fmt.Sprintf("proxy%d", proxy))
			continue
		}
		whom, _ := r.Sender()
		got = append(got, whom)
		r.Reply([]byte("r"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("received %v, want %v", got, want)
	}
	for _, p := range senders {
		if line := p.Expect("sent", 10*time.Second); !strings.Contains(line, `sent nil "r"`) {
			t.Errorf("sender: %q", line)
		}
	}
}

// In priority order the receiver numbers arrivals itself: a sender that
// writes a ticket far in the past into each of its lanes does not
// overtake, without bound, a request the receiver saw before them. Here
// a nice-5 request waits (seen by the receiver, which took a nice -5
// decoy beside it); then 20 nice -5 requests come with tickets forged
// 1000 before it: it is received after at most PriorityWindow of them.
// Before, the forged tickets made each of them "the oldest", and the
// nice-5 request came last (helper-55).
func TestForgedTicketsBounded(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	q := transport.NewQueue("FORGE", true)
	q.SetPriorityOrder()
	t.Cleanup(func() { q.Close() })
	_, addr := listen(t, "FORGE", Options{Queue: q})
	dial := func(whom string) *Conn {
		c, err := Dial(context.Background(), addr, os.Getpid(), whom, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	victim, hostile := dial("victim"), dial("hostile")
	nice := func(n int) uint32 { return encodePrio(transport.Prio{Policy: transport.SchedOther, Level: n}) }
	receive := func() string {
		r, _, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := string(r.Data())
		if err := r.Reply(nil); err != nil {
			t.Fatal(err)
		}
		return got
	}
	lanes := []*lane{postWaiting(t, victim, []byte("victim"), nice(5)), postWaiting(t, victim, []byte("decoy"), nice(-5))}
	if got := receive(); got != "decoy" {
		t.Fatalf("received %q first, want the decoy", got)
	}
	for range 20 {
		l := postWaiting(t, hostile, []byte("hostile"), nice(-5))
		l.w.ticket.Store(lanes[0].w.ticket.Load() - 1000)
		lanes = append(lanes, l)
	}
	pos := -1
	for i := range 21 {
		if receive() == "victim" {
			pos = i
		}
	}
	if pos < transport.PriorityWindow-2 || pos > transport.PriorityWindow {
		t.Errorf("the nice-5 request was received after %d of the 20 later ones, want at most %d (PriorityWindow) and not far fewer", pos, transport.PriorityWindow)
	}
	for _, l := range lanes {
		if st, _ := l.wait(ctx, true, false); st != laneAnswered {
			t.Fatalf("a posted request's lane in state %d, want answered", st)
		}
		l.w.prio.Store(0)
		l.w.state.Store(laneIdle)
		l.c.put(l)
	}
}

// A proxy lane's arrival numbers: proxies first seen together share one,
// later ones get later ones, taken ones are forgotten, and with the ring
// of runs full its two newest runs merge under the newer number: nothing
// is numbered before it was first seen (helper-65: joining the newest run
// numbered later proxies before a request seen in between).
func TestProxyStamps(t *testing.T) {
	e := &Endpoint{}
	l := &rlane{}
	stamp := func(n uint32) uint32 { return e.proxyStampLocked(l, n) }
	take := func(k uint32) {
		l.ptaken += k
		l.dropRunsLocked()
	}
	newest := func() stampRun { return l.runs[(l.run0+l.nruns-1)%len(l.runs)] }
	if s := stamp(3); s != 1 {
		t.Fatalf("3 proxies seen first: %d, want 1", s)
	}
	if s := stamp(5); s != 1 || l.nruns != 2 {
		t.Fatalf("2 more seen: head %d (want 1), %d runs (want 2)", s, l.nruns)
	}
	take(3) // the first run's
	if s := stamp(2); s != 2 || l.nruns != 1 {
		t.Fatalf("first run taken: head %d (want 2), %d runs (want 1)", s, l.nruns)
	}
	for i := range uint32(7) { // 7 more sightings of one more proxy: the ring of 8 runs fills
		stamp(3 + i)
	}
	if l.nruns != len(l.runs) || e.arrivals.Load() != 9 {
		t.Fatalf("%d runs, %d numbers given, want %d and 9", l.nruns, e.arrivals.Load(), len(l.runs))
	}
	r := e.arrivals.Add(1) // a request seen now, between sightings
	stamp(10)              // one more proxy, the ring full
	if got := newest(); got.stamp <= r || got.end != l.ptaken+10 {
		t.Errorf("a proxy seen after request %d numbered %d (run to %d)", r, got.stamp, got.end)
	}
	if l.nruns != len(l.runs) {
		t.Fatalf("%d runs, want %d", l.nruns, len(l.runs))
	}
	for i := range len(l.runs) { // nothing older first, each run's number later than the one before
		a, b := l.runs[(l.run0+i)%len(l.runs)], l.runs[(l.run0+i+1)%len(l.runs)]
		if i+1 < l.nruns && (int32(b.stamp-a.stamp) <= 0 || int32(b.end-a.end) <= 0) {
			t.Errorf("runs %d and %d out of order: %+v, %+v", i, i+1, a, b)
		}
	}
	take(2) // the second run's
	if s := stamp(8); s != 3 {
		t.Fatalf("second run taken: head %d, want 3", s)
	}
	take(8) // all of them
	if l.nruns != 0 {
		t.Fatalf("every proxy taken, %d runs left", l.nruns)
	}
	if s := stamp(1); s != e.arrivals.Load() {
		t.Fatalf("a new proxy: %d, want the newest number %d", s, e.arrivals.Load())
	}
}
