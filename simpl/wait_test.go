package simpl_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/naming"
)

// Waiting for states rather than sleeping.

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
}

// fifoQueued is how many bytes wait unread in the receive FIFO of name,
// attached in dir by this process.
func fifoQueued(t *testing.T, dir, name string) int {
	t.Helper()
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(reg.ReceivePath(name, os.Getpid()), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	if err != nil {
		t.Fatalf("FIONREAD: %v", err)
	}
	return n
}

// laneMappings counts the shared-memory lanes this process maps (a
// receiver maps each of its senders' lanes once their handshake is done).
func laneMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(f[5], "/memfd:gosimpl-lane") {
			inodes[f[4]] = true
		}
	}
	return len(inodes)
}
