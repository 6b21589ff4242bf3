package tools_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// nobodyUID is the user the attacker runs as: nobody on Debian and most
// distributions.
const nobodyUID = 65534

// asNobody is a command that runs as the nobody user.
func asNobody(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID}}
	return cmd
}

// sharedEnv is an env whose FIFO directory is what /var/tmp is: anyone
// may create files in it, nobody may remove another user's. It needs
// root, to run the attacker as nobody: elsewhere it skips, and fails
// under CI (GOSIMPL_CI=1), which runs as root.
func sharedEnv(t *testing.T) *env {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		why := fmt.Sprintf("needs root (running as uid %d): the attacker runs as nobody (%d) through setuid", uid, nobodyUID)
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatalf("%s; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run", why)
		}
		t.Skipf("%s; CI (.ci/run) runs it as root", why)
	}
	dir := proctest.Dir(t)
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if out, err := asNobody("test", "-w", dir).CombinedOutput(); err != nil {
		t.Fatalf("nobody cannot write %s (a parent not searchable by other users? set TMPDIR): %v %s", dir, err, out)
	}
	return &env{t: t, dir: dir}
}

// TestForgedNames: the nobody user makes NAME.PID FIFOs for the pid of a
// root process, and holds one open. They do not hold the names: fcshow
// lists them as forged, fcsend does not hang on them, fcrecv attaches the
// name anyway, and fcslay refuses to signal the root process through them.
func TestForgedNames(t *testing.T) {
	e := sharedEnv(t)
	victim := exec.Command("sleep", "600")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	vpid := strconv.Itoa(victim.Process.Pid)
	forged := []string{filepath.Join(e.dir, "G."+vpid), filepath.Join(e.dir, "V."+vpid)}
	defer func() {
		for _, p := range forged {
			os.Remove(p)
		}
	}()
	for _, p := range forged {
		if out, err := asNobody("mkfifo", "-m", "666", p).CombinedOutput(); err != nil {
			t.Fatalf("nobody: mkfifo %s: %v %s", p, err, out)
		}
	}
	// nobody holds G's FIFO open, as a receiver would.
	holder := asNobody("sh", "-c", `exec sleep 600 3<>"$0"`, forged[0])
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	fd3 := fmt.Sprintf("/proc/%d/fd/3", holder.Process.Pid)
	for deadline := time.Now().Add(lineTimeout); ; time.Sleep(5 * time.Millisecond) {
		if l, _ := os.Readlink(fd3); l == forged[0] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody's sh did not open %s within %v", forged[0], lineTimeout)
		}
	}

	r := e.run("", "fcshow")
	r.ok(t, "fcshow")
	for _, n := range []string{"G", "V"} {
		want := fmt.Sprintf("%s %s forged %d -", n, vpid, nobodyUID)
		if !strings.Contains(squash(r.stdout), want) {
			t.Errorf("fcshow printed\n%s\nwant a row %q", r.stdout, want)
		}
	}
	// Not a name in use: a sender is told at once that nobody has it.
	e.run("", "fcsend", "-r", "G", "-m", "hi").failed(t, "fcsend", "not found", `"G"`)
	// The owner attaches G past the forged FIFO, which stays (it is
	// nobody's, of a live pid), and answers.
	srv := e.startRecv("G", "-reply", "pong")
	r = e.run("", "fcsend", "-r", "G", "-m", "hi")
	r.ok(t, "fcsend to G")
	if !strings.Contains(r.stdout, "pong") {
		t.Errorf("fcsend printed %q, want the reply pong", r.stdout)
	}
	if _, err := os.Stat(forged[0]); err != nil {
		t.Errorf("nobody's forged FIFO: %v; attach removes no live process's file", err)
	}
	stop(t, srv, syscall.SIGTERM)

	// fcslay does not signal the root process nobody aimed it at.
	e.run("", "fcslay", "V").failed(t, "fcslay", "V: refusing to signal pid "+vpid, "forged")
	e.run("", "fcslay", "-s", "KILL", "G").failed(t, "fcslay", "G: refusing to signal pid "+vpid)
	if !processRuns(victim.Process.Pid) {
		t.Error("the root process nobody aimed fcslay at was signalled")
	}
}

// processRuns tells whether pid is a running process, not a zombie.
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// squash joins the fields of each line with single spaces.
func squash(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(out, "\n")
}

// TestAttachSweeps: attaching any name removes the FIFOs that dead
// processes left under other names (a name's two FIFOs), root's and
// nobody's alike, and no live process's.
func TestAttachSweeps(t *testing.T) {
	e := sharedEnv(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	dpid := strconv.Itoa(dead.Process.Pid)
	stale := []string{"OLD." + dpid, "YOLD." + dpid}
	for _, f := range stale {
		if err := syscall.Mkfifo(filepath.Join(e.dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A C SIMPL name of nobody's: its two FIFOs (a lone X.PID could be
	// any software's, and a sweep leaves it).
	if out, err := asNobody("mkfifo", filepath.Join(e.dir, "SQUAT."+dpid), filepath.Join(e.dir, "YSQUAT."+dpid)).CombinedOutput(); err != nil {
		t.Fatalf("nobody: mkfifo: %v %s", err, out)
	}
	other := e.startRecv("OTHER")
	srv := e.startRecv("NEW")
	des, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if strings.HasSuffix(de.Name(), "."+dpid) {
			t.Errorf("%s left after an attach of another name", de.Name())
		}
	}
	stop(t, srv, syscall.SIGTERM)
	if !processRuns(other.PID()) {
		t.Error("OTHER's receiver is gone")
	}
	stop(t, other, syscall.SIGTERM)
}

// TestForgedOwnPath: nobody makes NAME.PID and YNAME.PID for the pid a
// root fcrecv will have (sh execs it, keeping its pid). The attach removes
// them, as root may in a sticky directory, and makes its own.
func TestForgedOwnPath(t *testing.T) {
	e := sharedEnv(t)
	ctx := proctest.Context(t, runTimeout)
	cmd := exec.CommandContext(ctx, "sh", "-c", `read go && exec fcrecv -n G`)
	cmd.Env = e.environ()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.StartCmd(t, cmd)
	e.addPID(p.PID())
	pid := strconv.Itoa(p.PID())
	for _, f := range []string{"G." + pid, "YG." + pid} {
		if out, err := asNobody("mkfifo", "-m", "666", filepath.Join(e.dir, f)).CombinedOutput(); err != nil {
			t.Fatalf("nobody: mkfifo %s: %v %s", f, err, out)
		}
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	expectLine(t, p, fmt.Sprintf("attached G pid %d", p.PID()))
	for _, f := range []string{"G." + pid, "YG." + pid} {
		if uid, err := sysOwner(filepath.Join(e.dir, f)); err != nil || uid != 0 {
			t.Errorf("%s: owner %d, %v; want root's own FIFO", f, uid, err)
		}
	}
	r := e.run("", "fcsend", "-r", "G", "-m", "hi")
	r.ok(t, "fcsend to G")
	stop(t, p, syscall.SIGTERM)
}

// sysOwner is the uid that owns path.
func sysOwner(path string) (int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return int(st.Uid), nil
}
