package sys

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	simpltest.Main(m, map[string]simpltest.Role{"idle": roleIdle, "procsched": roleProcSched}, simpltest.WithLifetime(time.Minute))
}

// roleIdle: print "ready", then wait to be killed (or for the lifetime).
func roleIdle([]string) error {
	simpltest.Ready()
	select {}
}

// waitWithin runs p.Wait and fails the test unless it returns within d.
func waitWithin(t *testing.T, p *Pidfd, d time.Duration) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- p.Wait() }()
	select {
	case err := <-res:
		return err
	case <-time.After(d):
		t.Fatalf("Wait on pid %d did not return within %v", p.PID(), d)
		return nil
	}
}

// A pidfd on another process: not exited while it runs, Wait returns when
// it is killed (a zombie is exited), and Close is idempotent.
func TestPidfdExit(t *testing.T) {
	h := simpltest.Start(t, "idle", nil)
	p, err := OpenPidfd(h.PID())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.PID() != h.PID() {
		t.Fatalf("PID() = %d, want %d", p.PID(), h.PID())
	}
	if p.Exited() {
		t.Fatal("Exited with the process running")
	}
	res := make(chan error, 1)
	go func() { res <- p.Wait() }()
	h.Signal(syscall.SIGKILL)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("Wait after the kill: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10 s of the kill")
	}
	if !p.Exited() {
		t.Fatal("not Exited after the kill, before reaping")
	}
	h.Wait(10 * time.Second)
	if !p.Exited() {
		t.Fatal("not Exited after reaping")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if p.Exited() {
		t.Fatal("Exited after Close: a closed Pidfd watches nothing")
	}
	if err := waitWithin(t, p, 10*time.Second); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait after Close: %v, want os.ErrClosed", err)
	}
}

// Close ends a Wait on a process that keeps running, and may race with
// Exited and other Closes.
func TestPidfdCloseEndsWait(t *testing.T) {
	h := simpltest.Start(t, "idle", nil)
	p, err := OpenPidfd(h.PID())
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { res <- p.Wait() }()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				p.Exited()
			}
			p.Close()
		})
	}
	wg.Wait()
	select {
	case err := <-res:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait ended by Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Wait within 10 s")
	}
	if err := unix.Kill(h.PID(), 0); err != nil {
		t.Fatalf("the process is not running after Close: %v", err)
	}
}

// Exited costs no allocation: the FIFO receiver polls a sender's pidfd on
// every request.
func TestPidfdExitedAllocs(t *testing.T) {
	p, err := OpenPidfd(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if n := testing.AllocsPerRun(100, func() {
		if p.Exited() {
			t.Fatal("this process has exited")
		}
	}); n != 0 {
		t.Fatalf("Exited allocates %v times a call", n)
	}
}

func TestOpenPidfdErrors(t *testing.T) {
	// PID_MAX_LIMIT is 2^22: no process has a larger pid.
	if _, err := OpenPidfd(1<<22 + 1); !errors.Is(err, ErrNoProcess) {
		t.Errorf("OpenPidfd of a pid past the limit: %v, want ErrNoProcess", err)
	}
	for _, pid := range []int{0, -1} {
		_, err := OpenPidfd(pid)
		if err == nil || errors.Is(err, ErrNoProcess) || errors.Is(err, ErrNoPidfd) {
			t.Errorf("OpenPidfd(%d): %v, want an invalid-argument error", pid, err)
		}
	}
}

// inotifyRecord is one struct inotify_event with its name padded to pad
// bytes.
func inotifyRecord(mask uint32, name string, pad int) []byte {
	b := make([]byte, unix.SizeofInotifyEvent+pad)
	binary.NativeEndian.PutUint32(b[0:4], 1)
	binary.NativeEndian.PutUint32(b[4:8], mask)
	binary.NativeEndian.PutUint32(b[12:16], uint32(pad))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

// Every truncation of a valid buffer decodes to the whole records it holds,
// and a length past the end is not trusted.
func TestParseDirEvents(t *testing.T) {
	var buf []byte
	buf = append(buf, inotifyRecord(unix.IN_CREATE, "ALPHA.12", 16)...)
	buf = append(buf, inotifyRecord(unix.IN_DELETE, "", 0)...)
	buf = append(buf, inotifyRecord(unix.IN_MOVED_TO, "B", 32)...)
	buf = append(buf, inotifyRecord(unix.IN_DELETE_SELF, "", 0)...)
	want := []DirEvent{{Name: "ALPHA.12"}, {Name: "", Removed: true}, {Name: "B"}, {Gone: true}}
	ends := []int{32, 48, 96, 112} // where each record ends
	for n := 0; n <= len(buf); n++ {
		got := ParseDirEvents(buf[:n])
		whole := 0
		for whole < len(ends) && ends[whole] <= n {
			whole++
		}
		if len(got) != whole {
			t.Fatalf("%d bytes: %d events %+v, want %d", n, len(got), got, whole)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%d bytes: event %d is %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
	huge := inotifyRecord(unix.IN_CREATE, "X", 16)
	binary.NativeEndian.PutUint32(huge[12:16], ^uint32(0))
	if got := ParseDirEvents(huge); len(got) != 0 {
		t.Fatalf("a record claiming 4 GiB of name: %+v", got)
	}
}

// The watch reports entries made and removed in the directory, and the
// directory's own removal.
func TestWatchDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "watched")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := WatchDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("WatchDir of a missing directory succeeded")
	}
	f, err := WatchDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	// next reads events until one satisfies ok.
	next := func(what string, ok func(DirEvent) bool) {
		t.Helper()
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			for _, ev := range ParseDirEvents(buf[:n]) {
				if ok(ev) {
					return
				}
			}
		}
	}
	path := filepath.Join(dir, "NAME.42")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	next("the creation", func(ev DirEvent) bool { return ev.Name == "NAME.42" && !ev.Gone })
	uid, err := Owner(path)
	if err != nil || uid != os.Getuid() {
		t.Fatalf("Owner(%s) = %d, %v; want %d", path, uid, err, os.Getuid())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	next("the removal", func(ev DirEvent) bool { return ev.Name == "NAME.42" })
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	next("the directory's removal", func(ev DirEvent) bool { return ev.Gone })
	if _, err := Owner(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Owner of a removed file: %v", err)
	}
}

// Pidfd.Signal reaches the process it was opened for; once that process
// is gone (reaped), it is ErrNoProcess, and after Close os.ErrClosed.
func TestPidfdSignal(t *testing.T) {
	h := simpltest.Start(t, "idle", nil)
	p, err := OpenPidfd(h.PID())
	if err != nil {
		if errors.Is(err, ErrNoPidfd) {
			t.Skipf("no pidfds here: %v", err)
		}
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := waitWithin(t, p, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h.Wait(5 * time.Second) // reaped: the pid is free for reuse
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrNoProcess) {
		t.Errorf("Signal after the process was reaped: %v, want ErrNoProcess", err)
	}
	p.Close()
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Signal after Close: %v, want os.ErrClosed", err)
	}
}
