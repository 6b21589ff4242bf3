//go:build !race

package simpl_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A receiver kept busy by shared-memory senders still reads its FIFO
// (counted without the race detector, which slows the senders unevenly):
// requests waiting in the FIFO (a C SIMPL-style sender's) are served a
// few shared-memory requests apart, not only when no shared-memory
// request is posted. Before, a FIFO request waited behind every
// shared-memory one for as long as they came (493 in a row; helper-49).
func TestFIFONotStarved(t *testing.T) {
	if wantTransport() == simpl.FIFO {
		t.Skip("FIFO transport forced: no shared-memory senders")
	}
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	var procs []*simpltest.Proc
	for i := range 4 {
		procs = append(procs, simpltest.Start(t, "pump", append(env(dir), "GOSIMPL_TRANSPORT=shm"), "SHM"+strconv.Itoa(i), "SRV"))
	}
	// A burst: its requests wait in the FIFO together, so the gaps
	// between them are the receiver's doing, not the sender's.
	const burst = 24
	procs = append(procs, simpltest.Start(t, "burst", append(env(dir), "GOSIMPL_TRANSPORT=fifo"), "FIFOBURST", "SRV", strconv.Itoa(burst)))
	// Nothing is received until the burst's doorbells are all in the
	// FIFO (a Receive alone reads it): what follows is the receiver's
	// order, not the senders' pace.
	rx, err := os.OpenFile(filepath.Join(dir, "SRV."+strconv.Itoa(os.Getpid())), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	deadline := time.Now().Add(testTimeout)
	for n, _ := sys.PipeBuffered(int(rx.Fd())); n < 4*burst; n, _ = sys.PipeBuffered(int(rx.Fd())) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of doorbells in the FIFO after %v, want the burst's %d", n, testTimeout, 4*burst)
		}
		time.Sleep(time.Millisecond) // polling the FIFO's fill
	}
	ctx := simpltest.Context(t, testTimeout)
	var gaps []int
	fifoSeen, gap, total := 0, 0, 0
	for fifoSeen < burst && total < 20000 {
		msg, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total++
		// Work: long enough that the shared-memory senders always have
		// a request posted by the time the next Receive looks.
		for end := time.Now().Add(100 * time.Microsecond); time.Now().Before(end); {
		}
		if who, _ := msg.Sender(); strings.HasPrefix(who, "FIFOBURST") {
			if fifoSeen > 0 {
				gaps = append(gaps, gap)
			}
			fifoSeen++
			gap = 0
			msg.Reply(incremented(msg.Data()[1:]))
			continue
		}
		gap++
		msg.Reply(msg.Data())
	}
	slices.Sort(gaps)
	median := -1
	if len(gaps) > 0 {
		median = gaps[len(gaps)/2]
	}
	// Every feedEvery (8) Receives at least one is read: all of them
	// within about 8 × 24 = 192 Receives; twice that allows for the
	// shared-memory senders' own turns.
	t.Logf("%d requests, %d of the burst's through FIFOs, shared-memory ones between two: median %d, gaps %v", total, fifoSeen, median, gaps)
	if fifoSeen < burst || total > 2*8*burst {
		t.Errorf("%d of %d FIFO requests served among %d Receives (want all within %d), median %d shared-memory ones between two: they waited behind them", fifoSeen, burst, total, 2*8*burst, median)
	}
	srv.Close()
	for _, p := range procs {
		p.Wait(testTimeout)
	}
}
