package sys

import (
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// isOpen tells whether fd is an open descriptor of this process.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

func pipe(t *testing.T) (r, w *FD) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	r, w = NewFD(p[0]), NewFD(p[1])
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// An FD closes its descriptor once: a second Close leaves alone the file
// that has reused the number meanwhile.
func TestFDCloseOnce(t *testing.T) {
	r, _ := pipe(t)
	n := r.Int()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if isOpen(n) {
		t.Fatalf("descriptor %d open after Close", n)
	}
	if r.Int() != -1 {
		t.Fatalf("Int after Close = %d, want -1", r.Int())
	}
	// The lowest free number is n again.
	other, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	if other != n {
		t.Logf("the new file got %d, not %d: the check below is weaker", other, n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !isOpen(other) {
		t.Fatal("a second Close closed another file's descriptor")
	}
	if err := r.Control(func(int) { t.Fatal("Control ran after Close") }); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Control after Close: %v, want os.ErrClosed", err)
	}
	if _, err := r.File("x"); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("File after Close: %v, want os.ErrClosed", err)
	}
}

// Closes racing with Controls: every Control sees an open descriptor, and
// exactly one Close closes it (run with -race).
func TestFDConcurrentClose(t *testing.T) {
	for range 50 {
		r, _ := pipe(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				r.Control(func(fd int) {
					if !isOpen(fd) {
						t.Errorf("Control got closed descriptor %d", fd)
					}
				})
			})
			wg.Go(func() {
				if err := r.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
	}
}

// File hands the descriptor on: the FD is closed, the file owns it.
func TestFDFile(t *testing.T) {
	r, w := pipe(t)
	n := w.Int()
	f, err := w.File("pipe")
	if err != nil {
		t.Fatal(err)
	}
	if w.Int() != -1 {
		t.Fatal("the FD still holds the descriptor after File")
	}
	if err := w.Close(); err != nil || !isOpen(n) {
		t.Fatalf("Close after File: %v; the file's descriptor open: %v", err, isOpen(n))
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var b [2]byte
	if n, err := ReadNonblock(r.Int(), b[:]); n != 1 || err != nil {
		t.Fatalf("read %d, %v; want the byte written through the file", n, err)
	}
}

func TestNewFDNegative(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewFD(-1) did not panic")
		}
	}()
	NewFD(-1)
}

// The nudge pipe: Nudge never waits, even on a full pipe, and is a no-op
// once its FD is closed; NudgeReader takes only a pipe, and then owns it.
func TestNudgePipe(t *testing.T) {
	r, w, err := NudgePipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 70000 { // more bytes than a default pipe holds (64 KiB)
		Nudge(w)
	}
	f, err := NudgeReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r.Int() != -1 {
		t.Fatal("NudgeReader left the FD open")
	}
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	if n, err := f.Read(b); err != nil || n == 0 {
		t.Fatalf("read nudges: %d, %v", n, err)
	}
	w.Close()
	Nudge(w) // closed: nothing happens

	m, err := NewMemfd("test", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := NudgeReader(m); err == nil {
		t.Fatal("NudgeReader took a memfd")
	}
	if m.Int() < 0 {
		t.Fatal("NudgeReader closed a descriptor it refused")
	}
}

// Descriptors sent with SendRights arrive as FDs of their own; a closed FD
// is not sent.
func TestSendRights(t *testing.T) {
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socket")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	a, b := conn(p[0]), conn(p[1])
	m, err := NewMemfd("test", 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := SendRights(a, []byte("hi"), m); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 16), make([]byte, 64)
	n, oobn, _, _, err := b.ReadMsgUnix(buf, oob)
	if err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	fds := ReceiveRights(oob[:oobn])
	if len(fds) != 1 {
		t.Fatalf("%d descriptors received, want 1", len(fds))
	}
	defer fds[0].Close()
	if fds[0].Int() == m.Int() {
		t.Fatal("the received descriptor has the sent one's number")
	}
	if size, err := CheckMemfd(fds[0].Int(), 8192, 8192); err != nil || size != 8192 {
		t.Fatalf("received memfd: %d bytes, %v", size, err)
	}
	m.Close()
	if err := SendRights(a, []byte("closed"), m); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("SendRights of a closed FD: %v, want os.ErrClosed", err)
	}
}

// Every word the layer hands out lies within its mapping and is aligned.
func TestWordBounds(t *testing.T) {
	fd, err := NewMemfd("test", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	m, err := Map(fd.Int(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	m.Uint64(4088).Store(7)
	if got := *Uint64At(m.Bytes(0, 4096), 4088); got != 7 {
		t.Fatalf("word at 4088: %d, want 7", got)
	}
	m.Uint32(4092).Store(1)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Uint32 past the end", func() { m.Uint32(4096) }},
		{"Uint32 unaligned", func() { m.Uint32(2) }},
		{"Uint64 straddling the end", func() { m.Uint64(4092) }},
		{"Uint64 negative", func() { m.Uint64(-8) }},
		{"Uint64At unaligned", func() { Uint64At(make([]byte, 64), 4) }},
		{"Uint64At short", func() { Uint64At(make([]byte, 4), 0) }},
		{"Uint64At at an unaligned address", func() { Uint64At(m.Bytes(4, 64), 0) }},
		{"Uint32 at an unaligned address", func() { (&Mapping{mem: m.Bytes(2, 64)}).Uint32(0) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.f()
		}()
	}
	if err := m.Unmap(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmap(); err != nil {
		t.Fatalf("second Unmap: %v", err)
	}
}

func TestProcessExists(t *testing.T) {
	if !ProcessExists(os.Getpid()) {
		t.Fatal("this process does not exist")
	}
	// PID_MAX_LIMIT is 2^22: no process has a larger pid.
	if ProcessExists(1<<22 + 1) {
		t.Fatal("a pid past the limit exists")
	}
}

// VoluntarySwitches counts a thread of this process that sleeps: each of
// 20 short sleeps on a locked thread is one more, at least; a pid with no
// process is an error.
func TestVoluntarySwitches(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := VoluntarySwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ts := unix.Timespec{Nsec: 100_000}
	for range 20 {
		unix.Nanosleep(&ts, nil)
	}
	after, err := VoluntarySwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 20 {
		t.Fatalf("%d voluntary switches across 20 sleeps (from %d to %d)", after-before, before, after)
	}
	if _, err := VoluntarySwitches(1<<22 + 1); err == nil {
		t.Fatal("switches of a pid past the limit")
	}
}

func TestBirthTime(t *testing.T) {
	path := t.TempDir() + "/f"
	before := time.Now().Add(-2 * time.Second) // file system clocks are coarse
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bt, err := BirthTime(path)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Before(before) || bt.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("birth time %v, made just after %v", bt, before)
	}
	if _, err := BirthTime(path + "-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("BirthTime of a missing file: %v", err)
	}
}

// Privatize keeps the words and bytes handed out valid, with the kept
// bytes' contents, and no longer shares them: the file's other mappings
// and this one go their own ways.
func TestPrivatize(t *testing.T) {
	fd, err := NewMemfd("test", 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	m, err := Map(fd.Int(), 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	peer, err := Map(fd.Int(), 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Unmap()
	w, b := m.Uint64(0), m.Bytes(8, 8192-8)
	w.Store(42)
	b[0], b[8000] = 'a', 'z'
	if err := m.Privatize(16); err != nil {
		t.Fatal(err)
	}
	if w.Load() != 42 || b[0] != 'a' || b[8000] != 0 {
		t.Fatalf("after Privatize(16): word %d, byte 8 %q, byte 8008 %q; want 42, 'a' and 0", w.Load(), b[0], b[8000])
	}
	peer.Uint64(0).Store(7)
	w.Store(9)
	if w.Load() != 9 || peer.Uint64(0).Load() != 7 {
		t.Fatalf("still shared: this side reads %d, the peer %d", w.Load(), peer.Uint64(0).Load())
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(maps), "memfd:test"); n != 1 {
		t.Fatalf("%d mappings of the memfd, want the peer's only", n)
	}
}
