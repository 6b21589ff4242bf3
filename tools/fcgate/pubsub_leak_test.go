package main

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// A broker on a whose subscribers on b come and go, one at a time, holds
// no more descriptors after the sixth than after the first: each first
// subscription from b starts a watch of b's names through a's gateway,
// and the watch's connection to the gateway goes when the last
// subscription from b does. Before, every watch left its connection (a
// socket and a shared-memory lane on both sides) until the broker
// exited, and after 64 the gateway refused the broker more lanes.
func TestRemoteWatchesLeaveNothing(t *testing.T) {
	h := newTwoHosts(t)
	broker := proctest.StartCmd(t, h.a.Command(context.Background(), bin("fcbroker"), "-n", "BROKER"))
	broker.Expect("attached BROKER", lineTimeout)
	fds := func() int {
		des, err := os.ReadDir("/proc/" + strconv.Itoa(broker.PID()) + "/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(des)
	}
	episode := func() {
		t.Helper()
		p := proctest.StartCmd(t, h.b.Command(context.Background(), bin("fcsub"), "-b", "a:BROKER", "plant/#"))
		p.Expect("subscribed", lineTimeout)
		h.waitRemoteSubs(t, time.Now(), lineTimeout, "the subscriber", func(s map[int]bool) bool { return s[p.PID()] })
		p.Signal(syscall.SIGTERM)
		if err := p.Wait(runTimeout); err != nil {
			t.Fatalf("fcsub after SIGTERM: %v", err)
		}
		h.waitRemoteSubs(t, time.Now(), lineTimeout, "none", func(s map[int]bool) bool { return len(s) == 0 })
	}
	episode()
	first := fds()
	for range 5 {
		episode()
	}
	// The last watch's connection closes as its watch ends, just after
	// the subscription: polled, bounded.
	for deadline := time.Now().Add(lineTimeout); fds() > first+2; {
		if time.Now().After(deadline) {
			t.Fatalf("the broker holds %d descriptors after six subscribers from b came and went, %d after the first", fds(), first)
		}
		time.Sleep(20 * time.Millisecond) // polling its descriptors
	}
	broker.Signal(syscall.SIGTERM)
	if err := broker.Wait(runTimeout); err != nil {
		t.Errorf("fcbroker after SIGTERM: %v", err)
	}
}
