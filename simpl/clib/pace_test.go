package main

import (
	"encoding/json"
	"fmt"
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
// at most 70% of the other's. Counts, not times, decide it. Through
// shared memory, where the receiver sleeps on the bell's futex, and
// through its FIFO, where it waits in a ppoll of the FIFO.
func TestReceivePaced(t *testing.T) {
	for _, tr := range []string{simpl.SHM, simpl.FIFO} {
		t.Run(tr, func(t *testing.T) { testReceivePaced(t, tr) })
	}
}

func testReceivePaced(t *testing.T, tr string) {
	built(t)
	const (
		wait = 10 * time.Second
		warm = 30  // past the runtime's first 10 ms, after which it takes Ps
		n    = 200 // requests counted
		gap  = time.Millisecond
	)
	dir := proctest.Dir(t)
	ch, err := simpl.Attach("PACECLI", simpl.WithDir(dir), simpl.WithTransport(tr), simpl.WithSpin(false))
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
		count := func() int64 { return switches(t, r.PID()) }
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
	wantPaced(t, "receiver", "a request", perRequest["on"], perRequest["off"])
}

// TestSendPaced: a ported C sender that sleeps a millisecond between its
// Sends (a control loop's sensor) is paced as a receiver is: the runtime
// takes the processor of a C thread whenever it sleeps, in C as in Go,
// unless the thread passes through Go's scheduler now and then. cbench
// -gap, ported C to ported C through shared memory with two Ps, reports
// each process's voluntary context switches a round trip; with pacing
// the sender's must be at most 70% of those without it (about 2.4
// against 5.0, ideally 2: its sleep and its wait for the reply), the
// receiver's likewise (TestReceivePaced's case, here both sides C).
// Counts, not times, decide it.
func TestSendPaced(t *testing.T) {
	buildCbench(t)
	type figures struct {
		N    int     `json:"n"`
		Send float64 `json:"send_switches"`
		Recv float64 `json:"recv_switches"`
	}
	got := map[string]figures{}
	for _, mode := range []string{"on", "off"} {
		dir := proctest.Dir(t)
		env := []string{"GOSIMPL_TRANSPORT=auto", "GOSIMPL_SPIN=off", "GOMAXPROCS=2", pace.Env + "=" + mode}
		p := start(t, dir, env, "cbench", "-gap", "1000", "-n", "200", "-warm", "30", "-json", "-label", "paced-"+mode)
		out := p.output(t, proctest.Scale(time.Minute))
		p.exits(t, 0)
		var f figures
		if err := json.Unmarshal(out, &f); err != nil || f.N != 200 || f.Send <= 0 || f.Recv <= 0 {
			t.Fatalf("%s: output %q (%v); stderr: %s", mode, out, err, p.Stderr())
		}
		got[mode] = f
	}
	on, off := got["on"], got["off"]
	t.Logf("voluntary context switches a round trip: sender %.2f with pacing, %.2f without; receiver %.2f, %.2f", on.Send, off.Send, on.Recv, off.Recv)
	wantPaced(t, "sender", "a round trip", on.Send, off.Send)
	wantPaced(t, "receiver", "a round trip", on.Recv, off.Recv)
}

// TestQNXPaced: the QNX calls are paced as C SIMPL's are: a client whose
// MsgSends come a millisecond apart, and the server sleeping in
// MsgReceive between them, each make at most 70% of the voluntary context
// switches a message with pacing that they make without it (two Ps; the
// client counts its own, the test the server's over the same sends).
func TestQNXPaced(t *testing.T) {
	builtQNX(t)
	const (
		warm = "paced:30:1000" // past the runtime's first 10 ms
		n    = 200
	)
	type figures struct{ client, server float64 }
	got := map[string]figures{}
	for _, mode := range []string{"on", "off"} {
		dir := proctest.Dir(t)
		env := []string{"GOSIMPL_SPIN=off", "GOMAXPROCS=2", pace.Env + "=" + mode}
		s, pid, chid := qnxServerEnv(t, dir, env)
		c := start(t, dir, env, "qnx_client", pid, chid, warm, "wait", fmt.Sprintf("paced:%d:1000", n))
		paced := func() float64 {
			t.Helper()
			line := c.ReadLine(proctest.Scale(time.Minute))
			var per float64
			var failed int
			if k, err := fmt.Sscanf(line, "paced %g %d", &per, &failed); k != 2 || err != nil || failed != 0 {
				t.Fatalf("%s: client: %q; stderr: %s", mode, line, c.Stderr())
			}
			return per
		}
		count := func() int64 { return switches(t, s.PID()) }
		paced() // warm: the server has answered all 30
		c0 := count()
		c.stdin.Close() // the client goes on
		client := paced()
		got[mode] = figures{client, float64(count()-c0) / n}
		c.exits(t, 0)
		quit(t, dir, s, pid, chid)
	}
	on, off := got["on"], got["off"]
	t.Logf("voluntary context switches a message: client %.2f with pacing, %.2f without; server %.2f, %.2f", on.client, off.client, on.server, off.server)
	wantPaced(t, "client", "a message", on.client, off.client)
	wantPaced(t, "server", "a message", on.server, off.server)
}

// switches is process pid's voluntary context switches so far.
func switches(t *testing.T, pid int) int64 {
	t.Helper()
	n, err := sys.VoluntarySwitches(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// wantPaced fails the test unless who's voluntary context switches per
// unit with pacing (on) are at most 70% of those without it (off).
func wantPaced(t *testing.T, who, unit string, on, off float64) {
	t.Helper()
	if on > 0.7*off {
		t.Errorf("%s: with pacing %.2f context switches %s, without %.2f: want at most 70%% of it", who, on, unit, off)
	}
}
