package fifo

// Over FIFOs a relay hands the request over whole (C SIMPL's wire): the
// relayer rings the next receiver with the sender's segment and is done,
// and that receiver answers the sender directly. These tests check that
// a sender follows its request when it is handed over: the relayer may
// exit at once, and the sender still gets its answer; but should the
// receiver that holds it die, the sender learns it as from any receiver.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/transport"
	"github.com/gosimpl/gosimpl/transport/transporttest"
)

func init() {
	roles["relayexit"] = runRelayExit
	roles["relaystay"] = func(args []string) error { return relayOnce(args, true) }
	roles["holdflush"] = runHoldFlush
}

// runRelayExit (DIR NAME TO) relays one request to TO, prints "relayed"
// and exits at once.
func runRelayExit(args []string) error { return relayOnce(args, false) }

// relayOnce is runRelayExit; with stay (the relaystay role) the relayer
// then lives on, receiving nothing, until killed.
func relayOnce(args []string, stay bool) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	defer ep.Close()
	to, err := ep.Locate(args[2])
	if err != nil {
		return err
	}
	defer to.Close()
	proctest.Ready()
	req, _, err := ep.Receive(context.Background())
	if err != nil {
		return err
	}
	if err := req.Relay(context.Background(), to); err != nil {
		return err
	}
	fmt.Println("relayed")
	if stay {
		select {}
	}
	return nil
}

// runHoldFlush (DIR NAME) holds every request, printing "held" for each,
// until one says "flush": it then answers each held request with "re:"
// and its bytes, and the flush with "flushed".
func runHoldFlush(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	defer ep.Close()
	proctest.Ready()
	var held []transport.Request
	for {
		req, _, err := ep.Receive(context.Background())
		if err != nil {
			return err
		}
		if !req.Valid() {
			continue
		}
		if string(req.Data()) != "flush" {
			held = append(held, req)
			fmt.Println("held")
			continue
		}
		for _, h := range held {
			if err := h.Reply(append([]byte("re:"), h.Data()...)); err != nil {
				return err
			}
		}
		held = held[:0]
		if err := req.Reply([]byte("flushed")); err != nil {
			return err
		}
	}
}

// TestRelayHandOver: a Send to a relayer that hands the request over (to
// FINAL directly, or through a second relayer) and exits at once gets
// FINAL's later answer, not ErrPeerGone; and when FINAL is SIGKILLed
// after the relayers have exited, the Send fails with ErrPeerGone within
// deathBound of FINAL's death. Either way the Send's slot is left as it
// should be: back in the free list after the answer, retired (its reply
// FIFO gone) after the failure. Relayers that live on ("stay") change
// nothing: each tells the sender it handed the request over, and the
// sender watches FINAL (before, it watched the first relayer and waited
// as long as that lived).
// Both with pidfds and, as on kernels without them, polling.
func TestRelayHandOver(t *testing.T) {
	for _, watch := range []string{"pidfd", "polling"} {
		for _, hops := range []int{1, 2} {
			for _, relayers := range []string{"exit", "stay"} {
				for _, end := range []string{"answered", "killed"} {
					t.Run(fmt.Sprintf("%s-%d-%s-%s", watch, hops, relayers, end), func(t *testing.T) {
						if watch == "polling" {
							noPidfd(t)
						}
						testRelayHandOver(t, hops, relayers == "stay", end)
					})
				}
			}
		}
	}
}

