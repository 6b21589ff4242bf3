package fifo

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// pipeHolds reports how many bytes wait in ep's receive FIFO.
func pipeHolds(t *testing.T, ep *Endpoint, n int) func() bool {
	return func() bool { return queued(t, ep) == n }
}

// TestTwoStraysAroundDoorbell: nobody writes two stray writes into a
// public receiver's FIFO, one before a Send's doorbell and one after it,
// whose lengths add up to a whole number of doorbells (2 + 2 bytes). The
// FIFO then holds a multiple of 4 bytes, so counting what it holds
// (FIONREAD) does not show that the doorbell stream is misaligned; the
// reader must still find the request by its claim and answer it. Before,
// it read the stray and half the doorbell as one word, dropped it, and
// the Send was never answered (the lost requests of fcsoak -chaos over
// FIFOs).
func TestTwoStraysAroundDoorbell(t *testing.T) {
	for _, strays := range [][2]string{{"0102", "0304"}, {"01", "020304"}, {"010203", "0405060708"}} {
		t.Run(strays[0]+"_"+strays[1], func(t *testing.T) {
			dir := sharedDir(t)
			reg, err := naming.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			ep := attachT(t, reg, "SRV", 0o666)
			// A's request is read and posted, and not received: the
			// reader waits for Receive before it reads on, so what comes
			// next waits in the FIFO, all of it at once.
			// Read on Receive's thread (threadWait), the request is taken
			// here, as a Receive would, and answered after.
			a := proctest.Start(t, "legit", nil, dir, "CA", "SRV", "a")
			var heldA transport.Request
			waitFor(t, "A's request posted", func() bool {
				if ep.threadRx && !heldA.Valid() {
					heldA, _, _ = ep.Feed()
				}
				ep.mu.Lock()
				defer ep.mu.Unlock()
				return len(ep.pending) == 1
			})
			stray(t, ep, strays[0])
			n := len(strays[0]) / 2
			waitFor(t, "the first stray in the FIFO", pipeHolds(t, ep, n))
			b := proctest.Start(t, "legit", nil, dir, "CB", "SRV", "b")
			waitFor(t, "B's doorbell in the FIFO", pipeHolds(t, ep, n+4))
			stray(t, ep, strays[1])
			waitFor(t, "the second stray in the FIFO", pipeHolds(t, ep, n+4+len(strays[1])/2))

			var served atomic.Int64
			if heldA.Valid() {
				if err := heldA.Reply(append(heldA.Data(), '!')); err != nil {
					t.Fatal(err)
				}
			}
			echoServer(t, ep, &served)
			expectLines(t, a, "reply a!", "done")
			start := time.Now()
			expectLines(t, b, "reply b!", "done")
			t.Logf("B answered after %v; misaligned %d, dropped %d", time.Since(start), ep.Misaligned(), ep.Dropped())
			if n := ep.Misaligned(); n != 1 {
				t.Errorf("Misaligned() = %d, want 1", n)
			}
			for _, p := range []*proctest.Proc{a, b} {
				if err := p.Wait(helperTimeout); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
