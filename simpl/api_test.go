package simpl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// Too large a message or reply carries its sizes where the transport
// knows them, and every error says "simpl:" once.
func TestSizeErrors(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV", "1024")
	c := locate(t, attach(t, dir, "CLI"), "SRV")
	ctx := simpltest.Context(t, testTimeout)
	shm := c.Transport() == simpl.SHM

	_, err := c.Send(ctx, sizedReq(1, 2048), make([]byte, 16))
	var se *simpl.SizeError
	if !errors.As(err, &se) || !errors.Is(err, simpl.ErrTooLarge) {
		t.Fatalf("2048 bytes to a 1024-byte receiver: %v, want a SizeError for ErrTooLarge", err)
	}
	// The FIFO wire says only "too large": the sender knows its own size.
	if want := (simpl.SizeError{Err: simpl.ErrTooLarge, Size: 2048, Limit: -1}); shm {
		want.Limit = 1024
		if *se != want {
			t.Errorf("SizeError %+v, want %+v", *se, want)
		}
	} else if *se != want {
		t.Errorf("SizeError %+v, want %+v", *se, want)
	}
	checkOnePrefix(t, err)

	_, err = c.Send(ctx, sizedReq(100, 5), make([]byte, 10))
	if !errors.As(err, &se) || !errors.Is(err, simpl.ErrReplyTooLarge) {
		t.Fatalf("100-byte reply into 10 bytes: %v, want a SizeError for ErrReplyTooLarge", err)
	}
	want := simpl.SizeError{Err: simpl.ErrReplyTooLarge, Size: -1, Limit: 10}
	if shm {
		want.Size = 100
	}
	if *se != want {
		t.Errorf("SizeError %+v, want %+v", *se, want)
	}
	if !strings.Contains(err.Error(), "limit 10") {
		t.Errorf("%q does not give the reply buffer's size", err)
	}
	checkOnePrefix(t, err)
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// checkOnePrefix fails the test unless err's message says "simpl:" once,
// at its start.
func checkOnePrefix(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); !strings.HasPrefix(msg, "simpl: ") || strings.Count(msg, "simpl:") != 1 {
		t.Errorf("error %q: want one \"simpl: \", at the start", msg)
	}
}

func TestErrorsSayPrefixOnce(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "CLI")
	ctx := simpltest.Context(t, testTimeout)
	_, err := ch.Locate(ctx, "NOBODY")
	if !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("Locate of nobody: %v", err)
	}
	checkOnePrefix(t, err)
	if _, err := simpl.Attach("CLI", simpl.WithDir(dir)); !errors.Is(err, simpl.ErrNameInUse) {
		t.Fatalf("second Attach: %v", err)
	} else {
		checkOnePrefix(t, err)
	}
	// A receiver that goes away under a Send.
	srv := attach(t, dir, "SRV")
	c := locate(t, ch, "SRV")
	go func() {
		if msg, err := srv.Receive(ctx); err == nil {
			srv.Close()
			msg.Reply(nil)
		}
	}()
	if _, err := c.Send(ctx, []byte("x"), nil); !errors.Is(err, simpl.ErrPeerGone) {
		t.Fatalf("Send to a receiver that closed: %v, want ErrPeerGone", err)
	} else {
		checkOnePrefix(t, err)
	}
}

// Options that cannot apply fail Attach.
func TestOptionErrors(t *testing.T) {
	dir := simpltest.Dir(t)
	for name, opt := range map[string]simpl.Option{
		"unknown transport":  simpl.WithTransport("carrier-pigeon"),
		"zero max message":   simpl.WithMaxMessage(0),
		"not a permission":   simpl.WithPerm(0o4600),
		"no permission":      simpl.WithPerm(0),
		"owner cannot write": simpl.WithPerm(0o466),
		"transport and more": simpl.WithTransport(simpl.SHM, "nope"),
	} {
		if ch, err := simpl.Attach("OPT", simpl.WithDir(dir), opt); err == nil {
			ch.Close()
			t.Errorf("%s: Attach succeeded", name)
		} else {
			checkOnePrefix(t, err)
		}
	}
	t.Setenv("GOSIMPL_TRANSPORT", "bogus")
	if ch, err := simpl.Attach("OPT", simpl.WithDir(dir)); err == nil {
		ch.Close()
		t.Error("GOSIMPL_TRANSPORT=bogus: Attach succeeded")
	}
}

