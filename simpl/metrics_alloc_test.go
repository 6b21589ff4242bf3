//go:build !race

package simpl_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRoundTripAllocs with metrics on: recording a round trip allocates
// nothing either, in the sender (Send, Buffer.Send) or in the receiver
// (Receive, Reply, ReplyInPlace).
func TestRoundTripAllocsWithMetrics(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("FIFO transport forced")
	}
	dir := simpltest.Dir(t)
	m := newMetrics(t)
	prometheus.NewRegistry().MustRegister(m)
	srv := simpltest.Start(t, "mecho", env(dir), "ECHO")
	c := locate(t, attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM), simpl.WithObserver(m)), "ECHO")
	ctx := context.Background()
	req, reply := make([]byte, 64), make([]byte, 64)
	send := func() {
		if _, err := c.Send(ctx, req, reply); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		send()
	}
	if a := testing.AllocsPerRun(2000, send); a != 0 {
		t.Errorf("sender: %v allocations per round trip, want 0", a)
	}
	b, err := c.Buffer(context.Background(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a := testing.AllocsPerRun(2000, func() {
		if _, err := b.Send(ctx, 64, 64); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("sender with a Buffer: %v allocations per round trip, want 0", a)
	}
	// The round trips were recorded: 100 + 2001 + 2001 (AllocsPerRun runs
	// its function once more to warm up).
	key := series("simpl_send_round_trip_seconds_count", "channel", "CLI", "to", "ECHO", "transport", "shm")
	if got := gatherText(t, m)[key]; got != 4102 {
		t.Errorf("%s = %v, want 4102", key, got)
	}
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reap(t, dir)

	// Receiver side: this process serves, a helper sends.
	rx := attach(t, dir, "RX", simpl.WithTransport(simpl.SHM), simpl.WithObserver(m))
	pump := simpltest.Start(t, "pump", env(dir), "PUMP", "RX")
	rctx := simpltest.Context(t, time.Minute)
	serveOne := func() {
		msg, err := rx.Receive(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.Reply(msg.Data()); err != nil {
			t.Fatal(err)
		}
		msg, err = rx.Receive(rctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := msg.ReplyInPlace(len(msg.Data())); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 {
		serveOne()
	}
	if a := testing.AllocsPerRun(2000, serveOne); a != 0 {
		t.Errorf("receiver: %v allocations per two Receives, a Reply and a ReplyInPlace, want 0", a)
	}
	key = series("simpl_replies_total", "channel", "RX", "outcome", "reply")
	if got := gatherText(t, m)[key]; got != 2*2101 {
		t.Errorf("%s = %v, want %v", key, got, 2*2101)
	}
	rx.Close()
	pump.Wait(10 * time.Second)
}
