package naming

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A sweep of the whole directory removes only the FIFOs SIMPL makes: a
// dead process's NAME.PID with its YNAME.PID, and auxiliary reply FIFOs;
// other software's FIFOs named X.DIGITS (no partner, or no pid at all)
// stay, whoever made them. Before, every FIFO named X.DIGITS whose
// "pid" was not alive went, at every attach (helper-47).
func TestSweepLeavesOthersFIFOs(t *testing.T) {
	dir := t.TempDir()
	reg, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(deadPID(t))
	simplFiles := []string{"S." + dead, "YS." + dead, "YS#2." + dead}
	others := []string{"backup.20240101", "app.pipe." + dead, "Yearly." + dead + "0"}
	for _, f := range append(slices.Clone(simplFiles), others...) {
		mkfifo(t, filepath.Join(dir, f))
	}
	for _, sweep := range []func() (int, error){func() (int, error) { return reg.ReapSome(SweepLimit) }, func() (int, error) { return reg.Reap("") }} {
		if _, err := sweep(); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		left = append(left, de.Name())
	}
	slices.Sort(left)
	want := slices.Sorted(slices.Values(others))
	if !slices.Equal(left, want) {
		t.Errorf("left %v; want only the other software's %v", left, want)
	}
}

// A process whose main thread has exited while another runs on is alive
// (its leader is a zombie; the process is not), as is its name. Before,
// such a C server lost its name to the next attacher (helper-47).
func TestLeaderExited(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no cc to build a program whose main thread exits")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "leader.c")
	prog := filepath.Join(dir, "leader")
	code := `#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
static void *worker(void *a) { (void)a; sleep(600); return NULL; }
int main(void) { pthread_t t; pthread_create(&t, NULL, worker, NULL); printf("up\n"); fflush(stdout); pthread_exit(NULL); }
`
	if err := os.WriteFile(src, []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-o", prog, src, "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v %s", err, out)
	}
	cmd := exec.Command(prog)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	b := make([]byte, 3)
	if _, err := out.Read(b); err != nil || string(b) != "up\n" {
		t.Fatalf("leader: %q, %v", b, err)
	}
	pid := cmd.Process.Pid
	// The main thread's exit, seen in its state: Z, with the worker on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/stat")
		if err == nil && strings.Contains(string(stat), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the main thread not exited within 10 s: %s", stat)
		}
		time.Sleep(time.Millisecond) // polling its state
	}
	if !Alive(pid, time.Time{}) {
		t.Error("a process whose main thread exited, a worker thread running on, is not alive")
	}
	reg, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkfifo(t, reg.ReceivePath("SRV", pid))
	mkfifo(t, reg.ReplyPath("SRV", pid))
	if e, err := reg.Lookup("SRV"); err != nil || e.PID != pid {
		t.Errorf("Lookup(SRV) of the process's name: %+v, %v", e, err)
	}
	os.Remove(reg.ReceivePath("SRV", pid))
	os.Remove(reg.ReplyPath("SRV", pid))
}

// A daemon that attached as root and then dropped its privileges keeps
// its name: a FIFO of root's is its (only root makes root's files).
// Before, it was listed as forged, and another process could take the
// name (helper-47).
func TestDroppedPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a FIFO of root's for a process of another user")
	}
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	reg, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	mkfifo(t, reg.ReceivePath("DAEMON", pid)) // root's: this process is root
	mkfifo(t, reg.ReplyPath("DAEMON", pid))
	e, err := reg.Lookup("DAEMON")
	if err != nil || e.PID != pid || !e.Alive || e.Forged {
		t.Errorf("Lookup(DAEMON) of a process that dropped root: %+v, %v; want it alive, not forged", e, err)
	}
	os.Remove(reg.ReceivePath("DAEMON", pid))
	os.Remove(reg.ReplyPath("DAEMON", pid))
}

// An owner whose start time the clocks place after its FIFO (the wall
// clock stepped since it attached) is alive if it holds the FIFO open,
// and not otherwise (a reused pid holds no FIFO of the old process's).
func TestClockStepped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "S."+strconv.Itoa(os.Getpid()))
	mkfifo(t, path)
	created, err := Created(path)
	if err != nil {
		t.Fatal(err)
	}
	stepped := procInfo{exists: true, started: created.Add(time.Hour)}
	if aliveFile(stepped, os.Getpid(), path, created) {
		t.Error("an owner placed an hour after its FIFO, not holding it: alive")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !aliveFile(stepped, os.Getpid(), path, created) {
		t.Error("an owner placed an hour after its FIFO, holding it open: not alive")
	}
}

// Where /proc does not show a process (not mounted, or hidepid), a pid
// that exists is alive and owns its FIFOs: its name is found and not
// reaped. Before, it was judged dead (stat unreadable) or not the
// FIFO's maker, and a second process could attach its name (helper-47).
func TestProcHidden(t *testing.T) {
	was := procDir
	procDir = t.TempDir() // nothing shows there
	defer func() { procDir = was }()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	if !Alive(pid, time.Now()) {
		t.Error("a live process /proc does not show: not alive")
	}
	reg, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkfifo(t, reg.ReceivePath("HID", pid))
	mkfifo(t, reg.ReplyPath("HID", pid))
	if n, err := reg.Reap(""); n != 0 || err != nil {
		t.Errorf("Reap: %d, %v; want nothing removed", n, err)
	}
	if e, err := reg.Lookup("HID"); err != nil || e.PID != pid {
		t.Errorf("Lookup(HID) of a live process /proc does not show: %+v, %v", e, err)
	}
	os.Remove(reg.ReceivePath("HID", pid))
	os.Remove(reg.ReplyPath("HID", pid))
}
