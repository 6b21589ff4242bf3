package naming

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"golang.org/x/sys/unix"
)

// The owner of a FIFO that exists but that /proc does not show (/proc not
// mounted, or hidepid) is alive and owns its FIFOs: owned gives it the
// benefit of the doubt, AliveOwner and Alive count it alive, so List
// shows its name alive (not forged), Lookup finds it and Reap leaves it.
//
// TestProcHidden moves procDir, which readProc and procShows read, but
// owned reads the uids through sys.ProcessUIDs, which reads /proc itself:
// to reach owned's "hidden" case a helper process runs the registry in a
// mount namespace of its own where /proc is not mounted at all.

// fixRole names the helper this file's init runs instead of the tests.
const fixRole = "GOSIMPL_FIXTEST_NAMING_ROLE"

func init() {
	if os.Getenv(fixRole) == "proc-hidden" {
		if err := fixProcHidden(); err != nil {
			fmt.Println("FAIL", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// fixProcHidden: in a mount namespace of its own (the test starts it
// with CLONE_NEWNS), unmount /proc and judge the FIFOs the test made,
// printing each check that fails as a line "FAIL ...".
func fixProcHidden() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Unmount("/proc", unix.MNT_DETACH); err != nil {
		// Not unmountable: an empty file system over it hides as much.
		if err := unix.Mount("none", "/proc", "tmpfs", 0, "size=16k"); err != nil {
			return fmt.Errorf("hide /proc: %w", err)
		}
	}
	if _, err := os.Stat("/proc/self"); err == nil {
		return errors.New("/proc/self still shows")
	}
	dir := os.Getenv("FIXTEST_DIR")
	pid, _ := strconv.Atoi(os.Getenv("FIXTEST_PID"))
	dead, _ := strconv.Atoi(os.Getenv("FIXTEST_DEAD"))
	fail := func(format string, args ...any) { fmt.Printf("FAIL "+format+"\n", args...) }

	if _, err := sys.ProcessUIDs(pid); !errors.Is(err, sys.ErrExited) {
		return fmt.Errorf("sys.ProcessUIDs(%d) with /proc not mounted = %v; the helper's setup is not what the test is about", pid, err)
	}
	for _, uid := range []int{0, os.Geteuid(), 65534} {
		if ok, err := owned(pid, uid); !ok || err != nil {
			fail("owned(%d, uid %d) of a live process /proc does not show = %v, %v; want true, nil", pid, uid, ok, err)
		}
	}
	if ok, err := owned(dead, 0); ok || !errors.Is(err, sys.ErrExited) {
		fail("owned(%d) of an exited process = %v, %v; want false, ErrExited", dead, ok, err)
	}
	reg, err := Open(dir)
	if err != nil {
		return err
	}
	path := reg.ReceivePath("HID", pid)
	created, err := Created(path)
	if err != nil {
		return err
	}
	if !AliveOwner(pid, path, created) {
		fail("AliveOwner(%d, %s) of a live process /proc does not show = false", pid, path)
	}
	if !Alive(pid, created) {
		fail("Alive(%d) of a live process /proc does not show = false", pid)
	}
	deadPath := reg.ReceivePath("DEAD", dead)
	if AliveOwner(dead, deadPath, created) {
		fail("AliveOwner(%d) of an exited process = true", dead)
	}
	all, err := reg.List()
	if err != nil {
		return err
	}
	got := map[string]Entry{}
	for _, e := range all {
		got[e.Name] = e
	}
	if e := got["HID"]; !e.Alive || e.Forged || e.PID != pid {
		fail("List: HID = %+v; want alive, not forged, pid %d", e, pid)
	}
	if e := got["OTHER"]; !e.Alive || e.Forged || e.PID != pid {
		fail("List: OTHER (uid 65534's FIFO) = %+v; want alive, not forged (hidden: the benefit of the doubt), pid %d", e, pid)
	}
	if e := got["DEAD"]; e.Alive || e.Forged {
		fail("List: DEAD = %+v; want stale", e)
	}
	if e, err := reg.Lookup("HID"); err != nil || e.PID != pid {
		fail("Lookup(HID) = %+v, %v; want pid %d", e, err, pid)
	}
	if n, err := reg.Reap(""); n != 2 || err != nil {
		fail("Reap = %d, %v; want the dead process's 2 FIFOs removed, no other", n, err)
	}
	for _, p := range []string{path, reg.ReplyPath("HID", pid)} {
		if _, err := os.Stat(p); err != nil {
			fail("Reap removed %s of a live process /proc does not show: %v", p, err)
		}
	}
	return nil
}

// A live process that /proc does not show (here /proc is not mounted)
// is alive and owns its FIFOs, its name listed alive and found.
func TestOwnedProcHidden(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatal("needs root to unmount /proc in a mount namespace; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run")
		}
		t.Skip("needs root to unmount /proc in a mount namespace; CI (.ci/run) runs it as root")
	}
	dir := t.TempDir()
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { owner.Process.Kill(); owner.Wait() }()
	pid, dead := owner.Process.Pid, deadPID(t)
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{reg.ReceivePath("HID", pid), reg.ReplyPath("HID", pid),
		reg.ReceivePath("OTHER", pid), reg.ReplyPath("OTHER", pid),
		reg.ReceivePath("DEAD", dead), reg.ReplyPath("DEAD", dead)} {
		mkfifo(t, p)
	}
	for _, p := range []string{reg.ReceivePath("OTHER", pid), reg.ReplyPath("OTHER", pid)} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fixRole+"=proc-hidden", "FIXTEST_DIR="+dir,
		"FIXTEST_PID="+strconv.Itoa(pid), "FIXTEST_DEAD="+strconv.Itoa(dead))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the helper did not finish within 30 s; stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if f, ok := strings.CutPrefix(line, "FAIL "); ok {
			t.Error(f)
		}
	}
	if err != nil {
		t.Errorf("helper with /proc not mounted: %v; stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	for _, p := range []string{reg.ReceivePath("DEAD", dead), reg.ReplyPath("DEAD", dead)} {
		os.Remove(p)
	}
}

// AliveOwner, like Alive (TestProcHidden), counts alive the live owner of
// a FIFO whose /proc entry does not show (procDir moved), whatever the
// FIFO's age, and not a pid without a process.
func TestAliveOwnerProcDir(t *testing.T) {
	dir := t.TempDir()
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { owner.Process.Kill(); owner.Wait() }()
	pid, dead := owner.Process.Pid, deadPID(t)
	path := filepath.Join(dir, "HID."+strconv.Itoa(pid))
	mkfifo(t, path)
	created, err := Created(path)
	if err != nil {
		t.Fatal(err)
	}
	was := procDir
	procDir = t.TempDir() // nothing shows there
	defer func() { procDir = was }()
	for _, c := range []time.Time{created, created.Add(-time.Hour), {}} {
		if !AliveOwner(pid, path, c) {
			t.Errorf("AliveOwner(%d, %s, %v) of a live process /proc does not show = false", pid, path, c)
		}
	}
	if AliveOwner(dead, path, created) {
		t.Errorf("AliveOwner(%d) of an exited process = true", dead)
	}
}
