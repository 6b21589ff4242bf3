package fifo

// A sender that dies without a word (SIGKILL) while the receiver holds its
// message: the receiver's answer (Reply, ReplyInPlace or ReplyError) must
// return ErrPeerGone at once, the receiver must go on serving others, and
// it must keep nothing of the dead sender: not its segment (attached, or
// left existing), not its reply FIFO's descriptor, not its pidfd.

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/transport/transporttest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

func init() { roles["sendseq"] = runSendSeq }

// runSendSeq (DIR NAME TO MSG...) attaches NAME, locates TO and sends each
// MSG in turn, printing "reply R" for each reply R or "err E" for a
// failure, then "done".
func runSendSeq(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	defer ep.Close()
	c, err := ep.Locate(args[2])
	if err != nil {
		return err
	}
	defer c.Close()
	proctest.Ready()
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	reply := make([]byte, 64)
	for _, msg := range args[3:] {
		n, err := c.Send(ctx, []byte(msg), reply)
		if err != nil {
			fmt.Printf("err %v\n", err)
			continue
		}
		fmt.Printf("reply %s\n", reply[:n])
	}
	fmt.Println("done")
	return nil
}

// TestSenderKilled: five rounds, each with a sender helper that is
// answered once (so the receiver keeps its reply FIFO open and its
// segment attached), then sends a request the receiver holds, and is
// SIGKILLed. The held request's answer returns ErrPeerGone, a second
// answer ErrReplied; nothing of the dead sender stays in the receiver;
// and another sender is served normally afterwards. At the end, after
// Close, no descriptor is left open.
func TestSenderKilled(t *testing.T) {
	t.Run("pidfd", testSenderKilled)
	t.Run("polling", func(t *testing.T) {
		noPidfd(t)
		testSenderKilled(t)
	})
}

func testSenderKilled(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Attach("SRV", Options{Registry: reg, ThreadReceive: threadRx()})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	ctx := proctest.Context(t, time.Minute)
	receive := func(what string) transport.Request {
		t.Helper()
		req, _, err := ep.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %s: %v", what, err)
		}
		return req
	}

	answers := []struct {
		name string
		do   func(transport.Request) error
	}{
		{"Reply", func(r transport.Request) error { return r.Reply([]byte("too late")) }},
		{"ReplyError", transport.Request.ReplyError},
		{"ReplyInPlace", func(r transport.Request) error {
			copy(r.ReplyBuffer(), "too late")
			return r.ReplyInPlace(8)
		}},
	}
	for round := range 5 {
		answer := answers[round%len(answers)]
		reaped := round%2 == 1 // the dead sender's FIFOs removed before the answer, or still there

		v := proctest.Start(t, "sendseq", nil, dir, "VIC", "SRV", "warm", "hold")
		vpid := v.PID()
		warm := receive("warm")
		if err := warm.Reply([]byte("ok")); err != nil {
			t.Fatalf("round %d: Reply to a live sender: %v", round, err)
		}
		v.Expect("reply ok", helperTimeout)
		held := receive("hold")
		if whom, pid := held.Sender(); whom != "VIC" || pid != vpid || string(held.Data()) != "hold" {
			t.Fatalf("round %d: received %q from %s (pid %d), want \"hold\" from VIC (pid %d)", round, held.Data(), whom, pid, vpid)
		}
		seg := segmentOf(held)

		died := transporttest.WatchDeath(t, vpid)
		killed(t, v)
		died()
		if reaped {
			bury(t, v, reg)
		}
		start := time.Now()
		err := answer.do(held)
		if !errors.Is(err, transport.ErrPeerGone) {
			t.Errorf("round %d: %s to a killed sender: %v, want ErrPeerGone", round, answer.name, err)
		} else if !strings.Contains(err.Error(), "VIC") {
			t.Errorf("round %d: %s: %q does not name the sender", round, answer.name, err)
		}
		if d := time.Since(start); d > deathBound {
			t.Errorf("round %d: %s took %v", round, answer.name, d)
		}
		if err := held.Reply([]byte("again")); !errors.Is(err, transport.ErrReplied) {
			t.Errorf("round %d: second answer: %v, want ErrReplied", round, err)
		}
		if d := held.Data(); d != nil {
			t.Errorf("round %d: the answered request still shows %q", round, d)
		}

		// Nothing of the dead sender is kept, at once (not at the next
		// sweep).
		if left := keptOf(ep, vpid); left != "" {
			t.Errorf("round %d: the receiver still holds, of the dead sender: %s", round, left)
		}
		for _, s := range proctest.Segments(t, vpid) {
			t.Errorf("round %d: the dead sender's segment %d (ours %d) still exists, attached %d times", round, s.ID, seg, s.Attached)
		}
		if !reaped {
			bury(t, v, reg)
		}

		// The receiver goes on: another sender is served, twice, and a
		// sender reusing the name is served too.
		for _, name := range []string{"OTHER", "VIC"} {
			o := proctest.Start(t, "sendseq", nil, dir, name, "SRV", "ping", "pong")
			for _, want := range []string{"ping", "pong"} {
				r := receive(want)
				if whom, pid := r.Sender(); whom != name || pid != o.PID() || string(r.Data()) != want {
					t.Fatalf("round %d: received %q from %s (pid %d), want %q from %s (pid %d)", round, r.Data(), whom, pid, want, name, o.PID())
				}
				if err := r.Reply([]byte(want)); err != nil {
					t.Fatalf("round %d: Reply to %s: %v", round, name, err)
				}
				o.Expect("reply "+want, helperTimeout)
			}
			o.Expect("done", helperTimeout)
			if err := o.Wait(helperTimeout); err != nil {
				t.Fatalf("round %d: sender %s: %v", round, name, err)
			}
		}
		if n := ep.Dropped(); n != 0 {
			t.Errorf("round %d: %d doorbells dropped", round, n)
		}
	}
	ep.Close()
	proctest.CheckNoSegments(t)
	if n := proctest.AttachedHere(t); n != 0 {
		t.Errorf("%d segments mapped after Close", n)
	}
}

// keptOf describes what ep still keeps of the sender process pid: cached
// segments, pending requests, reply FIFO descriptors. Empty if nothing.
func keptOf(ep *Endpoint, pid int) string {
	var kept []string
	ep.mu.Lock()
	for id, s := range ep.segs {
		if s.cr.pid == pid {
			kept = append(kept, fmt.Sprintf("segment %d (refs %d, pidfd %v)", id, s.refs, s.cr.proc != nil))
		}
	}
	for k, id := range ep.bySender {
		if k.pid == pid {
			kept = append(kept, fmt.Sprintf("sender %s -> segment %d", k.whom, id))
		}
	}
	for r := range ep.pending {
		if r.hdr.pid == pid {
			kept = append(kept, "a pending request")
		}
	}
	ep.mu.Unlock()
	ep.replyMu.Lock()
	for k, fd := range ep.replyFDs {
		if k.pid == pid {
			kept = append(kept, "reply FIFO Y"+k.whom+"."+strconv.Itoa(pid)+" open as fd "+strconv.Itoa(fd.Int()))
		}
	}
	ep.replyMu.Unlock()
	return strings.Join(kept, "; ")
}
