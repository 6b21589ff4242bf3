//go:build !race

package shm

import (
	"os"
	"testing"
)

// A receiver in another process is seen while it runs, by its directory,
// name and pid, and not once it is killed.
func TestListeningProcess(t *testing.T) {
	dir, name := t.TempDir(), "PROBED"
	p := startHelper(t, "recv", dir, name, "0", "0", "0")
	check := func(what string, pid int, want bool) {
		t.Helper()
		got, err := Listening(dir, name, pid)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: Listening(%q, %q, %d) = %v, want %v", what, dir, name, pid, got, want)
		}
	}
	check("the helper", p.PID(), true)
	check("this process, not listening", os.Getpid(), false)
	p.kill()
	check("the helper killed", p.PID(), false)
}
