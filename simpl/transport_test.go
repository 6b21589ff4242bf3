package simpl_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// The whole suite again with every process on the FIFO transport: the
// cross-process tests run against both transports.
func TestAllTestsOverFIFO(t *testing.T) {
	if os.Getenv("GOSIMPL_TRANSPORT") != "" {
		t.Skip("already running with a forced transport")
	}
	ctx := simpltest.Context(t, 5*time.Minute)
	// What this run was told to skip, the run over FIFOs skips too.
	skip := "^TestAllTestsOverFIFO$"
	if f := flag.Lookup("test.skip"); f != nil && f.Value.String() != "" {
		skip += "|" + f.Value.String()
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^Test", "-test.skip="+skip, "-test.count=1", "-test.timeout=4m")
	cmd.Env = append(os.Environ(), "GOSIMPL_TRANSPORT=fifo")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("suite over FIFOs: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("suite over FIFOs ran nothing:\n%s", out)
	}
}

func wantTransport() string {
	if os.Getenv("GOSIMPL_TRANSPORT") == "fifo" {
		return simpl.FIFO
	}
	return simpl.SHM
}

func TestLocateChoosesTransport(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	ctx := simpltest.Context(t, testTimeout)
	reply := make([]byte, 16)
	for _, tc := range []struct {
		name string
		opts []simpl.Option
		want string
	}{
		{"default", nil, wantTransport()},
		{"forced fifo", []simpl.Option{simpl.WithTransport(simpl.FIFO)}, simpl.FIFO},
		{"shm forced", []simpl.Option{simpl.WithTransport(simpl.SHM)}, wantTransport()},
		{"shm without spinning", []simpl.Option{simpl.WithTransport(simpl.SHM), simpl.WithSpin(false)}, wantTransport()},
	} {
		ch := attach(t, dir, "CLI", tc.opts...)
		c, err := ch.Locate(ctx, "SRV")
		if wantTransport() == simpl.FIFO && strings.HasPrefix(tc.name, "shm") {
			// The server only speaks FIFOs in this run: forcing shm fails.
			if err == nil {
				t.Errorf("%s: Locate of a FIFO-only receiver succeeded", tc.name)
			}
			ch.Close()
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.Transport(); got != tc.want {
			t.Errorf("%s: transport %v, want %v", tc.name, got, tc.want)
		}
		n, err := c.Send(ctx, []byte{opEcho, 'a'}, reply)
		if err != nil || string(reply[:n]) != "b" {
			t.Errorf("%s: Send: %q, %v", tc.name, reply[:n], err)
		}
		c.Close()
		ch.Close()
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// One receive loop serves FIFO senders and shared-memory senders at the
// same time.
func TestMixedTransportsOneReceiveLoop(t *testing.T) {
	if os.Getenv("GOSIMPL_TRANSPORT") != "" {
		t.Skip("transport forced for every process")
	}
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "SRV")
	ctx, cancel := context.WithCancel(simpltest.Context(t, time.Minute))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, srv, nil) }()
	var procs []*simpltest.Proc
	for i, tr := range []string{"fifo", "shm", "fifo", "shm"} {
		e := append(env(dir), "GOSIMPL_TRANSPORT="+tr)
		procs = append(procs, simpltest.Start(t, "client", e, "CLI"+string(rune('A'+i)), "SRV"))
	}
	for i, p := range procs {
		p.Expect("ok", time.Minute)
		if err := p.Wait(10 * time.Second); err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// A process that gives up on a Send, closes its Channel and exits at once
// leaves no FIFO behind (the Send's slot is still being drained then).
func TestQuitAfterCancelledSend(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	for range 5 {
		q := simpltest.StartNoWait(t, "quit", env(dir), "QUIT", "SRV")
		q.Expect("ok", 10*time.Second)
		if err := q.Wait(10 * time.Second); err != nil {
			t.Fatalf("quit helper: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), "QUIT") {
				t.Fatalf("left behind after a clean exit: %s", e.Name())
			}
		}
	}
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}
