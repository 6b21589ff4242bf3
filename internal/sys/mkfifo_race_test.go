package sys

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mkfifo's two steps, mkfifo and setting the mode, are separated here
// deterministically: a seccomp filter with a user-space listener stops
// the thread running Mkfifo at its first open or chmod after the mkfifo
// (the kernel holds the thread in the system call until the listener
// answers), the test puts something else in the FIFO's place (what an
// attacker sharing the directory could), and lets the system call go on.

// seccompData, seccompNotif and seccompResp are the kernel's struct
// seccomp_data, seccomp_notif and seccomp_notif_resp.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  seccompData
}

type seccompResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// open and chmod, which amd64 has beside openat and fchmodat (arm64 has
// neither: -1).
var fixSysOpen, fixSysChmod = func() (int, int) {
	if runtime.GOARCH == "amd64" {
		return 2, 90
	}
	return -1, -1
}()

// fixAuditArch is this architecture's AUDIT_ARCH, for the filter.
func fixAuditArch() (uint32, bool) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, true
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, true
	}
	return 0, false
}

// fixStopAt installs on the calling thread (locked to its goroutine,
// never to be unlocked) a filter that hands each of the system calls nrs
// to the listener it returns.
func fixStopAt(nrs []uint32) (int, error) {
	arch, _ := fixAuditArch()
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ld, K: 4}, // arch
		{Code: jeq, Jt: 1, K: arch},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		{Code: ld, K: 0}, // nr
	}
	for i, nr := range nrs {
		prog = append(prog, unix.SockFilter{Code: jeq, Jt: uint8(len(nrs) - i), K: nr})
	}
	prog = append(prog,
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF})
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// fixPathArg reads the path a stopped open or chmod names (this
// process's memory, through /proc/self/mem).
func fixPathArg(n *seccompNotif) string {
	addr := n.Data.Args[1] // openat, openat2, fchmodat, fchmodat2: (dirfd, path, ...)
	if nr := int(n.Data.Nr); nr == fixSysOpen || nr == fixSysChmod {
		addr = n.Data.Args[0]
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return ""
	}
	defer mem.Close()
	b := make([]byte, 4096)
	k, _ := mem.ReadAt(b, int64(addr))
	b, _, _ = bytes.Cut(b[:k], []byte{0})
	return string(b)
}

// fixMkfifoSwapped runs Mkfifo(path, 0666) on a thread stopped at its
// first open or chmod of path after the mkfifo, where swap runs, and
// returns Mkfifo's error and whether swap ran.
func fixMkfifoSwapped(t *testing.T, path string, swap func()) (error, bool) {
	t.Helper()
	nrs := []uint32{unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2}
	if fixSysOpen >= 0 {
		nrs = append(nrs, uint32(fixSysOpen), uint32(fixSysChmod))
	}
	listener := make(chan int, 1)
	setup := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the filtered thread ends with this goroutine.
		runtime.LockOSThread()
		fd, err := fixStopAt(nrs)
		if err != nil {
			setup <- err
			return
		}
		listener <- fd
		done <- Mkfifo(path, 0o666)
	}()
	var lfd int
	select {
	case err := <-setup:
		t.Skipf("seccomp user notification not available: %v", err)
	case lfd = <-listener:
	}
	defer unix.Close(lfd) // a stopped system call still waiting fails with ENOSYS
	swapped := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			return err, swapped
		default:
		}
		if time.Now().After(deadline) {
			unix.Close(lfd)
			t.Fatalf("Mkfifo did not return within 10 s")
		}
		pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 20); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatalf("poll the seccomp listener: %v", err)
		} else if n == 0 {
			continue
		}
		var n seccompNotif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(lfd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); errno != 0 {
			if errno == unix.ENOENT || errno == unix.EINTR {
				continue // the stopped call was interrupted
			}
			t.Fatalf("SECCOMP_IOCTL_NOTIF_RECV: %v", errno)
		}
		if !swapped && fixPathArg(&n) == path {
			swap()
			swapped = true
		}
		resp := seccompResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(lfd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); errno != 0 && errno != unix.ENOENT {
			t.Fatalf("SECCOMP_IOCTL_NOTIF_SEND: %v", errno)
		}
	}
}