// Attach("") picks a name nobody else holds, and it can be located.
func TestAttachAnonymous(t *testing.T) {
	dir := simpltest.Dir(t)
	a, b := attach(t, dir, ""), attach(t, dir, "")
	if a.Name() == "" || a.Name() == b.Name() {
		t.Fatalf("names %q and %q", a.Name(), b.Name())
	}
	ctx := simpltest.Context(t, testTimeout)
	go serve(ctx, a, nil)
	c := locate(t, b, a.Name())
	reply := make([]byte, 8)
	if n, err := c.Send(ctx, []byte{opEcho, 'a'}, reply); err != nil || string(reply[:n]) != "b" {
		t.Fatalf("Send to %s: %q, %v", a.Name(), reply[:n], err)
	}
}

// WaitFor waits for a name that is not attached yet, and gives up with
// its context.
func TestWaitFor(t *testing.T) {
	dir := simpltest.Dir(t)
	ch := attach(t, dir, "CLI")
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := ch.WaitFor(short, "LATE"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor with nobody attaching: %v, want DeadlineExceeded", err)
	}
	ctx := simpltest.Context(t, testTimeout)
	type res struct {
		c   *simpl.Conn
		err error
	}
	got := make(chan res, 1)
	go func() {
		c, err := ch.WaitFor(ctx, "LATE")
		got <- res{c, err}
	}()
	srv := simpltest.Start(t, "server", env(dir), "LATE")
	r := <-got
	if r.err != nil {
		t.Fatalf("WaitFor: %v", r.err)
	}
	defer r.c.Close()
	if r.c.PID() != srv.PID() {
		t.Fatalf("WaitFor found pid %d, want %d", r.c.PID(), srv.PID())
	}
	reply := make([]byte, 8)
	if n, err := r.c.Send(ctx, []byte{opEcho, 'x'}, reply); err != nil || string(reply[:n]) != "y" {
		t.Fatalf("Send: %q, %v", reply[:n], err)
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// A receiver is found through shared memory however its directory is
// spelled: with a trailing slash, doubled slashes, or a symbolic link.
func TestDirSpellings(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	link := filepath.Join(t.TempDir(), "fifos")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	ctx := simpltest.Context(t, testTimeout)
	for i, spelling := range []string{dir + "/", "/" + dir, link} {
		ch := attach(t, spelling, "CLI"+strconv.Itoa(i))
		c, err := ch.Locate(ctx, "SRV")
		if err != nil {
			t.Fatalf("Locate in %q: %v", spelling, err)
		}
		if c.Transport() != wantTransport() {
			t.Errorf("Locate in %q: through %s, want %s", spelling, c.Transport(), wantTransport())
		}
		reply := make([]byte, 8)
		if n, err := c.Send(ctx, []byte{opEcho, 'a'}, reply); err != nil || string(reply[:n]) != "b" {
			t.Errorf("Send in %q: %q, %v", spelling, reply[:n], err)
		}
		c.Close()
		ch.Close()
	}
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// Locate through shared memory talks to the receiver (a lane handshake):
// a receiver that does not answer (stopped) costs the caller its context,
// not the transport's 2 s, and Buffer is bounded the same way.
func TestLocateHonoursContext(t *testing.T) {
	if wantTransport() != simpl.SHM {
		t.Skip("a FIFO Locate opens the receiver's FIFO without it")
	}
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	ch := attach(t, dir, "CLI")
	c := locate(t, ch, "SRV")
	srv.Signal(syscall.SIGSTOP)
	// kill returns before the receiver's threads have stopped.
	waitFor(t, testTimeout, "the receiver stopped", func() bool { return procState(t, srv.PID()) == 'T' })
	for what, try := range map[string]func(context.Context) error{
		"Locate": func(ctx context.Context) error {
			c2, err := ch.Locate(ctx, "SRV")
			if err == nil {
				c2.Close()
			}
			return err
		},
		"Buffer": func(ctx context.Context) error {
			b, err := c.Buffer(ctx, 1<<20) // larger than the lane it has: a new one
			if err == nil {
				b.Close()
			}
			return err
		},
	} {
		// Without ctx the handshake would end at its own 2 s bound, as
		// ErrPeerGone: DeadlineExceeded says ctx ended it.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := try(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s of a stopped receiver: %v, want DeadlineExceeded", what, err)
		}
	}
	srv.Signal(syscall.SIGCONT)
	srv.Signal(syscall.SIGTERM)
	srv.Wait(5 * time.Second)
	reap(t, dir)
}

// procState is the state letter of process pid (/proc/PID/stat: R, S, T, ...).
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return b[i+2]
}
