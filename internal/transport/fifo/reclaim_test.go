package fifo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
)

func init() {
	roles["shmstop"] = runShmStop
	roles["mkseg"] = runMkseg
}

// runShmStop (DIR STAGE) attaches LEAKER in DIR and sends to SINK, but
// its segment's creation stops for good at STAGE ("shmget" or "shmat"),
// before IPC_RMID, after printing "segment ID": the test kills it there.
func runShmStop(args []string) error {
	stage := args[1]
	sys.ShmCreateHook = func(at string, id int) {
		if at == stage {
			fmt.Printf("segment %d\n", id)
			select {}
		}
	}
	ep, err := helperEndpoint(args[0], "LEAKER")
	if err != nil {
		return err
	}
	c, err := ep.Locate("SINK")
	if err != nil {
		return err
	}
	_, err = c.Send(context.Background(), []byte("never sent"), nil)
	return fmt.Errorf("Send returned: %v", err)
}

// runMkseg (KIND) makes one segment that a reclaim must leave alone, prints
// "segment ID" and exits without removing it:
//
//	private    IPC_PRIVATE, as anything but gosimpl makes them
//	wrongpid   a key of gosimpl's shape whose pid bits are not its creator's
//	otheruser  gosimpl's key, made by user 65534 (the test runs as root)
func runMkseg(args []string) error {
	var id int
	var err error
	switch args[0] {
	case "private":
		id, err = unix.SysvShmGet(unix.IPC_PRIVATE, sys.PageSize, unix.IPC_CREAT|0o600)
	case "wrongpid":
		id, err = unix.SysvShmGet(sys.ShmKey(os.Getpid()+1, 0), sys.PageSize, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	case "otheruser":
		if err := syscall.Setgid(65534); err != nil {
			return err
		}
		if err := syscall.Setuid(65534); err != nil {
			return err
		}
		id, err = sys.ShmGetKeyed(sys.PageSize, 0o600)
	default:
		return fmt.Errorf("unknown kind %q", args[0])
	}
	if err != nil {
		return err
	}
	fmt.Printf("segment %d\n", id)
	return nil
}

// segmentLine reads "segment ID" from a helper.
func segmentLine(t *testing.T, p *proctest.Proc) int {
	t.Helper()
	line := p.Expect("segment ", helperTimeout)
	id, err := strconv.Atoi(strings.TrimPrefix(line, "segment "))
	if err != nil {
		t.Fatalf("helper printed %q", line)
	}
	return id
}

// removeSegment removes segment id when the test ends.
func removeSegment(t *testing.T, id int) {
	t.Cleanup(func() { sys.ShmRemove(id) })
}

// buildFcshow builds tools/fcshow into the test's temporary directory.
func buildFcshow(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build fcshow")
	}
	bin := filepath.Join(t.TempDir(), "fcshow")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/gosimpl/gosimpl/tools/fcshow").CombinedOutput(); err != nil {
		t.Fatalf("build fcshow: %v\n%s", err, out)
	}
	return bin
}

// privateIPCEnv marks a test process running in an IPC namespace of its
// own.
const privateIPCEnv = "GOSIMPL_TEST_PRIVATE_IPC"

// inPrivateIPC runs the test in a new process in an IPC namespace of its
// own, where it sees no other process's segments and no other process
// sees its own, and returns true when it has done so; false means "run it
// here": in that process, or where namespaces cannot be made (not root).
// Every Attach reclaims the segments of its user, so leaked segments that
// other tests could see would be raced for (and would show up in what
// fcshow -clean prints for them).
func inPrivateIPC(t *testing.T) bool {
	t.Helper()
	if os.Getenv(privateIPCEnv) != "" {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), privateIPCEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil {
		t.Logf("no IPC namespace of its own (%v): running in the shared one", err)
		return false
	}
	t.Logf("in an IPC namespace of its own:\n%s", out)
	if err != nil {
		t.Fatalf("in an IPC namespace of its own: %v", err)
	}
	return true
}

