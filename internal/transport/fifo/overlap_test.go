package fifo

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

func init() { roles["lateecho"] = runLateEcho }

// runLateEcho (DIR NAME) answers every request with its own bytes, each
// after the delay its bytes 8..11 name (microseconds), several at once
// and so out of order, until killed.
func runLateEcho(args []string) error {
	ep, err := helperEndpoint(args[0], args[1])
	if err != nil {
		return err
	}
	proctest.Ready()
	for {
		req, _, err := ep.Receive(context.Background())
		if err != nil {
			return err
		}
		if !req.Valid() {
			continue
		}
		data := req.Data()
		if len(data) < 12 {
			req.ReplyError()
			continue
		}
		d := time.Duration(binary.NativeEndian.Uint32(data[8:12])) * time.Microsecond
		time.AfterFunc(d, func() { req.Reply(data) })
	}
}

// TestOverlappingSendsWithDeadlines: one process keeps several Sends in
// flight at once (so they use the name's auxiliary identities, NAME#k),
// each with a deadline close to when the receiver answers it, so that
// the deadline and the answer often come together. Every Send must end
// with its own request's answer or with context.DeadlineExceeded, and
// never with anything else: the end of one Send's context once reached
// the next Send on the same identity (its wait was cut short with an
// "i/o timeout" while its request was held, and the late answer then
// found the identity's reply FIFO gone, or another Send waiting on it).
func TestOverlappingSendsWithDeadlines(t *testing.T) {
	const (
		senders = 8
		perG    = 400
	)
	dir := proctest.Dir(t)
	reg, ep := attachCLI(t, dir)
	srv := proctest.Start(t, "lateecho", nil, dir, "SRV")
	defer bury(t, srv, reg)
	defer srv.Signal(syscall.SIGKILL)
	c, err := ep.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := proctest.Context(t, time.Minute)

	// This machine's round trip, without delays (the median of a few):
	// delays and deadlines are drawn around it, so that they still meet
	// the answers on a slow machine (under the race detector, in CI).
	var rtts []time.Duration
	for i := range 21 {
		req, reply := make([]byte, 12), make([]byte, 12)
		binary.NativeEndian.PutUint64(req[:8], uint64(i))
		t0 := time.Now()
		if _, err := c.Send(ctx, req, reply); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	// The delays are up to 3 round trips; the deadlines come up to 16
	// round trips after them, as eight Sends at once wait for one another
	// (under emulation they took over 3 round trips more than their
	// delay, every one of them).
	rtt := int(rtts[len(rtts)/2] / time.Microsecond)
	span, margin := max(3*rtt, 300), max(16*rtt, 300)
	t.Logf("round trip %d µs: delays up to %d µs, deadlines up to %d µs after", rtt, span, margin)

	var mu sync.Mutex
	answered, timedOut := 0, 0
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			req, reply := make([]byte, 12), make([]byte, 12)
			for i := range perG {
				binary.NativeEndian.PutUint64(req[:8], uint64(g)<<32|uint64(i))
				delay := rand.IntN(span)
				binary.NativeEndian.PutUint32(req[8:], uint32(delay))
				sctx, cancel := context.WithTimeout(ctx, time.Duration(delay+rand.IntN(margin))*time.Microsecond)
				n, err := c.Send(sctx, req, reply)
				cancel()
				mu.Lock()
				switch {
				case err == nil && string(reply[:n]) == string(req):
					answered++
				case err == nil:
					t.Errorf("sender %d, Send %d: answer %x, want its own request %x", g, i, reply[:n], req)
				case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
					timedOut++
				default:
					t.Errorf("sender %d, Send %d: %v, want its answer or DeadlineExceeded", g, i, err)
				}
				mu.Unlock()
				if t.Failed() || ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d answered, %d past their deadline", answered, timedOut)
	if answered == 0 || timedOut == 0 {
		t.Errorf("%d answered, %d past their deadline: the deadlines did not meet the answers", answered, timedOut)
	}
	// The answers to the Sends that gave up still come: each leaves its
	// identity free again once it has.
	waitFor(t, "every identity back in the free list", func() bool {
		ep.slotMu.Lock()
		defer ep.slotMu.Unlock()
		return len(ep.busy) == 0
	})
}
