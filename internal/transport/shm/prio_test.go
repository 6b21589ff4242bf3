//go:build !race

package shm

import (
	"context"
	"errors"
	"fmt"
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