// fixVictim makes a regular file of mode 0600, the file an attacker
// wants opened to everyone.
func fixVictim(t *testing.T, dir string) string {
	t.Helper()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(victim, 0o600); err != nil {
		t.Fatal(err)
	}
	return victim
}

func fixMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// Something put in the FIFO's place between Mkfifo's mkfifo and its
// setting of the mode (a symbolic link to a file of the attacker's
// choosing, a regular file, another user's FIFO) is not given the mode:
// Mkfifo fails, naming the path, and what was put there keeps its mode.
func TestMkfifoReplacedBetweenSteps(t *testing.T) {
	if _, ok := fixAuditArch(); !ok {
		t.Skipf("the seccomp filter knows amd64 and arm64, not %s", runtime.GOARCH)
	}
	t.Run("symlink", func(t *testing.T) {
		dir := t.TempDir()
		victim := fixVictim(t, dir)
		link := filepath.Join(dir, "link")
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "F.1")
		err, swapped := fixMkfifoSwapped(t, path, func() {
			if err := os.Rename(link, path); err != nil {
				t.Errorf("put the link in place: %v", err)
			}
		})
		if !swapped {
			t.Fatalf("Mkfifo (%v) made no open or chmod of %s after the mkfifo: the test could not put the link in place", err, path)
		}
		if m := fixMode(t, victim); m.Perm() != 0o600 {
			t.Errorf("the link's target has mode %v after Mkfifo(0666), want 0600: Mkfifo followed the link put in the FIFO's place", m)
		}
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Mkfifo with a link put in the FIFO's place = %v, want an error naming %s", err, path)
		} else if !errors.Is(err, unix.ELOOP) {
			t.Logf("Mkfifo: %v (not ELOOP)", err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		dir := t.TempDir()
		victim := fixVictim(t, dir)
		path := filepath.Join(dir, "F.1")
		err, swapped := fixMkfifoSwapped(t, path, func() {
			if err := os.Rename(victim, path); err != nil {
				t.Errorf("put the file in place: %v", err)
			}
		})
		if !swapped {
			t.Fatalf("Mkfifo (%v) made no open or chmod of %s after the mkfifo", err, path)
		}
		if fi, serr := os.Lstat(path); serr == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("the file put in the FIFO's place has mode %v after Mkfifo(0666), want 0600", fi.Mode())
		}
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Mkfifo with a regular file put in the FIFO's place = %v, want an error naming %s", err, path)
		}
	})
	t.Run("another user's FIFO", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to make a FIFO of another user")
		}
		dir := t.TempDir()
		other := filepath.Join(dir, "other")
		if err := unix.Mkfifo(other, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(other, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "F.1")
		err, swapped := fixMkfifoSwapped(t, path, func() {
			if err := os.Rename(other, path); err != nil {
				t.Errorf("put the FIFO in place: %v", err)
			}
		})
		if !swapped {
			t.Fatalf("Mkfifo (%v) made no open or chmod of %s after the mkfifo", err, path)
		}
		if fi, serr := os.Lstat(path); serr == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("the other user's FIFO put in place has mode %v after Mkfifo(0666), want 0600", fi.Mode())
		}
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Mkfifo with another user's FIFO put in place = %v, want an error naming %s", err, path)
		}
	})
}

// A symbolic link already at the path: Mkfifo fails with fs.ErrExist and
// changes nothing, neither the link nor its target's mode.
func TestMkfifoOverSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := fixVictim(t, dir)
	path := filepath.Join(dir, "F.1")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	err := Mkfifo(path, 0o666)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Mkfifo over a symbolic link = %v, want fs.ErrExist naming %s", err, path)
	}
	if m := fixMode(t, victim); m.Perm() != 0o600 {
		t.Errorf("the link's target has mode %v, want 0600", m)
	}
	if m := fixMode(t, path); m&os.ModeSymlink == 0 {
		t.Errorf("the link became %v", m)
	}
}
