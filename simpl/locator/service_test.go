package locator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
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
// list, and a watch that hears attach and SIGKILL, says when the daemon
// is gone and when it is back, and survives the daemon's own restart.
func TestService(t *testing.T) {
	dir, loc, cli, c := startLocator(t)
	env := []string{"FIFO_PATH=" + dir}
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

	// The daemon dies: the watch says so, once, and keeps looking.
	loc.Signal(syscall.SIGKILL)
	loc.Wait(5 * time.Second)
	lost := wantEvent(t, wt, locator.Lost, "", 0, "no")
	if !errors.Is(lost.Err, simpl.ErrPeerGone) && !errors.Is(lost.Err, simpl.ErrNotFound) {
		t.Fatalf("Lost after the daemon's kill: cause %v, want ErrPeerGone or ErrNotFound", lost.Err)
	}
	// "Keeps looking" in silence: this Next looks for the daemon every
	// 100 ms (about three times here) and must say nothing. The 300 ms are
	// what is tested, not a wait for a state, and cannot fail a correct
	// watch however slow the machine; an event made during the outage
	// would also come before Restored below.
	quiet, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if ev, err := wt.Next(quiet); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next while the daemon is down: %+v, %v; want to wait", ev, err)
	}
	cancel()
	// It restarts; meanwhile SVC2 attached: the watch says the daemon is
	// back and learns SVC2 from the new daemon's snapshot.
	two := simpltest.Start(t, "hold", env, "SVC2")
	loc = simpltest.Start(t, "locator", env)
	wantEvent(t, wt, locator.Restored, "", 0, "no")
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

// sameInfos fails the test unless a and b list the same names with the
// same metadata.
func sameInfos(t *testing.T, what string, a, b []locator.Info) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %+v and %+v", what, a, b)
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.PID != y.PID || x.UID != y.UID || x.Transport != y.Transport || !x.Since.Equal(y.Since) {
			t.Fatalf("%s: %+v and %+v differ", what, x, y)
		}
	}
}

// With no locator running, a Client's Locate and List read the FIFO
// directory: the locator's answers, a killed owner's name not among them.
// A watch says the locator is unreachable, and when it comes.
func TestClientFallback(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c := locator.NewClient(cli, "") // falls back to cli.Dir()
	ctx := simpltest.Context(t, time.Minute)

	wt := c.Watch("FOO*")
	lost := wantEvent(t, wt, locator.Lost, "", 0, "no")
	if !errors.Is(lost.Err, simpl.ErrNotFound) {
		t.Fatalf("Lost with no daemon: cause %v, want ErrNotFound", lost.Err)
	}

	one := simpltest.Start(t, "hold", env, "FOO1")
	two := simpltest.Start(t, "hold", append(env, "GOSIMPL_TRANSPORT=fifo"), "FOO2")
	info, src, err := c.LocateFrom(ctx, "FOO1")
	if err != nil || src != locator.FromDirectory || info.Name != "FOO1" || info.PID != one.PID() ||
		info.UID != os.Getuid() || info.Transport != "shm" || time.Since(info.Since) > time.Minute {
		t.Fatalf("LocateFrom(FOO1) = %+v, %v, %v; want FOO1 from the directory", info, src, err)
	}
	if info, err := c.Locate(ctx, "FOO2"); err != nil || info.PID != two.PID() || info.Transport != "fifo" {
		t.Fatalf("Locate(FOO2) = %+v, %v", info, err)
	}
	infos, src, err := c.ListFrom(ctx, "FOO*")
	if err != nil || src != locator.FromDirectory || len(infos) != 2 || infos[0].Name != "FOO1" || infos[1].Name != "FOO2" {
		t.Fatalf("ListFrom(FOO*) = %+v, %v, %v", infos, src, err)
	}
	if all, err := c.List(ctx, ""); err != nil || len(all) != 3 || all[0].Name != "CLIENT" {
		t.Fatalf("List() = %+v, %v; want CLIENT, FOO1, FOO2", all, err)
	}
	if _, src, err := c.LocateFrom(ctx, "NOSUCH"); !errors.Is(err, simpl.ErrNotFound) || src != locator.FromDirectory {
		t.Fatalf("LocateFrom(NOSUCH): %v, %v; want ErrNotFound from the directory", src, err)
	}
	if _, err := c.Locate(ctx, "bad/name"); !errors.Is(err, simpl.ErrBadName) {
		t.Fatalf("Locate(bad/name): %v, want ErrBadName", err)
	}
	if _, err := c.List(ctx, "["); !errors.Is(err, simpl.ErrBadName) {
		t.Fatalf("List([): %v, want ErrBadName", err)
	}

	// SIGKILL leaves FOO1's FIFOs behind; the name is not listed.
	one.Signal(syscall.SIGKILL)
	one.Wait(5 * time.Second)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ents, err := reg.Entries("FOO1"); err != nil || len(ents) != 1 || ents[0].Alive {
		t.Fatalf("FOO1's entries after the kill: %+v, %v; want its FIFOs, dead", ents, err)
	}
	if _, err := c.Locate(ctx, "FOO1"); !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Locate of a killed owner's name: %v, want ErrNotFound", err)
	}
	fromDir, _, err := c.ListFrom(ctx, "FOO*")
	if err != nil || len(fromDir) != 1 || fromDir[0].Name != "FOO2" {
		t.Fatalf("List(FOO*) after FOO1's kill = %+v, %v", fromDir, err)
	}

	// The locator comes: the same answers, from it; the watch hears it.
	loc := simpltest.Start(t, "locator", env)
	fromLoc, src, err := c.ListFrom(ctx, "FOO*")
	if err != nil || src != locator.FromLocator {
		t.Fatalf("ListFrom(FOO*) with the locator up: %v, %v", src, err)
	}
	sameInfos(t, "the directory's and the locator's lists", fromDir, fromLoc)
	wantEvent(t, wt, locator.Restored, "", 0, "no")
	wantEvent(t, wt, locator.Appeared, "FOO2", two.PID(), "yes")

	// It goes for good: the directory answers again, the watch says so.
	loc.Signal(syscall.SIGKILL)
	loc.Wait(5 * time.Second)
	info, src, err = c.LocateFrom(ctx, "FOO2")
	if err != nil || src != locator.FromDirectory {
		t.Fatalf("LocateFrom(FOO2) after the locator's kill: %+v, %v, %v", info, src, err)
	}
	sameInfos(t, "the locator's and the directory's FOO2", fromLoc, []locator.Info{info})
	wantEvent(t, wt, locator.Lost, "", 0, "no")
	two.Signal(syscall.SIGTERM)
	two.Wait(5 * time.Second)
	cli.Close()
	reapDir(t, dir) // the killed FOO1's and locator's FIFOs
}

