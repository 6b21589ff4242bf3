package simpl_test

import (
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A receiver kept busy by shared-memory senders still reads its FIFO:
// a C SIMPL-style sender (FIFOs) waits behind a few shared-memory
// requests at most, never behind all of them for as long as they keep
// coming. Before, Receive read the FIFO only when no lane had a request
// posted, and FIFO Sends waited hundreds of milliseconds (helper-49).
func TestFIFONotStarved(t *testing.T) {
	if wantTransport() == simpl.FIFO {
		t.Skip("FIFO transport forced: no shared-memory senders")
	}
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	var pumps []*simpltest.Proc
	for i := range 4 {
		pumps = append(pumps, simpltest.Start(t, "pump", append(env(dir), "GOSIMPL_TRANSPORT=shm"), "SHM"+string(rune('A'+i)), "SRV"))
	}
	fifo := simpltest.Start(t, "pump", append(env(dir), "GOSIMPL_TRANSPORT=fifo"), "FIFOPUMP", "SRV")
	ctx := simpltest.Context(t, testTimeout)
	const wantFIFO = 30
	fifoSeen, gap, maxGap, total := 0, 0, 0, 0
	for fifoSeen < wantFIFO && total < 20000 {
		msg, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total++
		// Work: long enough that the shared-memory senders always have
		// a request posted by the time the next Receive looks.
		for end := time.Now().Add(100 * time.Microsecond); time.Now().Before(end); {
		}
		if who, _ := msg.Sender(); who == "FIFOPUMP" {
			if fifoSeen > 0 {
				maxGap = max(maxGap, gap)
			}
			fifoSeen++
			gap = 0
		} else {
			gap++
		}
		msg.Reply(msg.Data())
	}
	t.Logf("%d requests, %d through FIFOs, at most %d others between two of those", total, fifoSeen, maxGap)
	if fifoSeen < wantFIFO || maxGap > 32 {
		t.Errorf("%d of %d requests came through FIFOs, up to %d shared-memory ones served between two: the FIFO sender waited behind them", fifoSeen, total, maxGap)
	}
	srv.Close()
	for _, p := range append(pumps, fifo) {
		p.Wait(testTimeout)
	}
}