// TestReclaimSegments: a sender SIGKILLed while making its segment, after
// shmget and before IPC_RMID, leaves a segment that the next Attach (or
// fcshow -clean) removes; segments of a live process, segments that are
// not gosimpl's and segments of another user are left alone.
func TestReclaimSegments(t *testing.T) {
	if inPrivateIPC(t) {
		return
	}
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := Attach("SINK", Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()

	keep := map[int]string{}
	live, err := sys.ShmGetKeyed(sys.PageSize, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	removeSegment(t, live)
	keep[live] = "a live process's gosimpl segment"
	kinds := []string{"private", "wrongpid"}
	if uid := os.Geteuid(); uid == 0 {
		kinds = append(kinds, "otheruser")
	} else if os.Getenv("GOSIMPL_CI") == "1" {
		t.Fatalf("running as uid %d: GOSIMPL_CI=1 (CI, which runs as root) requires the segment of another user", uid)
	} else {
		t.Logf("not root (uid %d): the case of another user's segment (made by a helper that setuids to 65534, which needs root) is left out; CI (.ci/run) runs it as root", uid)
	}
	for _, kind := range kinds {
		p := proctest.StartNoWait(t, "mkseg", nil, kind)
		id := segmentLine(t, p)
		removeSegment(t, id)
		if err := p.Wait(helperTimeout); err != nil {
			t.Fatalf("mkseg %s: %v", kind, err)
		}
		keep[id] = "a dead process's " + kind + " segment"
	}
	checkKept := func(t *testing.T) {
		t.Helper()
		for id, what := range keep {
			if _, err := sys.ShmStat(id); err != nil {
				t.Errorf("%s (%d) was removed: %v", what, id, err)
			}
		}
	}
	fcshow := buildFcshow(t)

	for _, stage := range []string{"shmget", "shmat"} {
		for _, by := range []string{"attach", "fcshow"} {
			t.Run(stage+"/"+by, func(t *testing.T) {
				// Outside a namespace of its own, another test running
				// at the same time may reclaim the segment first (a few
				// milliseconds); fcshow says when it was, and then the
				// case is run again.
				for try := 1; ; try++ {
					if leakAndReclaim(t, dir, reg, stage, by, fcshow, try == 5) {
						break
					}
					t.Logf("try %d: another process reclaimed the segment first", try)
				}
				checkKept(t)
			})
		}
	}
	checkKept(t)
}

// leakAndReclaim has a sender killed at stage of its segment's creation,
// checks what it left, then reclaims it by an Attach or by fcshow -clean.
// It returns false when fcshow found the segment already reclaimed (by
// some other process), unless last.
func leakAndReclaim(t *testing.T, dir string, reg *naming.Registry, stage, by, fcshow string, last bool) bool {
	t.Helper()
	p := proctest.StartNoWait(t, "shmstop", nil, dir, stage)
	id := segmentLine(t, p)
	// Held attached until it has been looked at, so that no other test's
	// Attach reclaims it before.
	mem, err := sys.ShmAttach(id)
	if err != nil {
		t.Fatal(err)
	}
	removeSegment(t, id) // if the test fails
	killed(t, p)
	p.Wait(helperTimeout)
	info, err := sys.ShmStat(id)
	if err != nil {
		t.Fatal(err)
	}
	if pid, ok := sys.ShmKeyCreator(info.Key); !ok || pid != p.PID() || info.CPID != p.PID() || info.MarkedForRemoval() || info.Attached != 1 {
		t.Fatalf("the killed sender's segment: %+v (pid %d); want gosimpl's key, creator %d, not marked, attached here only", info, pid, p.PID())
	}
	sys.ShmDetach(mem)

	switch by {
	case "attach":
		ep, err := Attach("LEAKER", Options{Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		ep.Close()
	case "fcshow":
		cmd := exec.Command(fcshow, "-clean")
		cmd.Env = append(os.Environ(), "FIFO_PATH="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fcshow -clean: %v\n%s", err, out)
		}
		t.Logf("fcshow -clean:\n%s", out)
		if !regexp.MustCompile(`(?m)^removed 2 stale FIFOs\nremoved [1-9][0-9]* stale System V segments?\n`).Match(out) {
			_, err := sys.ShmStat(id)
			if gone := errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EIDRM); gone && !last {
				return false
			}
			t.Errorf("fcshow -clean printed %q, want 2 FIFOs and the segment removed", out)
		}
	}
	if info, err := sys.ShmStat(id); !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EIDRM) {
		t.Errorf("the killed sender's segment is still there: %+v, %v", info, err)
	}
	if left := proctest.Segments(t, p.PID()); len(left) > 0 {
		t.Errorf("segments of the killed sender left: %+v", left)
	}
	return true
}

// TestShmKey: the key space's layout.
func TestShmKey(t *testing.T) {
	for _, pid := range []int{1, 2, 4096, 32767, 1<<22 - 1} {
		seen := map[int]bool{}
		for n := range uint32(16) {
			key := sys.ShmKey(pid, n)
			if got, ok := sys.ShmKeyCreator(key); !ok || got != pid {
				t.Errorf("ShmKeyCreator(ShmKey(%d, %d) = %#x) = %d, %v", pid, n, key, got, ok)
			}
			if key <= 0 || seen[key] {
				t.Errorf("ShmKey(%d, %d) = %#x", pid, n, key)
			}
			seen[key] = true
		}
	}
	for _, key := range []int{0, 1, 0x12345678, 0x60000000, -1} {
		if _, ok := sys.ShmKeyCreator(key); ok {
			t.Errorf("ShmKeyCreator(%#x) accepted a key that is not gosimpl's", key)
		}
	}
}

// TestSegmentKeyed: a sender's segment is made with gosimpl's key and
// marked for removal at once (its key is then IPC_PRIVATE again).
func TestSegmentKeyed(t *testing.T) {
	var stages bytes.Buffer
	sys.ShmCreateHook = func(stage string, id int) {
		info, err := sys.ShmStat(id)
		if err != nil {
			t.Error(err)
			return
		}
		pid, ok := sys.ShmKeyCreator(info.Key)
		fmt.Fprintf(&stages, "%s %v %v;", stage, ok && pid == os.Getpid(), info.MarkedForRemoval())
	}
	defer func() { sys.ShmCreateHook = nil }()
	id, mem, err := sys.ShmCreate(sys.PageSize, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.ShmDetach(mem)
	if got, want := stages.String(), "shmget true false;shmat true false;"; got != want {
		t.Errorf("while being made: %q, want %q", got, want)
	}
	info, err := sys.ShmStat(id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != 0 || !info.MarkedForRemoval() {
		t.Errorf("once made: key %#x, marked %v; want IPC_PRIVATE and marked", info.Key, info.MarkedForRemoval())
	}
}
