package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// remoteSubs lists, by fcsub -list on host a, the subscriptions of a's
// broker BROKER that come from host b: their pids there.
func (h *twoHosts) remoteSubs(t *testing.T) map[int]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	r := runCmd(t, h.a.Command(ctx, bin("fcsub"), "-b", "BROKER", "-list"))
	if r.code != 0 {
		t.Fatalf("fcsub -list on a: exit %d, stderr %q", r.code, r.stderr)
	}
	pids := map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		f := strings.Fields(line)
		var pid int
		if len(f) > 3 && strings.HasPrefix(f[3], "b:") {
			if _, err := fmt.Sscanf(f[3], "b:%d", &pid); err != nil {
				t.Fatalf("fcsub -list on a: row %q: %v", line, err)
			}
			pids[pid] = true
		}
	}
	return pids
}

// waitRemoteSubs polls a's broker's subscriptions until done says they
// are as wanted, for at most d after t0; it returns how long after t0
// that was.
func (h *twoHosts) waitRemoteSubs(t *testing.T, t0 time.Time, d time.Duration, what string, done func(map[int]bool) bool) time.Duration {
	t.Helper()
	for {
		subs := h.remoteSubs(t)
		if done(subs) {
			return time.Since(t0)
		}
		if time.Since(t0) > d {
			t.Fatalf("a's broker's subscriptions from b after %v: %v; want %s", d, subs, what)
		}
		time.Sleep(20 * time.Millisecond) // polling the broker's listing, bounded above
	}
}

// A broker on a with subscribers on b (fcsub -b a:BROKER, each holding a
// Next at the broker): one subscriber SIGKILLed, the broker drops its
// subscription within 2 s, as its listing shows, and keeps the other's,
// which still gets what is published; then b's gateway SIGKILLed, the
// other's goes within 2 s too. (Before, a remote subscriber's held Next
// kept its subscription for good.)
func TestRemoteSubscriberGone(t *testing.T) {
	const bound = 2 * time.Second
	h := newTwoHosts(t)
	broker := proctest.StartCmd(t, h.a.Command(context.Background(), bin("fcbroker"), "-n", "BROKER"))
	broker.Expect("attached BROKER", lineTimeout)
	subscribe := func() *proctest.Proc {
		p := proctest.StartCmd(t, h.b.Command(context.Background(), bin("fcsub"), "-b", "a:BROKER", "plant/#"))
		p.Expect("subscribed", lineTimeout)
		return p
	}
	sub1, sub2 := subscribe(), subscribe()
	// Both listed at a's broker as b's, with their pids there; and their
	// names (fcsub_PID) known on a, which is how the broker follows them.
	h.waitRemoteSubs(t, time.Now(), lineTimeout, "both subscribers", func(s map[int]bool) bool { return s[sub1.PID()] && s[sub2.PID()] })
	for _, p := range []*proctest.Proc{sub1, sub2} {
		name := fmt.Sprintf("b:fcsub_%d", p.PID())
		for deadline := time.Now().Add(lineTimeout); ; {
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			r := runCmd(t, h.a.Command(ctx, bin("fclocator"), "-hosts", "-list", name))
			cancel()
			if r.code == 0 && strings.Contains(r.stdout, name) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("fclocator -hosts -list %s on a: exit %d, stdout %q, stderr %q", name, r.code, r.stdout, r.stderr)
			}
			time.Sleep(20 * time.Millisecond) // polling a's view of b's names, bounded above
		}
	}

	t0 := time.Now()
	sub1.Kill()
	took := h.waitRemoteSubs(t, t0, lineTimeout, "the killed subscriber's gone, the other's kept", func(s map[int]bool) bool {
		if !s[sub2.PID()] {
			t.Fatalf("the live subscriber's subscription went with the killed one's: %v", s)
		}
		return !s[sub1.PID()]
	})
	if took > bound {
		t.Errorf("subscriber on b SIGKILLed: its subscription dropped by a's broker %v later, want within %v", took, bound)
	} else {
		t.Logf("subscriber on b SIGKILLed: its subscription dropped by a's broker within %v", took.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if r := runCmd(t, h.a.Command(ctx, bin("fcpub"), "-b", "BROKER", "-t", "plant/temp", "-m", "21.5")); r.code != 0 {
		t.Fatalf("fcpub on a: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := sub2.Expect("plant/temp", lineTimeout); !strings.Contains(got, "21.5") {
		t.Errorf("the other subscriber on b: %q, want plant/temp: 21.5", got)
	}

	t0 = time.Now()
	h.gwB.Kill()
	took = h.waitRemoteSubs(t, t0, lineTimeout, "none", func(s map[int]bool) bool { return len(s) == 0 })
	if took > bound {
		t.Errorf("b's gateway SIGKILLed: the subscription of b's subscriber dropped by a's broker %v later, want within %v", took, bound)
	} else {
		t.Logf("b's gateway SIGKILLed: the subscription of b's subscriber dropped by a's broker within %v", took.Round(time.Millisecond))
	}
	sub2.Kill()
	broker.Signal(15)
	if err := broker.Wait(runTimeout); err != nil {
		t.Errorf("fcbroker after SIGTERM: %v", err)
	}
}
