package naming

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A FIFO whose owner is not the user of the live pid in its name is
// forged: listed as such, never found, never reaped. (The test makes it
// with chown; tools' TestForgedNames has the nobody user make it.)
func TestForgedEntry(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatal("needs root to chown a FIFO to another user; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run")
		}
		t.Skip("needs root to chown a FIFO to another user; CI (.ci/run) runs it as root")
	}
	dir := t.TempDir()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	path := filepath.Join(dir, "F."+me)
	mkfifo(t, path)
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, filepath.Join(dir, "MINE."+me))
	all, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "F" || !all[0].Forged || all[0].Alive || all[0].UID != 65534 ||
		all[1].Name != "MINE" || all[1].Forged || !all[1].Alive || all[1].UID != 0 {
		t.Fatalf("List = %+v; want F forged (uid 65534), MINE alive (uid 0)", all)
	}
	if _, err := reg.Lookup("F"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(F) = %v, want ErrNotFound", err)
	}
	if n, err := reg.Reap(""); n != 0 || err != nil {
		t.Errorf("Reap = %d, %v; want nothing removed (a forged FIFO of a live pid is not stale)", n, err)
	}
	os.Remove(path)
	os.Remove(filepath.Join(dir, "MINE."+me))
}

// ReapSome looks at no more than max processes per call, removes only
// dead ones' FIFOs, and calls repeated cover the directory.
func TestReapSome(t *testing.T) {
	dir := t.TempDir()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	for _, f := range []string{"L." + strconv.Itoa(live.Process.Pid), "YL." + strconv.Itoa(live.Process.Pid)} {
		mkfifo(t, filepath.Join(dir, f))
	}
	const dead = 10
	for i := 0; i < dead; i++ {
		pid := strconv.Itoa(deadPID(t))
		mkfifo(t, filepath.Join(dir, "D"+strconv.Itoa(i)+"."+pid))
		mkfifo(t, filepath.Join(dir, "YD"+strconv.Itoa(i)+"."+pid))
	}
	total := 0
	for calls := 0; total < 2*dead; calls++ {
		if calls == 100 {
			t.Fatalf("100 calls of ReapSome(3) removed %d of %d stale FIFOs", total, 2*dead)
		}
		n, err := reg.ReapSome(3)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2*3 {
			t.Fatalf("ReapSome(3) removed %d files: more than 3 processes' two each", n)
		}
		total += n
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 2 {
		t.Errorf("left %v; want the live process's two FIFOs", left)
	}
	for _, de := range left {
		os.Remove(filepath.Join(dir, de.Name()))
	}
}
