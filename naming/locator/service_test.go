package locator_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming/locator"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// wantEvent reads the next event of wt and checks it.
// resync is "yes", "no" or "any".
func wantEvent(t *testing.T, wt *locator.Watch, kind locator.Kind, name string, pid int, resync string) locator.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := wt.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for %v %s: %v", kind, name, err)
	}
	if ev.Kind != kind || ev.Info.Name != name || (pid != 0 && ev.Info.PID != pid) ||
		(resync == "yes" && !ev.Resync) || (resync == "no" && ev.Resync) {
		t.Fatalf("event %+v, want %v %s (pid %d, resync %v)", ev, kind, name, pid, resync)
	}
	return ev
}

// The locator daemon, asked with Send/Reply from another process: locate,
// list, and a watch that hears attach and SIGKILL and survives the
// daemon's own restart.
func TestService(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	loc := simpltest.Start(t, "locator", env)
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c := locator.NewClient(cli, "")
	ctx := simpltest.Context(t, time.Minute)

	wt := c.Watch("S*")
	one := simpltest.Start(t, "hold", env, "SVC1")
	// The first reply is the snapshot: SVC1 if it was already there, or
	// nothing and then its event.
	wantEvent(t, wt, locator.Appeared, "SVC1", one.PID(), "any")
	info, err := c.Locate(ctx, "SVC1")
	if err != nil || info.PID != one.PID() || info.UID != os.Getuid() || info.Transport != "shm" {
		t.Fatalf("Locate(SVC1) = %+v, %v", info, err)
	}
	if _, err := c.Locate(ctx, "NOSUCH"); !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Locate(NOSUCH): %v, want ErrNotFound", err)
	}
	if _, err := c.Locate(ctx, "bad/name"); !errors.Is(err, simpl.ErrBadName) {
		t.Fatalf("Locate(bad/name): %v, want ErrBadName", err)
	}
	if _, err := c.List(ctx, "["); !errors.Is(err, simpl.ErrBadName) {
		t.Fatalf("List([): %v, want ErrBadName", err)
	}
	all, err := c.List(ctx, "")
	if err != nil || len(all) != 3 { // CLIENT, FCLOCATOR, SVC1
		t.Fatalf("List() = %+v, %v", all, err)
	}

	one.Signal(syscall.SIGKILL)
	wantEvent(t, wt, locator.Disappeared, "SVC1", one.PID(), "no")
	one.Wait(5 * time.Second)

	// The daemon restarts; meanwhile SVC2 attaches: the watch learns it
	// from the new daemon's snapshot.
	loc.Signal(syscall.SIGKILL)
	loc.Wait(5 * time.Second)
	two := simpltest.Start(t, "hold", env, "SVC2")
	loc = simpltest.Start(t, "locator", env)
	wantEvent(t, wt, locator.Appeared, "SVC2", two.PID(), "yes")
	two.Signal(syscall.SIGTERM)
	wantEvent(t, wt, locator.Disappeared, "SVC2", two.PID(), "no")
	two.Wait(5 * time.Second)
	if _, err := c.Locate(ctx, "SVC2"); !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Locate(SVC2) after it left: %v", err)
	}
	loc.Signal(syscall.SIGTERM)
	if err := loc.Wait(5 * time.Second); err != nil {
		t.Fatalf("locator: %v\n%s", err, loc.Stderr())
	}
	cli.Close()
	reapDir(t, dir)
}
