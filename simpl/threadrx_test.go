package simpl_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func init() { threadRxRoles["idleconn"] = roleIdleConn }

var threadRxRoles = map[string]simpltest.Role{}

// roleIdleConn NAME TO: attach NAME, send TO one echo request through the
// default transports (shared memory), then keep the connection idle
// until a request comes to NAME, answer it and exit.
func roleIdleConn(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	reply := make([]byte, 16)
	if _, err := to.Send(context.Background(), []byte{opEcho, 'a'}, reply); err != nil {
		return err
	}
	simpltest.Ready()
	msg, err := ch.Receive(context.Background())
	if err != nil {
		return err
	}
	return msg.Reply(nil)
}

// TestThreadWaitReceive: a receiver whose waits are on its thread
// (WithThreadWaits, as the C library attaches) and that never spins, so
// that every Receive sleeps, serves a FIFO sender (C SIMPL's wire:
// requests of every size both ways, and a proxy) with the FIFO read on
// the Receive's own thread: alone, and while a shared-memory sender is
// connected, when the Receive sleeps on the shared-memory futex and the
// FIFO's doorbells must wake it through the FIFO's watch. Without that
// watch the second case hangs until its deadline and fails.
func TestThreadWaitReceive(t *testing.T) {
	if os.Getenv("GOSIMPL_TRANSPORT") != "" {
		t.Skip("picks its senders' transports itself")
	}
	for _, mixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("shm-sender=%v", mixed), func(t *testing.T) {
			dir := simpltest.Dir(t)
			srv := attach(t, dir, "SRV", simpl.WithThreadWaits(true), simpl.WithSpin(false))
			ctx, cancel := context.WithTimeout(context.Background(), simpltest.Scale(time.Minute))
			defer cancel()
			proxies := make(chan int, 16)
			served := make(chan error, 1)
			go func() { served <- serve(ctx, srv, func(p int) { proxies <- p }) }()
			var idle *simpltest.Proc
			if mixed {
				lanes := laneMappings(t)
				idle = simpltest.Start(t, "idleconn", env(dir), "SHMCLI", "SRV")
				waitFor(t, simpltest.Scale(10*time.Second), "the shared-memory sender's lane", func() bool { return laneMappings(t) > lanes })
			}
			c := simpltest.Start(t, "client", append(env(dir), "GOSIMPL_TRANSPORT=fifo"), "FIFOCLI", "SRV")
			c.Expect("ok", simpltest.Scale(20*time.Second))
			select {
			case p := <-proxies:
				if p != 9 {
					t.Errorf("proxy %d, want 9", p)
				}
			case <-ctx.Done():
				t.Fatal("the FIFO sender's proxy never came")
			}
			if err := c.Wait(simpltest.Scale(10 * time.Second)); err != nil {
				t.Errorf("FIFO sender: %v", err)
			}
			if idle != nil {
				to := locate(t, srv, "SHMCLI")
				if _, err := to.Send(ctx, nil, nil); err != nil {
					t.Errorf("to the shared-memory sender: %v", err)
				}
				if err := idle.Wait(simpltest.Scale(10 * time.Second)); err != nil {
					t.Errorf("shared-memory sender: %v", err)
				}
			}
			srv.Close()
			if err := <-served; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
}