// A locator that is stopped (SIGSTOP) rather than gone: Locate and List
// read the directory after WithUnresponsiveAfter, and a watch reports it
// Lost (ErrUnresponsive) once the held watch's own deadline and that delay
// have passed, then Restored when it runs again.
func TestStoppedLocator(t *testing.T) {
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	loc := simpltest.Start(t, "locator", env)
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c := locator.NewClient(cli, "", locator.WithUnresponsiveAfter(300*time.Millisecond))
	ctx := simpltest.Context(t, time.Minute)

	wt := c.Watch("S*")
	one := simpltest.Start(t, "hold", env, "SVC1")
	wantEvent(t, wt, locator.Appeared, "SVC1", one.PID(), "any")
	if _, src, err := c.LocateFrom(ctx, "SVC1"); err != nil || src != locator.FromLocator {
		t.Fatalf("LocateFrom(SVC1) with the locator running: %v, %v", src, err)
	}

	loc.Signal(syscall.SIGSTOP)
	waitStopped(t, loc.PID())
	start := time.Now()
	info, src, err := c.LocateFrom(ctx, "SVC1")
	if err != nil || src != locator.FromDirectory || info.PID != one.PID() {
		t.Fatalf("LocateFrom(SVC1) with the locator stopped: %+v, %v, %v; want SVC1 from the directory", info, src, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("LocateFrom with the locator stopped took %v, unresponsive after 300ms", d)
	}
	// The watch held by the stopped locator: Lost within its 10 s wait
	// and the 300 ms (bounded here at 30 s).
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ev, err := wt.Next(lctx)
	cancel()
	if err != nil || ev.Kind != locator.Lost || !errors.Is(ev.Err, locator.ErrUnresponsive) {
		t.Fatalf("watch with the locator stopped: %+v, %v; want Lost wrapping ErrUnresponsive", ev, err)
	}

	loc.Signal(syscall.SIGCONT)
	two := simpltest.Start(t, "hold", env, "SVC2")
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, want := range []locator.Kind{locator.Restored, locator.Appeared} {
		ev, err := wt.Next(rctx)
		if err != nil || ev.Kind != want || (want == locator.Appeared && ev.Info.Name != "SVC2") {
			t.Fatalf("watch after SIGCONT: %+v, %v; want %v", ev, err, want)
		}
	}
	for _, p := range []*simpltest.Proc{one, two, loc} {
		p.Signal(syscall.SIGTERM)
		if err := p.Wait(5 * time.Second); err != nil {
			t.Fatalf("%v: %v", p.Cmd.Args, err)
		}
	}
	cli.Close()
	reapDir(t, dir)
}

// waitStopped waits until process pid is stopped (state T in /proc).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) STATE ...: the state follows the last ')'.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) > 0 && f[0] == "T" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not stopped 5 s after SIGSTOP: %s", pid, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// startLocator starts a locator daemon in a FIFO directory of the test's
// own, attaches CLIENT there and returns the directory, the daemon, the
// Channel and a Client of it, all ended with the test.
func startLocator(t *testing.T) (dir string, loc *simpltest.Proc, cli *simpl.Channel, c *locator.Client) {
	t.Helper()
	dir = simpltest.Dir(t)
	loc = simpltest.Start(t, "locator", []string{"FIFO_PATH=" + dir})
	cli, err := simpl.Attach("CLIENT", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return dir, loc, cli, locator.NewClient(cli, "")
}
