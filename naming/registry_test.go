package naming

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRegistry(t *testing.T) {
	dir := t.TempDir()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	me, dead := os.Getpid(), deadPID(t)
	for _, f := range []string{
		"LIVE." + strconv.Itoa(me), "YLIVE." + strconv.Itoa(me), "YLIVE#1." + strconv.Itoa(me),
		"GONE." + strconv.Itoa(dead), "YGONE." + strconv.Itoa(dead), "YGONE#3." + strconv.Itoa(dead),
	} {
		mkfifo(t, filepath.Join(dir, f))
	}
	os.WriteFile(filepath.Join(dir, "notafifo.1"), nil, 0o600)

	all, err := reg.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "GONE" || all[0].Alive || all[1].Name != "LIVE" || !all[1].Alive || all[1].PID != me {
		t.Fatalf("List = %+v", all)
	}
	if e, err := reg.Lookup("LIVE"); err != nil || e.PID != me {
		t.Errorf("Lookup(LIVE) = %+v, %v", e, err)
	}
	if _, err := reg.Lookup("GONE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup(GONE) = %v, want ErrNotFound", err)
	}
	if _, err := reg.Lookup("a/b"); !errors.Is(err, ErrBadName) {
		t.Errorf("Lookup(a/b) = %v, want ErrBadName", err)
	}
	n, err := reg.Reap("")
	if err != nil || n != 3 {
		t.Errorf("Reap = %d, %v; want 3 removed", n, err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 4 { // LIVE's three FIFOs and the regular file
		t.Errorf("after Reap: %v", left)
	}
}

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid(), time.Now()) {
		t.Error("this process is not alive")
	}
	if Alive(deadPID(t), time.Time{}) {
		t.Error("an exited process is alive")
	}
	// A file made before this process started belongs to an older process
	// that had the same pid.
	if Alive(os.Getpid(), time.Now().Add(-24*time.Hour*365*10)) {
		t.Error("a reused pid is alive")
	}
	// A zombie (killed, not yet waited for) is dead.
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for Alive(cmd.Process.Pid, time.Time{}) {
		if time.Now().After(deadline) {
			t.Fatal("a zombie stays alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Wait()
}

func TestOpen(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Open of a missing directory succeeded")
	}
	long := "/" + string(make([]byte, MaxDirLen))
	if _, err := Open(long); err == nil {
		t.Error("Open of a too-long path succeeded")
	}
	t.Setenv("FIFO_PATH", "")
	if Dir() != DefaultDir {
		t.Errorf("Dir() = %q with FIFO_PATH unset", Dir())
	}
	t.Setenv("FIFO_PATH", "/x")
	if Dir() != "/x" {
		t.Errorf("Dir() = %q", Dir())
	}
}

// A doorbell moves a FIFO's modification time but not the time Created
// reports, so the oldest claim on a name stays the oldest.
func TestCreatedIgnoresWrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "N.1")
	mkfifo(t, p)
	before, err := Created(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Write (and read back) doorbells until the FIFO's modification time
	// has moved past its creation: the file system's clock ticks coarsely.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b := []byte{1, 2, 3, 4}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Read(b); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.ModTime().After(before) {
			break
		}
		if time.Now().After(deadline) {
			t.Skip("writes did not move the FIFO's modification time within 5s on this file system: nothing to tell Created from")
		}
		time.Sleep(time.Millisecond)
	}
	after, err := Created(p)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Errorf("Created moved from %v to %v after a write", before, after)
	}
}

// Reaping one name removes what a dead owner left of it, whatever point
// of its own cleanup it died at: the name's FIFO with its reply FIFOs, or
// a reply FIFO alone. Other names' remains are left to their own reaping.
func TestReapName(t *testing.T) {
	dir := t.TempDir()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	me, dead, dead2 := strconv.Itoa(os.Getpid()), strconv.Itoa(deadPID(t)), strconv.Itoa(deadPID(t))
	for _, f := range []string{
		"YX." + dead,                  // its name's FIFO already gone
		"X." + dead2, "YX#2." + dead2, // a whole dead claim, reply FIFO gone
		"YX." + me, "X." + me, // the live owner's
		"YOTHER." + dead, // another name's remains
	} {
		mkfifo(t, filepath.Join(dir, f))
	}
	n, err := reg.Reap("X")
	if err != nil || n != 3 {
		t.Errorf("Reap(X) = %d, %v; want 3 removed", n, err)
	}
	var left []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		left = append(left, de.Name())
	}
	want := []string{"X." + me, "YOTHER." + dead, "YX." + me}
	if len(left) != len(want) || left[0] != want[0] || left[1] != want[1] || left[2] != want[2] {
		t.Errorf("after Reap(X): %v, want %v", left, want)
	}
}
