package simpl_test

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

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// stopped waits until process pid is stopped (state T in /proc/PID/stat).
func stopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
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
			t.Fatalf("process %d did not stop within 10s", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// A receiver stopped (SIGSTOP) for longer than the shared-memory
// handshake's 2 s bound, then located without a deadline, is not reported
// gone (issue 16, item 6): a shm-only Locate says it is unreachable on that
// transport, and a Locate with every transport takes the FIFO transport,
// whose Send waits for the receiver and completes once it continues
// (SIGCONT), as on QNX. Before, the shm-only Locate failed with
// ErrPeerGone.
func TestStoppedLocate(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("FIFO transport forced: the receiver has no shared-memory transport")
	}
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "STOPPED")
	shmCli := attach(t, dir, "SHMCLI", simpl.WithTransport(simpl.SHM))
	cli := attach(t, dir, "CLI")
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()

	srv.Signal(syscall.SIGSTOP)
	stopped(t, srv.PID())
	start := time.Now()
	if c, err := shmCli.Locate(ctx, "STOPPED"); err == nil {
		c.Close()
		t.Fatal("shm-only Locate of a stopped receiver succeeded")
	} else if errors.Is(err, simpl.ErrPeerGone) || !errors.Is(err, simpl.ErrUnreachable) {
		t.Fatalf("shm-only Locate of a stopped receiver: %v, want ErrUnreachable, not ErrPeerGone", err)
	} else {
		checkOnePrefix(t, err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("shm-only Locate of a stopped receiver gave up after %v, before the handshake's bound", d)
	}
	c := locate(t, cli, "STOPPED")
	if c.Transport() != simpl.FIFO {
		t.Fatalf("Locate of a stopped receiver with every transport: %s, want %s", c.Transport(), simpl.FIFO)
	}
	res := make(chan error, 1)
	go func() {
		reply := make([]byte, 8)
		n, err := c.Send(ctx, []byte("Eab"), reply)
		if err == nil && string(reply[:n]) != "bc" {
			err = fmt.Errorf("reply %q, want %q", reply[:n], "bc")
		}
		res <- err
	}()
	srv.Signal(syscall.SIGCONT)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Send after SIGCONT: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Send did not complete within 20s of SIGCONT")
	}
	// Running again, it is reached through shared memory.
	if c := locate(t, shmCli, "STOPPED"); c.Transport() != simpl.SHM {
		t.Fatalf("shm-only Locate after SIGCONT: %s", c.Transport())
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}
