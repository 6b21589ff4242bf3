package locator_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleReattach NAME: attach NAME, print "ready"; at each SIGUSR1 detach
// and attach it again at once, and print "cycled"; detach on SIGTERM.
func roleReattach(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	usr := make(chan os.Signal, 1)
	signal.Notify(usr, syscall.SIGUSR1)
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	simpltest.Ready()
	for {
		select {
		case <-ctx.Done():
			return ch.Close()
		case <-usr:
			ch.Close()
			if ch, err = simpl.Attach(args[0]); err != nil {
				return err
			}
			fmt.Println("cycled")
		}
	}
}

// A process that detaches a name and attaches it again at once, between
// two of the watcher's scans, is heard doing both, each time: the name
// disappears and appears again with its new attach time. Before, the
// watcher, keyed by name and pid, saw the same name and pid in both
// scans and told nothing (28 of 50 cycles in the review's run).
func TestWatchReattach(t *testing.T) {
	// While a cycle runs the watcher's scans wait at gate, so that none
	// falls between the detach and the attach: the case to hear.
	var gate atomic.Pointer[chan struct{}]
	locator.SetScanHook(func() {
		if g := gate.Load(); g != nil {
			<-*g
		}
	})
	defer locator.SetScanHook(nil)
	dir := simpltest.Dir(t)
	w, err := locator.NewWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, pos := w.Snapshot("*")
	p := simpltest.Start(t, "reattach", []string{"FIFO_PATH=" + dir}, "SRV")
	ev := next(t, w, "SRV", &pos, 5*time.Second)
	if ev.Kind != locator.Appeared || ev.Info.PID != p.PID() {
		t.Fatalf("SRV attached: %+v", ev)
	}
	since := ev.Info.Since
	for i := range 10 {
		held := make(chan struct{})
		gate.Store(&held)
		p.Signal(syscall.SIGUSR1)
		p.Expect("cycled", 5*time.Second)
		gate.Store(nil)
		close(held)
		gone, back := next(t, w, "SRV", &pos, 5*time.Second), next(t, w, "SRV", &pos, 5*time.Second)
		if gone.Kind != locator.Disappeared || gone.Info.PID != p.PID() || back.Kind != locator.Appeared || back.Info.PID != p.PID() {
			t.Fatalf("cycle %d: %+v then %+v; want SRV of pid %d gone, then back", i, gone, back, p.PID())
		}
		if !back.Info.Since.After(since) && !back.Info.Since.Equal(since) {
			t.Fatalf("cycle %d: attached again at %v, before the attach before it (%v)", i, back.Info.Since, since)
		}
		since = back.Info.Since
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(5 * time.Second)
	if ev := next(t, w, "SRV", &pos, 5*time.Second); ev.Kind != locator.Disappeared {
		t.Fatalf("SRV detached: %+v", ev)
	}
}

// roleEMFILE DIR: watch DIR with this process's descriptors exhausted
// while a FIFO appears there, so that the watcher's scan cannot read the
// directory (EMFILE); then free them and attach a name: print what the
// watcher tells of it.
func roleEMFILE(args []string) error {
	dir := args[0]
	w, err := locator.NewWatcher(dir)
	if err != nil {
		return err
	}
	defer w.Close()
	simpltest.Ready()
	_, pos := w.Snapshot("*")
	failed := make(chan error, 1)
	locator.SetScanFailedHook(func(err error) {
		select {
		case failed <- err:
		default:
		}
	})
	free, err := proctest.FillDescriptors()
	if err != nil {
		return err
	}
	// A FIFO's arrival makes the watcher scan: it cannot read the
	// directory now.
	if err := syscall.Mkfifo(filepath.Join(dir, "STRAY.999999"), 0o600); err != nil {
		return err
	}
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.EMFILE) {
			return fmt.Errorf("the scan failed with %v, want EMFILE", err)
		}
	case <-time.After(10 * time.Second):
		return errors.New("no scan failed within 10s")
	}
	if err := free(); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "STRAY.999999"))
	ch, err := simpl.Attach("LATER", simpl.WithDir(dir))
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs, _, err := w.Next(ctx, "LATER", pos, 1)
	if err != nil {
		return fmt.Errorf("the watcher after the descriptors came back: %w", err)
	}
	fmt.Printf("%v %s\n", evs[0].Kind, evs[0].Info.Name)
	return nil
}

// A scan that cannot read the directory for now (the process out of
// descriptors) leaves the watcher as it was, and it tries again: the
// next name attached is heard. Before, one such failure ended every
// watch for good, the error returned by every Next from then on.
func TestWatchTransientFailure(t *testing.T) {
	dir := simpltest.Dir(t)
	p := simpltest.Start(t, "emfile", nil, dir)
	p.Expect("appeared LATER", 20*time.Second)
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// roleWatcher: watch NOSUCH* through the locator (nothing matches, so
// its watch waits there), printing each event's kind, until SIGTERM.
func roleWatcher(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach("")
	if err != nil {
		return err
	}
	defer ch.Close()
	w := locator.NewClient(ch, "").Watch("NOSUCH*")
	simpltest.Ready()
	for {
		ev, err := w.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Println(ev.Kind)
	}
}

// When Serve returns (its Channel closed), the watches it held have
// been answered and their goroutines are gone. Before, each lived on
// until its wait (10 s) ran out.
func TestServeLeavesNothing(t *testing.T) {
	dir := simpltest.Dir(t)
	w, err := locator.NewWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ch, err := simpl.Attach(locator.DefaultName, simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- locator.Serve(context.Background(), ch, w) }()
	p := simpltest.Start(t, "watcher", []string{"FIFO_PATH=" + dir})
	for deadline := time.Now().Add(10 * time.Second); w.Counts().Watches != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the locator holds %d watches, want the watcher's", w.Counts().Watches)
		}
		time.Sleep(5 * time.Millisecond) // polling the count
	}
	ch.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its Channel's Close")
	}
	if n := w.Counts().Watches; n != 0 {
		t.Errorf("%d watches still held after Serve returned", n)
	}
	p.Signal(syscall.SIGTERM)
	p.Wait(10 * time.Second)
}