func testRelayHandOver(t *testing.T, hops int, stay bool, end string) {
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	ctx := proctest.Context(t, time.Minute)
	fin := proctest.Start(t, "holdflush", nil, dir, "FINAL")
	defer bury(t, fin, reg)
	defer fin.Kill()
	// The relayers, last hop first: each locates the next when it starts.
	next := "FINAL"
	var rels []*proctest.Proc
	role := "relayexit"
	if stay {
		role = "relaystay"
	}
	for k := hops; k >= 1; k-- {
		name := "MID" + strconv.Itoa(k)
		r := proctest.Start(t, role, nil, dir, name, next)
		if stay {
			defer bury(t, r, reg)
			defer r.Kill()
		}
		rels = append(rels, r)
		next = name
	}
	c, err := ep.Locate(next)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type result struct {
		reply string
		err   error
		at    time.Time
	}
	res := make(chan result, 1)
	go func() {
		reply := make([]byte, 64)
		n, err := c.Send(ctx, []byte("req"), reply)
		res <- result{string(reply[:n]), err, time.Now()}
	}()
	for _, r := range rels {
		r.Expect("relayed", helperTimeout)
		if stay {
			continue
		}
		if err := r.Wait(helperTimeout); err != nil {
			t.Fatalf("relayer: %v", err)
		}
	}
	fin.Expect("held", helperTimeout)
	if !stay {
		// The Send's own receiver has gone, and its watcher knows it: a
		// sender that did not follow the hand-over fails now.
		waitFor(t, "the relayer's exit noticed", c.w.gone.Load)
	}

	// Such a sender returns at once; this one waits on.
	select {
	case r := <-res:
		t.Fatalf("Send returned while FINAL held its request: %q, %v", r.reply, r.err)
	case <-time.After(deathBound):
	}
	switch end {
	case "answered":
		f, err := ep.Locate("FINAL")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		reply := make([]byte, 64)
		if n, err := f.Send(ctx, []byte("flush"), reply); err != nil || string(reply[:n]) != "flushed" {
			t.Fatalf("flush: %q, %v; FINAL's stderr: %s", reply[:n], err, fin.Stderr())
		}
		select {
		case r := <-res:
			if r.err != nil || r.reply != "re:req" {
				t.Fatalf("Send through %d relayers that exited: %q, %v; want \"re:req\"", hops, r.reply, r.err)
			}
		case <-time.After(helperTimeout):
			t.Fatalf("Send through %d relayers still blocked %v after FINAL answered", hops, helperTimeout)
		}
		waitFor(t, "the slot back in the free list", func() bool {
			ep.slotMu.Lock()
			defer ep.slotMu.Unlock()
			return len(ep.busy) == 0
		})
	case "killed":
		died := transporttest.WatchDeath(t, fin.PID())
		killed(t, fin)
		death := died()
		select {
		case r := <-res:
			if !errors.Is(r.err, transport.ErrPeerGone) {
				t.Fatalf("Send whose request FINAL held when killed: %q, %v; want ErrPeerGone", r.reply, r.err)
			}
			if d := r.at.Sub(death); d > deathBound {
				t.Errorf("Send failed %v after FINAL died, want within %v", d, deathBound)
			}
		case <-time.After(helperTimeout):
			t.Fatalf("Send still blocked %v after FINAL was killed", helperTimeout)
		}
		if left := replyFIFOs(t, dir, "CLI"); len(left) > 0 {
			t.Errorf("reply FIFOs left after the Send failed: %v", left)
		}
	}
}

// A relayer's notice that comes after the answer it was about (the
// next receiver answered first) waits in the sender's reply FIFO for the
// slot's next Send: that Send looks at the holder again, finds the
// request with its receiver, and gets its own answer. The notice is
// written here by hand, as a slow relayer would, with nothing relayed.
func TestLateRelayNotice(t *testing.T) {
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	h := proctest.Start(t, "echo", nil, dir, "SRV")
	defer bury(t, h, reg)
	defer h.Kill()
	c, err := ep.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := proctest.Context(t, time.Minute)
	for i := range 3 {
		if i > 0 {
			// The slot the next Send takes: the one free.
			ep.slotMu.Lock()
			s := ep.free[len(ep.free)-1]
			ep.slotMu.Unlock()
			f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			var b [4]byte
			notice := relayedNotice
			binary.NativeEndian.PutUint32(b[:], uint32(notice))
			_, err = f.Write(b[:])
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		msg := fmt.Sprintf("ping %d", i)
		reply := make([]byte, 16)
		if n, err := c.Send(ctx, []byte(msg), reply); err != nil || string(reply[:n]) != msg {
			t.Fatalf("Send %d after a late notice: %q, %v; want its echo", i, reply[:n], err)
		}
	}
}
