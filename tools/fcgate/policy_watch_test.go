package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// nobodyID is the user and group a gateway runs as where root's rights
// would hide a failure: nobody on Debian and most distributions.
const nobodyID = 65534

// A gateway whose -policy file it can read but whose directory it cannot
// watch for changes (it may go through the directory, not read it: what
// inotify needs) fails to start, saying why, and leaves nothing of its C
// SIMPL router behind: _simplProtoRouter is detached (proctest.Dir finds
// the FIFO directory empty). Before, that failure closed the gateway but
// not its C SIMPL router, whose FIFOs the exit left in the directory.
// Root may watch any directory, so the gateway runs as nobody: the test
// needs root, as TestForgedNames in tools does.
func TestPolicyWatchFails(t *testing.T) {
	if uid := os.Geteuid(); uid != 0 {
		why := fmt.Sprintf("needs root (running as uid %d): the gateway runs as nobody (%d) through setuid", uid, nobodyID)
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatalf("%s; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run", why)
		}
		t.Skipf("%s; CI (.ci/run) runs it as root", why)
	}
	dir := proctest.Dir(t)
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: nobody must go through every directory above.
	watched, err := os.MkdirTemp("", "fcgate-policy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(watched) })
	gate := filepath.Join(watched, "fcgate")
	copyFile(t, bin("fcgate"), gate, 0o755)
	policy := filepath.Join(watched, "policy")
	if err := os.WriteFile(policy, []byte("allow other LOG\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(watched, 0o711); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, gate, "-host", "me", "-listen", "127.0.0.1:0", "-policy", policy)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir, "HOSTNAME=me")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	r := runCmd(t, cmd)
	if r.code == 0 || !strings.Contains(r.stderr, "-policy "+policy+": watching for changes") {
		t.Fatalf("fcgate with a policy directory it cannot watch: exit %d, stderr %q; want a failure saying so", r.code, r.stderr)
	}
	// It had become the C SIMPL programs' router before it failed.
	if !strings.Contains(r.stdout, "C SIMPL programs: router _simplProtoRouter") {
		t.Errorf("fcgate's output %q: it did not take the router's role, so the test shows nothing", r.stdout)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
		os.Remove(filepath.Join(dir, e.Name())) // said once here, not again by proctest.Dir
	}
	if len(left) != 0 {
		t.Errorf("the failed gateway left %v in its FIFO directory", left)
	}
}

// copyFile copies from to a new file to with mode.
func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
