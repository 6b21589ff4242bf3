package locator_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// polls is how many short Next calls the poll tests make: more than the
// 64 lanes a process may have open to one receiver.
const polls = 150

// poll calls w.Next polls times with a deadline of a few milliseconds,
// on a pattern nothing matches: each must end by its deadline.
func poll(t *testing.T, what string, w *locator.Watch) {
	t.Helper()
	for i := range polls {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Millisecond)
		ev, err := w.Next(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: poll %d: %+v, %v; want the deadline", what, i, ev, err)
		}
	}
}

// A watch whose Next is called with short deadlines, again and again,
// keeps one request at the locator: the next call takes the answer of the
// one before instead of sending another. Before, each call sent a request
// that the locator held up to 10 s after its caller gave up, each holding
// a lane to it, and after some 64 calls every Locate and Next of the
// process failed ("too many lanes to the receiver") for seconds (review).
// And Close ends a waiting Next, and the watch.
func TestWatchPolled(t *testing.T) {
	dir, loc, cli, c := startLocator(t)
	env := []string{"FIFO_PATH=" + dir}
	ctx := simpltest.Context(t, time.Minute)

	w := c.Watch("NOSUCH*")
	defer w.Close()
	poll(t, "Watch", w)
	if _, src, err := c.LocateFrom(ctx, locator.DefaultName); err != nil || src != locator.FromLocator {
		t.Fatalf("Locate after %d polls: %v, %v; want the locator's answer", polls, src, err)
	}
	// The watch still hears: a name that comes.
	one := simpltest.Start(t, "hold", env, "NOSUCH1")
	wantEvent(t, w, locator.Appeared, "NOSUCH1", one.PID(), "any")

	// Close ends a Next waiting (on its request in flight: the poll
	// leaves one out), and every one after; twice is no harm.
	poll(t, "Watch", w)
	res := make(chan error, 1)
	go func() {
		_, err := w.Next(ctx)
		res <- err
	}()
	w.Close()
	select {
	case err := <-res:
		if !errors.Is(err, simpl.ErrClosed) {
			t.Fatalf("Next ended by Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting Next")
	}
	if _, err := w.Next(ctx); !errors.Is(err, simpl.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	w.Close()

	for _, p := range []*simpltest.Proc{one, loc} {
		p.Signal(syscall.SIGTERM)
		if err := p.Wait(5 * time.Second); err != nil {
			t.Fatalf("%v: %v", p.Cmd.Args, err)
		}
	}
	cli.Close()
	reapDir(t, dir)
}

// The same for a watch of names across hosts, which asks a gateway (a
// Table here, as fcgate serves one) with the same code.
func TestWatchHostsPolled(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	gw := simpltest.Start(t, "table", env, locator.GatewayName, "3")
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c := locator.NewClient(cli, "")
	ctx := simpltest.Context(t, time.Minute)

	w := c.WatchHosts("NOSUCH*")
	defer w.Close()
	poll(t, "WatchHosts", w)
	if infos, err := c.ListHosts(ctx, ""); err != nil || len(infos) != 3 {
		t.Fatalf("ListHosts after %d polls: %d names, %v; want 3", polls, len(infos), err)
	}
	all := c.WatchHosts("")
	defer all.Close()
	for range 3 {
		ev, err := all.Next(ctx)
		if err != nil || ev.Kind != locator.Appeared || !ev.Resync {
			t.Fatalf("a new WatchHosts after the polls: %+v, %v; want the names there", ev, err)
		}
	}
	w.Close()
	all.Close()
	gw.Signal(syscall.SIGTERM)
	if err := gw.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	reapDir(t, dir)
}
