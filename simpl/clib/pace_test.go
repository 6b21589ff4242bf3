package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/pace"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
)

// TestReceivePaced: a ported C receiver whose requests come a millisecond
// apart (a control loop's) sleeps in Receive between them without Go's
// runtime taking its processor at every sleep (package pace: a C thread
// in Go never passes through Go's scheduler either). The test counts the
// receiver process's voluntary context switches a request, with pacing
// and without it (pace.Env), in one run, with two Ps, and wants pacing's
// at most 70% of the other's. Counts, not times, decide it.
func TestReceivePaced(t *testing.T) {
	built(t)
	const (
		wait = 10 * time.Second
		warm = 30  // past the runtime's first 10 ms, after which it takes Ps
		n    = 200 // requests counted
		gap  = time.Millisecond
	)
	dir := proctest.Dir(t)
	ch, err := simpl.Attach("PACECLI", simpl.WithDir(dir), simpl.WithTransport(simpl.SHM), simpl.WithSpin(false))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	ctx := proctest.Context(t, proctest.Scale(time.Minute))
	perRequest := map[string]float64{}
	for _, mode := range []string{"on", "off"} {
		name := "PACED" + mode
		r := start(t, dir, []string{"GOSIMPL_SPIN=off", "GOMAXPROCS=2", pace.Env + "=" + mode}, "receiver", "-n", name)
		r.expectLine(t, "ready", wait)
		to, err := ch.Locate(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		count := func() int64 {
			t.Helper()
			c, err := sys.VoluntarySwitches(r.PID())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		req := []byte("paced") // answered +1 with a 16-byte tail (common.h)
		reply := make([]byte, 64)
		var c0 int64
		for i := range warm + n {
			if i == warm {
				c0 = count()
			}
			// The pacing is the workload: the receiver sleeps between
			// requests, as a control loop's does between cycles.
			time.Sleep(gap)
			if _, err := to.Send(ctx, req, reply); err != nil {
				t.Fatalf("%s: request %d: %v", mode, i, err)
			}
		}
		perRequest[mode] = float64(count()-c0) / n
		to.Close()
		r.Signal(syscall.SIGTERM)
		r.exits(t, 0)
	}
	t.Logf("voluntary context switches a request: %.2f with pacing, %.2f without", perRequest["on"], perRequest["off"])
	if on, off := perRequest["on"], perRequest["off"]; on > 0.7*off {
		t.Errorf("with pacing %.2f context switches a request, without %.2f: want at most 70%% of it", on, off)
	}
}
