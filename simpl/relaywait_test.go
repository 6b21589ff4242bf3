package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

var relayWaitRoles = map[string]simpltest.Role{"relayonce": roleRelayOnce}

// roleRelayOnce NAME TO WAIT: relay one request to TO, print "relayed",
// then (WAIT "wait") wait for the relay with WaitRelays, and close.
func roleRelayOnce(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	msg, err := ch.Receive(context.Background())
	if err != nil {
		return err
	}
	if err := msg.Relay(to); err != nil {
		return err
	}
	fmt.Println("relayed")
	if args[2] == "wait" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ch.WaitRelays(ctx); err != nil {
			return err
		}
	}
	return nil
}

// TestWaitRelays: a relayer that forwards a request (to a receiver it
// reaches through shared memory) and then closes its Channel fails the
// request for its sender, unless it waits with WaitRelays first, which
// returns once the final receiver has answered and the answer has been
// passed back.
//
// FIFO to FIFO a relay is handed over whole instead (C SIMPL's wire): the
// final receiver answers the sender itself, WaitRelays has nothing to
// wait for, and the relayer may exit at once, waiting or not. The sender
// follows its request to the final receiver and gets its answer, given
// here only after the relayer has exited and the sender has noticed.
// The sender's watcher notices a dead receiver within 100 ms (see
// internal/transport/fifo): so long, at least, a sender handed over must
// be seen to wait on before its answer.
const handOverWatch = 200 * time.Millisecond

func TestWaitRelays(t *testing.T) {
	for _, wait := range []string{"wait", "nowait"} {
		t.Run(wait, func(t *testing.T) {
			handOver := wantTransport() == simpl.FIFO
			dir := simpltest.Dir(t)
			srv := simpltest.Start(t, "server", env(dir), "FINAL")
			rel := simpltest.Start(t, "relayonce", env(dir), "MIDDLE", "FINAL", wait)
			cli := attach(t, dir, "CLI")
			defer cli.Close()
			mid := locate(t, cli, "MIDDLE")
			defer mid.Close()
			fin := locate(t, cli, "FINAL")
			defer fin.Close()
			ctx := simpltest.Context(t, testTimeout)
			sent := make(chan error, 1)
			go func() {
				reply := make([]byte, 16)
				n, err := mid.Send(ctx, []byte{opHold, 'a'}, reply)
				if err == nil && string(reply[:n]) != "b" {
					err = fmt.Errorf("reply %q, want \"b\"", reply[:n])
				}
				sent <- err
			}()
			rel.Expect("relayed", 5*time.Second)
			switch {
			case handOver:
				// The relayer exits at once, and the sender, watching it,
				// learns so within its dead-peer bound; a sender that did
				// not follow the hand-over fails then.
				if err := rel.Wait(5 * time.Second); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-sent:
					t.Fatalf("Send handed over by a relayer that exited: %v before the final receiver answered", err)
				case <-time.After(handOverWatch):
				}
			case wait == "nowait":
				// The relayer closes at once: the request fails.
				if err := <-sent; !errors.Is(err, simpl.ErrPeerGone) {
					t.Fatalf("Send through a relayer that did not wait: %v, want ErrPeerGone", err)
				}
				if err := rel.Wait(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			// FINAL answers what it holds. The forwarded request may reach
			// it after a flush (Relay returns once forwarding has started),
			// so flush until the Send has its answer.
			flush := func() {
				if _, err := fin.Send(ctx, []byte{opFlush}, make([]byte, 4)); err != nil {
					t.Fatal(err)
				}
			}
			flush()
			if wait == "wait" || handOver {
				var err error
			answered:
				for {
					select {
					case err = <-sent:
						break answered
					case <-time.After(50 * time.Millisecond):
						flush()
					}
				}
				if err != nil {
					t.Fatalf("Send through a relayer (%s): %v", wait, err)
				}
				if err := rel.Wait(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			srv.Signal(syscall.SIGTERM)
			srv.Wait(5 * time.Second)
			reap(t, dir)
		})
	}
}
