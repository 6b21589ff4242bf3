package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
)

// allocsHelper (mode allocs) attaches as name, locates target (a remote
// name), warms up, and prints "allocs SEND TRIGGER": the allocations of
// one Send and of one Trigger to it, averaged over many
// (testing.AllocsPerRun).
func allocsHelper(name, target string) int {
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		ch, err := simpl.Attach(name)
		if err != nil {
			return err
		}
		defer ch.Close()
		to, err := ch.Locate(ctx, target)
		if err != nil {
			return err
		}
		defer to.Close()
		fmt.Println("ready")
		req := []byte("steady state")
		reply := make([]byte, 64)
		var sendErr error
		send := func() {
			if _, err := to.Send(ctx, req, reply); err != nil && sendErr == nil {
				sendErr = err
			}
		}
		trigger := func() {
			if err := to.Trigger(7); err != nil && sendErr == nil {
				sendErr = err
			}
		}
		for range 50 {
			send()
			trigger()
		}
		s := testing.AllocsPerRun(300, send)
		tr := testing.AllocsPerRun(300, trigger)
		if sendErr != nil {
			return sendErr
		}
		fmt.Printf("allocs %g %g\n", s, tr)
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "allocs:", err)
		return 1
	}
	return 0
}

// A Go program's Send and Trigger to a remote name (through its host's
// gateway) allocate nothing in steady state, as local ones do: the paths
// the network adds to the ones TestLoopAllocs covers. The program is a real
// process on host a; the receiver is fcrecv on host b.
func TestRemoteAllocs(t *testing.T) {
	if proctest.RaceEnabled() {
		// sync.Pool drops what it is given at random under the race
		// detector: the count would be the detector's. CI runs this
		// test without it too.
		t.Skip("allocation counts mean nothing under the race detector")
	}
	h := newTwoHosts(t)
	srv := h.recv(t, "-n", "SRV", "-max-print", "1")
	p := h.startHelper(t, true, "allocs", "CTL", "b:SRV")
	line := p.Expect("allocs", runTimeout)
	if err := p.Wait(runTimeout); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("helper printed %q", line)
	}
	send, err1 := strconv.ParseFloat(f[1], 64)
	trig, err2 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("helper printed %q", line)
	}
	if send != 0 || trig != 0 {
		t.Errorf("a remote Send allocates %g times, a remote Trigger %g, want 0", send, trig)
	}
	srv.Signal(15)
	srv.Wait(runTimeout)
}
