//go:build !race

package simpl_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleLoopSend NAME TO: attach NAME and, until TO goes, trigger TO with
// a proxy and then send it 16-byte requests until TO's reply (the number
// of proxies it has received, 8 bytes) says it has received that proxy:
// a sensor's proxies and a client's requests to a control loop's
// controller, the proxies paced so that none pile up.
func roleLoopSend(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	req, reply := make([]byte, 16), make([]byte, 8)
	for k := uint64(1); ; k++ {
		if err := to.Trigger(int(k%1000 + 1)); err != nil {
			return nil
		}
		if err := sendUntilSeen(to, k, req, reply); errors.Is(err, errProxyUnseen) {
			return err
		} else if err != nil {
			return nil // TO is gone: the test is over
		}
	}
}

// errProxyUnseen: a proxy the receiver did not report within a bounded
// number of Sends.
var errProxyUnseen = errors.New("proxy not received")

// sendUntilSeen sends req to to until its reply, a little-endian count
// of the proxies to has received, reaches k, for at most 100000 Sends or
// ten seconds.
func sendUntilSeen(to *simpl.Conn, k uint64, req, reply []byte) error {
	deadline := time.Now().Add(10 * time.Second)
	for range 100000 {
		n, err := to.Send(context.Background(), req, reply)
		if err != nil {
			return err
		}
		if n == 8 && binary.LittleEndian.Uint64(reply) >= k {
			return nil
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return fmt.Errorf("proxy %d: %w", k, errProxyUnseen)
}

// roleProxyCount NAME: count the proxies received and answer every
// request with the count so far (8 bytes, little-endian).
func roleProxyCount(args []string) error {
	ch, err := simpl.Attach(args[0], simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	var seen uint64
	for {
		m, err := ch.Receive(context.Background())
		if err != nil {
			return err
		}
		if m.Proxy() > 0 {
			seen++
			continue
		}
		binary.LittleEndian.PutUint64(m.ReplyBuffer(), seen)
		m.ReplyInPlace(8)
	}
}

// TestLoopAllocs: the paths a control loop runs on (tools/fcloop: a
// sensor triggers a controller, which sends to an actuator from its Serve
// handler) allocate nothing in steady state, with and without priority
// inheritance and priority order, across real processes:
//
//   - sending: a Trigger, and Sends until the receiver (another process)
//     says it has received the proxy;
//   - serving: Serve, receiving proxies and requests from another
//     process, a Send onward from the handler for each proxy (the
//     controller), and ReplyInPlace for each request (the actuator).
//
// Serving is counted over 20000 messages by the process's allocation
// count, which also holds the runtime's rare one-time allocations (see
// below). Proxies are paced (each received before the next is triggered): a
// sender that triggers faster than its receiver reads fills its proxy
// ring and its Trigger fails, and a queue that grows allocates.
func TestLoopAllocs(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("FIFO transport forced")
	}
	for _, rt := range []bool{false, true} {
		t.Run(fmt.Sprintf("inheritance=%v", rt), func(t *testing.T) {
			opts := []simpl.Option{simpl.WithTransport(simpl.SHM)}
			if rt {
				opts = append(opts, simpl.WithPriorityInheritance(), simpl.WithPriorityOrder())
			}
			dir := simpltest.Dir(t)
			echo := simpltest.Start(t, "proxycount", env(dir), "ECHO")
			defer func() {
				echo.Signal(syscall.SIGKILL)
				echo.Wait(5 * time.Second)
				reap(t, dir)
			}()
			ctl := attach(t, dir, "CTL", opts...)
			act := locate(t, ctl, "ECHO")
			ctx := context.Background()
			req, reply := make([]byte, 16), make([]byte, 8)
			var triggered uint64
			step := func() {
				if err := act.Trigger(1); err != nil {
					t.Fatal(err)
				}
				triggered++
				if err := sendUntilSeen(act, triggered, req, reply); err != nil {
					t.Fatal(err)
				}
			}
			for range 100 {
				step()
			}
			if a := testing.AllocsPerRun(2000, step); a != 0 {
				t.Errorf("a Trigger and a Send: %v allocations, want 0", a)
			}

			pump := simpltest.Start(t, "loopsend", env(dir), "SENSOR", "CTL")
			sctx, cancel := context.WithCancel(simpltest.Context(t, time.Minute))
			defer cancel()
			const warm, runs = 1000, 20000
			var before, after runtime.MemStats
			n, proxies := 0, 0
			var failed error
			err := ctl.Serve(sctx, func(m simpl.Message) {
				n++
				switch n {
				case warm:
					runtime.ReadMemStats(&before)
				case warm + runs:
					runtime.ReadMemStats(&after)
					cancel()
				}
				if m.Proxy() > 0 {
					proxies++
					if _, err := act.Send(ctx, req, reply); err != nil && failed == nil {
						failed = err
					}
					return
				}
				binary.LittleEndian.PutUint64(m.ReplyBuffer(), uint64(proxies))
				if err := m.ReplyInPlace(8); err != nil && failed == nil {
					failed = err
				}
			})
			if !errors.Is(err, context.Canceled) || failed != nil {
				t.Fatalf("Serve: %v; in the handler: %v", err, failed)
			}
			if proxies < 100 || n-proxies < 100 {
				t.Fatalf("served %d proxies and %d requests, want both kinds", proxies, n-proxies)
			}
			// The process's count, not the loop's: the runtime's own
			// one-time allocations fall in the window too (a thread made
			// when the locked serving thread blocks, an itab on a path's
			// first dynamic type assertion: a handful, seen with a memory
			// profile). One allocation per message would be 20000, one per
			// proxy at least 100; so fewer than one per hundred messages
			// and fewer than the proxies means none per message.
			if a := after.Mallocs - before.Mallocs; a >= min(runs/100, uint64(proxies)) {
				t.Errorf("Serve receiving proxies (each sending on) and requests (each replied in place): %d allocations in %d messages (%d proxies), want none per message", a, runs, proxies)
			} else {
				t.Logf("%d allocations in the process during %d messages (%d proxies)", a, runs, proxies)
			}
			ctl.Close()
			pump.Wait(10 * time.Second)
		})
	}
}
