package locator_test

import (
	"context"
	"errors"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func TestMain(m *testing.M) {
	simpltest.Main(m, map[string]simpltest.Role{
		"hold":     roleHold,
		"locator":  roleLocator,
		"table":    roleTable,
		"reattach": roleReattach,
		"emfile":   roleEMFILE,
		"watcher":  roleWatcher,
	}, simpltest.WithLifetime(2*time.Minute))
}

// roleHold NAME...: attach every NAME, print "ready", and detach on
// SIGTERM.
func roleHold(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	for _, name := range args {
		ch, err := simpl.Attach(name)
		if err != nil {
			return err
		}
		defer ch.Close()
	}
	simpltest.Ready()
	<-ctx.Done()
	return nil
}

// next waits up to d for the next event matching pattern.
func next(t *testing.T, w *locator.Watcher, pattern string, after *uint64, d time.Duration) locator.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	evs, pos, err := w.Next(ctx, pattern, *after, 1)
	if err != nil {
		t.Fatalf("no event for %q within %v: %v", pattern, d, err)
	}
	*after = pos
	return evs[0]
}

// The watcher hears names appear with their metadata and disappear,
// whether the owner detaches or is killed.
func TestWatch(t *testing.T) {
	dir := simpltest.Dir(t)
	w, err := locator.NewWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	snap, pos := w.Snapshot("*")
	if len(snap) != 0 {
		t.Fatalf("snapshot of an empty directory: %+v", snap)
	}
	env := []string{"FIFO_PATH=" + dir}
	a := simpltest.Start(t, "hold", env, "ALPHA", "BETA")
	ev := next(t, w, "ALPHA", &pos, 5*time.Second)
	if ev.Kind != locator.Appeared || ev.Info.Name != "ALPHA" || ev.Info.PID != a.PID() ||
		ev.Info.UID != os.Getuid() || ev.Info.Transport != "shm" || time.Since(ev.Info.Since) > time.Minute {
		t.Fatalf("ALPHA attached: %+v", ev)
	}
	var posB uint64
	next(t, w, "BETA", &posB, 5*time.Second)
	if got, err := w.Lookup("BETA"); err != nil || got.PID != a.PID() {
		t.Fatalf("Lookup(BETA) = %+v, %v", got, err)
	}
	f := simpltest.Start(t, "hold", append(env, "GOSIMPL_TRANSPORT=fifo"), "GAMMA")
	ev = next(t, w, "G*", &pos, 5*time.Second)
	if ev.Kind != locator.Appeared || ev.Info.Name != "GAMMA" || ev.Info.Transport != "fifo" {
		t.Fatalf("GAMMA attached over FIFOs only: %+v", ev)
	}

	// SIGKILL: no chance to clean up, still heard at once: within 2 s of
	// the death (it is reaped, so it has died), which is when there is
	// something to hear, not of the kill.
	a.Signal(syscall.SIGKILL)
	a.Wait(5 * time.Second)
	died := time.Now()
	seen := map[string]bool{}
	for len(seen) < 2 {
		ev = next(t, w, "*A", &pos, 5*time.Second)
		if ev.Kind != locator.Disappeared || ev.Info.PID != a.PID() {
			t.Fatalf("after the kill: %+v", ev)
		}
		seen[ev.Info.Name] = true
	}
	if d := time.Since(died); d > 2*time.Second {
		t.Errorf("the killed owner's names went %v after it died", d)
	}
	if _, err := w.Lookup("ALPHA"); !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Lookup of a killed owner's name: %v", err)
	}

	// A clean detach.
	f.Cmd.Process.Signal(syscall.SIGTERM)
	ev = next(t, w, "GAMMA", &pos, 5*time.Second)
	if ev.Kind != locator.Disappeared {
		t.Fatalf("GAMMA detached: %+v", ev)
	}
	f.Wait(5 * time.Second)
	// The killed owner's FIFOs are still there until someone reaps them;
	// the snapshot counts only the living.
	if snap, _ := w.Snapshot(""); len(snap) != 0 {
		t.Fatalf("snapshot after every owner went: %+v", snap)
	}
	reg := simpltest.Start(t, "hold", env, "ALPHA") // reaps the dead ALPHA
	ev = next(t, w, "ALPHA", &pos, 5*time.Second)
	if ev.Kind != locator.Appeared || ev.Info.PID != reg.PID() {
		t.Fatalf("ALPHA attached again: %+v", ev)
	}
	reg.Signal(syscall.SIGTERM)
	reg.Wait(5 * time.Second)
	next(t, w, "ALPHA", &pos, 5*time.Second)
	// The attach of ALPHA swept the dead owner's BETA too (any attach
	// sweeps the directory); a reap finds at most those two left.
	if n := reapDir(t, dir); n > 2 {
		t.Fatalf("reaping the killed owner's BETA removed %d FIFOs, want at most 2", n)
	}
	if left, _ := os.ReadDir(dir); slices.ContainsFunc(left, func(e os.DirEntry) bool { return strings.Contains(e.Name(), "BETA") }) {
		t.Fatalf("BETA's FIFOs left after the reap: %v", left)
	}
	// Removing a dead owner's FIFOs is no news: the next event is that of
	// a name attached after the reaping (any event the reaping made would
	// come first, or in the same scan of the directory).
	mark := simpltest.Start(t, "hold", env, "MARKER")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, _, err := w.Next(ctx, "*", pos, 0)
	if err != nil || len(evs) != 1 || evs[0].Kind != locator.Appeared || evs[0].Info.Name != "MARKER" {
		t.Fatalf("events after reaping the dead: %+v, %v; want MARKER's arrival alone", evs, err)
	}
	mark.Signal(syscall.SIGTERM)
	mark.Wait(5 * time.Second)
}

// Positions: a reader too far behind is told, Close ends a waiting Next.
func TestWatchPositions(t *testing.T) {
	dir := simpltest.Dir(t)
	w, err := locator.NewWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Next(context.Background(), "", 99, 0); !errors.Is(err, locator.ErrGap) {
		t.Fatalf("Next past the end: %v, want ErrGap", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := w.Next(ctx, "", 0, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing happening: %v", err)
	}
	res := make(chan error, 1)
	go func() {
		_, _, err := w.Next(context.Background(), "", 0, 0)
		res <- err
	}()
	proctest.WaitParked(t, 5*time.Second, "locator.(*journal).Next", 1)
	w.Close()
	w.Close()
	select {
	case err := <-res:
		if !errors.Is(err, simpl.ErrClosed) {
			t.Fatalf("Next ended by Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Next")
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"", "X", true}, {"*", "X", true}, {"X*", "XY", true}, {"X*", "YX", false},
		{"?", "A", true}, {"[AB]C", "BC", true}, {"[", "[", false},
	} {
		if got := locator.Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

// roleLocator: serve as the locator (DefaultName) until SIGTERM.
func roleLocator(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	w, err := locator.NewWatcher("")
	if err != nil {
		return err
	}
	defer w.Close()
	ch, err := simpl.Attach(locator.DefaultName)
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	if err := locator.Serve(ctx, ch, w); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// reapDir removes what dead owners left in dir and returns how many FIFOs
// went.
func reapDir(t *testing.T, dir string) int {
	t.Helper()
	r, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Reap("")
	if err != nil {
		t.Fatal(err)
	}
	return n
}
