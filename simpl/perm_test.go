package simpl_test

// Permission tests (issue 4): a channel's FIFOs and message buffers are
// 0600 unless WithPerm says otherwise, and another user can neither send
// to it, take its name, receive its messages, nor read or alter the
// messages in flight (TestPermOwnerOnly); WithPerm(0660) lets the group in
// (TestPermGroup). TestPermDeputy tries two ways round that through a
// public (0666) receiver of the same user, which must fail.
//
// The other users are played by helpers that start as root, like the test,
// and change to the user given them (setgroups, setgid, setuid) before
// doing anything else. The same helper left as root is the control: it
// runs the same probes and must succeed, which shows that each probe would
// notice access if it were granted.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// permRoles are the helper roles of the permission tests.
var permRoles = map[string]simpltest.Role{
	"perm-serve": rolePermServe,
	"perm-probe": rolePermProbe,
}

// The users and groups the tests switch to. Setuid does not need them to
// exist in /etc/passwd; on Debian and most distributions 65534 is nobody
// and nogroup, and 1 is daemon.
const (
	rootCred     = "0:0:"
	nobodyCred   = "65534:65534:"      // nobody, primary group nogroup
	outsiderCred = "65534:65533:"      // nobody, in a group that is not the channel's
	suppCred     = "65534:65533:65534" // nobody, in nogroup only as a supplementary group
	daemonCred   = "1:65534:"          // daemon, primary group nogroup: the group receiver
	daemonUID    = 1
	groupGID     = 65534 // the group the 0660 channels grant

	probeTime   = 30 * time.Second // bound for one probe helper
	permPayload = 70000            // bytes of each request held in flight
)

// becomeUser switches this process, every thread of it, to cred
// ("uid:gid:group,group"), and checks that no thread kept another identity
// or any capability.
func becomeUser(cred string) error {
	f := strings.SplitN(cred, ":", 3)
	if len(f) != 3 {
		return fmt.Errorf("bad credentials %q", cred)
	}
	uid, _ := strconv.Atoi(f[0])
	gid, _ := strconv.Atoi(f[1])
	groups := []int{}
	for _, g := range strings.Split(f[2], ",") {
		if g != "" {
			n, _ := strconv.Atoi(g)
			groups = append(groups, n)
		}
	}
	// Go applies these to every thread of the process on Linux.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			fields := strings.Fields(v)
			switch k {
			case "Uid", "Gid":
				want := strconv.Itoa(uid)
				if k == "Gid" {
					want = strconv.Itoa(gid)
				}
				for _, id := range fields {
					if id != want {
						return fmt.Errorf("thread %s still has %s %v", task.Name(), k, fields)
					}
				}
			case "Groups":
				if !slices.Equal(fields, strings.FieldsFunc(f[2], func(r rune) bool { return r == ',' })) {
					return fmt.Errorf("thread %s has groups %v, want %q", task.Name(), fields, f[2])
				}
			case "CapEff", "CapPrm":
				if uid != 0 && strings.Trim(v, " \t0") != "" {
					return fmt.Errorf("thread %s kept capabilities %s %s", task.Name(), k, v)
				}
			}
		}
	}
	return nil
}

func parseTransport(s string) string {
	switch s {
	case "fifo":
		return simpl.FIFO
	case "shm":
		return simpl.SHM
	}
	return "auto"
}

func permOption(s string) []simpl.Option {
	if s == "default" || s == "" {
		return nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		panic(err)
	}
	return []simpl.Option{simpl.WithPerm(os.FileMode(m))}
}

// rolePermServe CRED PERM TRANSPORT NAME: become CRED, attach NAME with
// PERM ("default" or octal) and serve until SIGTERM, then detach and exit
// 0. 'E' is echoed incremented, printing "echo SENDER"; 'H' is held,
// printing "held SENDER"; 'F' answers every held request 'E'-style, then
// itself with "F".
func rolePermServe(args []string) error {
	if err := becomeUser(args[0]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	opts := append(permOption(args[1]), withTransport(parseTransport(args[2])))
	ch, err := simpl.Attach(args[3], opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	var held []simpl.Message
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		d := msg.Data()
		switch {
		case (msg.Proxy() > 0):
		case len(d) > 0 && d[0] == opEcho:
			msg.Reply(incremented(d[1:]))
			name, _ := msg.Sender()
			fmt.Printf("echo %s\n", name)
		case len(d) > 0 && d[0] == opHold:
			held = append(held, msg)
			name, _ := msg.Sender()
			fmt.Printf("held %s\n", name)
		case len(d) > 0 && d[0] == opFlush:
			for _, m := range held {
				m.Reply(incremented(m.Data()[1:]))
			}
			held = nil
			msg.Reply([]byte("F"))
		default:
			msg.ReplyError()
		}
	}
}

// rolePermProbe CRED PERM KIND VALUE...: become CRED and try each KIND on
// VALUE, printing one line per try:
//
//	R <tab> KIND <tab> VALUE <tab> CLASSES <tab> DETAIL
//
// CLASSES is "ok", or a comma list naming the error: its errno, and every
// simpl sentinel (and os.ErrPermission, as ErrPermission) it matches. Then
// it prints "done".
func rolePermProbe(args []string) error {
	if err := becomeUser(args[0]); err != nil {
		return err
	}
	perm := args[1]
	for i := 2; i+1 < len(args); i += 2 {
		kind, val := args[i], args[i+1]
		detail, err := probeOnce(i, kind, val, perm)
		if err != nil {
			detail = err.Error()
		}
		detail = strings.NewReplacer("\n", " ", "\t", " ").Replace(detail)
		fmt.Printf("R\t%s\t%s\t%s\t%s\n", kind, val, classify(err), detail)
	}
	fmt.Println("done")
	return nil
}

// errSetup marks a probe that could not be set up, so that its failure is
// not taken for a refusal.
var errSetup = errors.New("probe setup failed")

var permSentinels = []struct {
	name string
	err  error
}{
	{"ErrBadName", simpl.ErrBadName},
	{"ErrNameInUse", simpl.ErrNameInUse},
	{"ErrNotFound", simpl.ErrNotFound},
	{"ErrTooLarge", simpl.ErrTooLarge},
	{"ErrReplyTooLarge", simpl.ErrReplyTooLarge},
	{"ErrPeerGone", simpl.ErrPeerGone},
	{"ErrRejected", simpl.ErrRejected},
	{"ErrBadMessage", simpl.ErrBadMessage},
	{"ErrReplied", simpl.ErrReplied},
	{"ErrBadProxy", simpl.ErrBadProxy},
	{"ErrNotSupported", simpl.ErrNotSupported},
	{"ErrClosed", simpl.ErrClosed},
	{"ErrPermission", os.ErrPermission},
	{"DeadlineExceeded", context.DeadlineExceeded},
	{"SETUP", errSetup},
}

func classify(err error) string {
	if err == nil {
		return "ok"
	}
	var out []string
	var errno syscall.Errno
	if errors.As(err, &errno) {
		out = append(out, unix.ErrnoName(errno))
	}
	for _, s := range permSentinels {
		if errors.Is(err, s.err) {
			out = append(out, s.name)
		}
	}
	if len(out) == 0 {
		return "other"
	}
	return strings.Join(out, ",")
}

// splitPair splits "A:N", N being decimal or 0x-prefixed hex.
func splitPair(val string) (string, int) {
	a, b, _ := strings.Cut(val, ":")
	n, _ := strconv.ParseInt(b, 0, 64)
	return a, int(n)
}

// splitInts splits "N:M".
func splitInts(val string) (int, int) {
	a, m := splitPair(val)
	n, _ := strconv.Atoi(a)
	return n, m
}

// probeOnce runs one probe: nil means the access was granted.
func probeOnce(seq int, kind, val, perm string) (string, error) {
	switch kind {
	case "send": // NAME:TRANSPORT[:SECONDS]: attach, Locate NAME and Send; check the reply
		f := strings.Split(val+"::", ":")
		name, tr := f[0], f[1]
		wait := 10 * time.Second
		if n, err := strconv.Atoi(f[2]); err == nil {
			wait = time.Duration(n) * time.Second
		}
		opts := append(permOption(perm), withTransport(parseTransport(tr)))
		ch, err := simpl.Attach(fmt.Sprintf("PROBE%d", seq), opts...)
		if err != nil {
			return "", fmt.Errorf("%w: attach: %w", errSetup, err)
		}
		defer ch.Close()
		c, err := ch.Locate(context.Background(), name)
		if err != nil {
			return "", err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req := append([]byte{opEcho}, pattern(3000)...)
		reply := make([]byte, 4096)
		n, err := c.Send(ctx, req, reply)
		if err != nil {
			return "", err
		}
		if string(reply[:n]) != string(incremented(req[1:])) {
			return "", fmt.Errorf("%w: wrong reply", simpl.ErrBadMessage)
		}
		return "sent through " + c.Transport(), nil
	case "shmdial": // NAME:PID: the shared-memory handshake on its own
		name, pid := splitPair(val)
		c, err := shm.Dial(context.Background(), shm.Address(naming.Dir(), name, pid), pid, "PROBE", shm.Options{})
		if err != nil {
			return "", err
		}
		c.Close()
		return "lane granted", nil
	case "attach": // NAME
		ch, err := simpl.Attach(val)
		if err != nil {
			return "", err
		}
		ch.Close()
		return "attached", nil
	case "open-r", "open-w": // a file of the FIFO directory
		flag := unix.O_RDONLY
		if kind == "open-w" {
			flag = unix.O_WRONLY
		}
		fd, err := unix.Open(val, flag|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", &os.PathError{Op: "open", Path: val, Err: err}
		}
		unix.Close(fd)
		return "opened", nil
	case "procfd", "mapfile": // /proc/PID/fd/N, /proc/PID/map_files/A-B
		fd, err := unix.Open(val, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", &os.PathError{Op: "open", Path: val, Err: err}
		}
		unix.Close(fd)
		return "opened", nil
	case "mem": // PID:ADDR: read another process's memory
		pid, addr := splitInts(val)
		f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
		if err != nil {
			return "", err
		}
		defer f.Close()
		var b [16]byte
		if _, err := f.ReadAt(b[:], int64(addr)); err != nil {
			return "", err
		}
		return fmt.Sprintf("read %x", b), nil
	case "getfd": // PID:FD: pidfd_getfd, to take another process's descriptor
		pid, fd := splitInts(val)
		pfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return "", fmt.Errorf("pidfd_open: %w", err)
		}
		defer unix.Close(pfd)
		got, err := unix.PidfdGetfd(pfd, fd, 0)
		if err != nil {
			return "", fmt.Errorf("pidfd_getfd: %w", err)
		}
		unix.Close(got)
		return "took it", nil
	case "shmat", "shmat-ro": // ID
		id, _ := strconv.Atoi(val)
		flag := 0
		if kind == "shmat-ro" {
			flag = unix.SHM_RDONLY
		}
		mem, err := unix.SysvShmAttach(id, 0, flag)
		if err != nil {
			return "", fmt.Errorf("shmat: %w", err)
		}
		unix.SysvShmDetach(mem)
		return "attached", nil
	case "shmstat": // ID
		id, _ := strconv.Atoi(val)
		var d unix.SysvShmDesc
		if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
			return "", fmt.Errorf("shmctl IPC_STAT: %w", err)
		}
		return fmt.Sprintf("mode %o", d.Perm.Mode), nil
	case "shmset": // ID: make the segment ours and world-readable
		id, _ := strconv.Atoi(val)
		d := unix.SysvShmDesc{Perm: unix.SysvIpcPerm{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), Mode: 0o666}}
		if _, err := unix.SysvShmCtl(id, unix.IPC_SET, &d); err != nil {
			return "", fmt.Errorf("shmctl IPC_SET: %w", err)
		}
		return "changed", nil
	case "shmrm": // ID
		id, _ := strconv.Atoi(val)
		if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
			return "", fmt.Errorf("shmctl IPC_RMID: %w", err)
		}
		return "removed", nil
	case "unlink":
		if err := os.Remove(val); err != nil {
			return "", err
		}
		return "removed", nil
	case "chmod":
		if err := os.Chmod(val, 0o666); err != nil {
			return "", err
		}
		return "changed", nil
	case "rename": // put a file of our own in the FIFO's place
		tmp := filepath.Join(filepath.Dir(val), fmt.Sprintf("probe-%d", os.Getpid()))
		if err := os.WriteFile(tmp, nil, 0o666); err != nil {
			return "", fmt.Errorf("%w: %w", errSetup, err)
		}
		defer os.Remove(tmp)
		if err := os.Rename(tmp, val); err != nil {
			return "", err
		}
		return "replaced", nil
	case "forge": // RECEIVER:MODE:ARG...: ring RECEIVER's FIFO as a deputy
		return forge(strings.Split(val, ":"))
	case "inherited": // descriptors of the root parent that leaked into us
		des, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return "", fmt.Errorf("%w: %w", errSetup, err)
		}
		var bad []string
		for _, de := range des {
			link, _ := os.Readlink("/proc/self/fd/" + de.Name())
			if strings.Contains(link, "gosimpl") || strings.Contains(link, "SYSV") {
				bad = append(bad, de.Name()+" -> "+link)
			}
		}
		if len(bad) > 0 {
			return "", fmt.Errorf("%w: inherited %v", errSetup, bad)
		}
		return "none", nil
	}
	return "", fmt.Errorf("%w: unknown probe %q", errSetup, kind)
}

// forge rings the receive FIFO of receiver f[0], which this user may
// send to, with a doorbell that makes it act for another process:
//
//	RECEIVER:whom:WHOM:PID  a request of our own whose header claims to be
//	                        from WHOM of PID, so the answer rings WHOM's
//	                        reply FIFO
//	RECEIVER:segid:ID       the segment of another sender
func forge(f []string) (string, error) {
	if len(f) < 3 {
		return "", fmt.Errorf("%w: forge %q", errSetup, f)
	}
	reg, err := naming.Open("")
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSetup, err)
	}
	ent, err := reg.Lookup(f[0])
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSetup, err)
	}
	rx, err := unix.Open(ent.Path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rx)
	ring := func(id int) error {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], uint32(id))
		_, err := unix.Write(rx, b[:])
		return err
	}
	switch f[1] {
	case "segid":
		id, _ := strconv.Atoi(f[2])
		if err := ring(id); err != nil {
			return "", err
		}
		return fmt.Sprintf("rang %s with segment %d", f[0], id), nil
	case "whom":
		if len(f) < 4 {
			return "", fmt.Errorf("%w: forge %q", errSetup, f)
		}
		const size = 4096
		id, err := unix.SysvShmGet(unix.IPC_PRIVATE, size, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errSetup, err)
		}
		mem, err := unix.SysvShmAttach(id, 0, 0)
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errSetup, err)
		}
		defer unix.SysvShmDetach(mem)
		pid, _ := strconv.Atoi(f[3])
		put := func(off, v int) { binary.NativeEndian.PutUint32(mem[off:], uint32(v)) }
		// The C SIMPL header (docs/wire.md): whom[32], then int32s.
		copy(mem[:31], f[2])
		put(32, pid)     // pid
		put(36, size-48) // shmsize
		put(40, 2)       // nbytes
		put(44, size-48) // ybytes
		copy(mem[48:], []byte{opEcho, 'x'})
		if err := ring(id); err != nil {
			return "", err
		}
		// A marker of our own over FIFOs, after the doorbell: the receiver
		// reads its doorbells in order and serves them one by one, so once
		// the marker is answered it has done with ours whatever it does.
		if err := fifoMarker(f[0]); err != nil {
			return "", fmt.Errorf("%w: marker: %w", errSetup, err)
		}
		// Had it taken our request, it would have answered into our
		// segment, and rung WHOM.
		if binary.NativeEndian.Uint32(mem[40:]) != 2 {
			return fmt.Sprintf("%s answered %q, ringing Y%s.%d", f[0], mem[48:49], f[2], pid), nil
		}
		return "rang, no answer", nil
	}
	return "", fmt.Errorf("%w: forge %q", errSetup, f)
}

// fifoMarker sends receiver an 'E' request over FIFOs, from a name of its
// own, and waits (10 s at most) for the answer.
func fifoMarker(receiver string) error {
	ch, err := simpl.Attach("", simpl.WithTransport(simpl.FIFO))
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ch.Locate(ctx, receiver)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Send(ctx, []byte{opEcho, 'm'}, make([]byte, 8))
	return err
}

type probeResult struct {
	kind, val, classes, detail string
}

func (r probeResult) is(class string) bool {
	return slices.Contains(strings.Split(r.classes, ","), class)
}

func (r probeResult) String() string {
	return fmt.Sprintf("%s %s: %s (%s)", r.kind, r.val, r.classes, r.detail)
}

// permEnv is the environment of the helpers: the FIFO directory, and no
// race-detector pause at exit (a second by default), since these helpers
// are waited for.
func permEnv(dir string) []string {
	return append(env(dir), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// runProbe runs a probe helper as cred and returns its results in order.
func runProbe(t *testing.T, dir, cred, perm string, probes ...string) []probeResult {
	t.Helper()
	p := simpltest.StartNoWait(t, "perm-probe", permEnv(dir), append([]string{cred, perm}, probes...)...)
	var out []probeResult
	deadline := time.Now().Add(probeTime)
	for {
		line := p.ReadLine(time.Until(deadline))
		if line == "done" {
			break
		}
		f := strings.SplitN(line, "\t", 5)
		if len(f) != 5 || f[0] != "R" {
			t.Fatalf("probe printed %q", line)
		}
		out = append(out, probeResult{f[1], f[2], f[3], f[4]})
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Fatalf("probe as %s: %v", cred, err)
	}
	if len(out) != len(probes)/2 {
		t.Fatalf("probe as %s: %d results for %d probes", cred, len(out), len(probes)/2)
	}
	return out
}

// ciEnv, set to 1 by .ci/run, makes a test that cannot run here fail
// rather than skip: CI runs as root, and the permission tests must run
// there.
const ciEnv = "GOSIMPL_CI"

// cannotRun skips the test, saying why and where it runs; under CI
// (ciEnv) it fails it instead.
func cannotRun(t *testing.T, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(ciEnv) == "1" {
		t.Fatalf("%s; %s=1 (CI, which runs as root) requires this test to run", why, ciEnv)
	}
	t.Skipf("%s; CI (.ci/run) runs it as root", why)
}

// needRoot skips (or, under CI, fails) a test that is not run as root.
func needRoot(t *testing.T) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		cannotRun(t, "needs root (running as uid %d): its helpers become other users (nobody 65534, daemon 1) with setuid and setgid", uid)
	}
}

// shareDir makes the test's FIFO directory what /var/tmp is: anyone may
// create files, nobody may remove or rename another user's. Then a refusal
// comes from the channel's own modes, not from the directory. It skips
// when other users cannot reach the directory at all, or when a helper
// cannot switch users here (no CAP_SETUID, or a user namespace that does
// not map them).
func shareDir(t *testing.T, dir string) {
	t.Helper()
	shareDirModes(t, dir)
	for _, cred := range []string{nobodyCred, daemonCred, suppCred} {
		p := simpltest.StartNoWait(t, "perm-probe", permEnv(dir), cred, "default")
		if err := p.Wait(probeTime); err != nil {
			cannotRun(t, "a helper cannot become %s (uid:gid:groups) here, though running as root (no CAP_SETUID/CAP_SETGID, or a user namespace that does not map that user): %v", cred, err)
		}
	}
}

func shareDirModes(t *testing.T, dir string) {
	t.Helper()
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			cannotRun(t, "%s is not searchable by other users, whom the helpers become: set TMPDIR to a directory they can reach", p)
		}
		if p == filepath.Dir(p) {
			return
		}
	}
}

// checkModes checks the mode, owner and group of every file in dir whose
// name starts with one of prefixes ("" for all).
func checkModes(t *testing.T, dir string, perm os.FileMode, uid, gid int, prefixes ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(de.Name(), p) }) {
			continue
		}
		n++
		fi, err := os.Lstat(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm() != perm || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: %v owned by %d:%d, want a FIFO %v owned by %d:%d", de.Name(), fi.Mode(), st.Uid, st.Gid, perm, uid, gid)
		}
	}
	if n == 0 {
		t.Errorf("no FIFO in %s starts with %q", dir, prefixes)
	}
}

// segmentModes returns the mode of each System V segment created by pid.
func segmentModes(t *testing.T, pid int) map[int]os.FileMode {
	t.Helper()
	b, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]os.FileMode{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 7 {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		mode, _ := strconv.ParseUint(f[2], 8, 32)
		if cpid, _ := strconv.Atoi(f[4]); cpid == pid {
			out[id] = os.FileMode(mode).Perm()
		}
	}
	return out
}

// TestPermModes: FIFOs and message buffers are 0600 by default and
// WithPerm sets them, whatever the umask. (Needs no other user.)
func TestPermModes(t *testing.T) {
	dir := simpltest.Dir(t)
	ctx := simpltest.Context(t, testTimeout)
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	uid, gid := os.Getuid(), os.Getgid()
	for _, umask := range []int{0, 0o077} {
		for _, tc := range []struct {
			name string
			opts []simpl.Option
			want os.FileMode
		}{
			{"default", nil, 0o600},
			{"group", []simpl.Option{simpl.WithPerm(0o660)}, 0o660},
			{"C SIMPL", []simpl.Option{simpl.WithPerm(0o666)}, 0o666},
		} {
			t.Run(fmt.Sprintf("%s/umask%03o", tc.name, umask), func(t *testing.T) {
				syscall.Umask(umask)
				srv := attach(t, dir, "PSRV", tc.opts...)
				go serve(ctx, srv, nil)
				cli := attach(t, dir, "PCLI", append(tc.opts, simpl.WithTransport(simpl.FIFO))...)
				c := locate(t, cli, "PSRV")
				reply := make([]byte, 16)
				if n, err := c.Send(ctx, []byte{opEcho, 1, 2}, reply); err != nil || string(reply[:n]) != "\x02\x03" {
					t.Fatalf("send: %q, %v", reply[:n], err)
				}
				checkModes(t, dir, tc.want, uid, gid, "")
				segs := segmentModes(t, os.Getpid())
				if len(segs) == 0 {
					t.Fatal("the FIFO sender made no segment")
				}
				for id, mode := range segs {
					if mode != tc.want {
						t.Errorf("segment %d: mode %v, want %v", id, mode, tc.want)
					}
				}
				c.Close()
				cli.Close()
				srv.Close()
			})
		}
	}
}

// procTargets lists what of process pid could reach a message: its
// descriptors of gosimpl memfds and of files in dir, and its mappings of
// memfds and System V segments.
func procTargets(t *testing.T, pid int, dir string) (fds, maps []string, lanes, sysv int) {
	t.Helper()
	base := fmt.Sprintf("/proc/%d", pid)
	des, err := os.ReadDir(base + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		link, err := os.Readlink(base + "/fd/" + de.Name())
		if err != nil {
			continue
		}
		if strings.HasPrefix(link, "/memfd:gosimpl") || strings.HasPrefix(link, dir+"/") {
			fds = append(fds, de.Name())
		}
	}
	b, err := os.ReadFile(base + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := strings.Join(f[5:], " ")
		switch {
		case strings.HasPrefix(path, "/memfd:gosimpl-lane"):
			lanes++
		case strings.HasPrefix(path, "/SYSV"):
			sysv++
		case !strings.HasPrefix(path, "/memfd:gosimpl"):
			continue
		}
		maps = append(maps, f[0])
	}
	return fds, maps, lanes, sysv
}

// shmRefusal tracks refusals by the shared-memory handshake (shm.Dial
// straight to a receiver's socket, which is how a user who may not open
// the receiver's FIFO would try shm). A refusal must happen, and wrap
// os.ErrPermission: the receiver reads the hello before it acks the
// refusal, so the sender always gets the ack. A refusal reported as
// ErrPeerGone is counted, and fails report.
type shmRefusal struct {
	unclear []string
}

func (s *shmRefusal) check(t *testing.T, who string, r probeResult) {
	t.Helper()
	switch {
	case r.is("ErrPermission"):
	case r.is("ErrPeerGone"):
		s.unclear = append(s.unclear, r.String())
	default:
		t.Errorf("%s: %v; want a refusal wrapping os.ErrPermission", who, r)
	}
}

// report is a subtest: it fails when a refusal was unclear.
func (s *shmRefusal) report(t *testing.T) {
	t.Run("shm-refusal-error", func(t *testing.T) {
		if len(s.unclear) > 0 {
			t.Errorf("a refused shm handshake surfaced as ErrPeerGone, not os.ErrPermission: %q", s.unclear)
		}
	})
}

// TestPermOwnerOnly: against 0600 channels of root, the nobody user can
// neither send (over shared memory or FIFOs), take the name, receive, nor
// read or alter a message in flight between two root processes; the root
// exchange then completes intact.
func TestPermOwnerOnly(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	ctx := simpltest.Context(t, 2*testTimeout)

	// A root receiver (helper) and root senders (this process) over each
	// transport, all with the default mode.
	srv := simpltest.Start(t, "perm-serve", permEnv(dir), rootCred, "default", "auto", "SRV")
	viaSHM := attach(t, dir, "CLISHM", simpl.WithTransport(simpl.SHM))
	viaFIFO := attach(t, dir, "CLIFIFO", simpl.WithTransport(simpl.FIFO))
	cSHM, cFIFO := locate(t, viaSHM, "SRV"), locate(t, viaFIFO, "SRV")
	if cSHM.Transport() != simpl.SHM || cFIFO.Transport() != simpl.FIFO {
		t.Fatalf("transports %v and %v, want shm and fifo", cSHM.Transport(), cFIFO.Transport())
	}

	// Hold one request of each in the receiver.
	type held struct {
		req, reply []byte
		n          int
		err        error
	}
	results := make(chan held, 2)
	for i, c := range []*simpl.Conn{cSHM, cFIFO} {
		go func() {
			h := held{req: append([]byte{opHold}, pattern(permPayload+i)...), reply: make([]byte, permPayload+16)}
			h.n, h.err = c.Send(ctx, h.req, h.reply)
			results <- h
		}()
	}
	got := map[string]bool{}
	for len(got) < 2 {
		got[srv.Expect("held ", 10*time.Second)] = true
	}

	// Everything is 0600 and owned by root.
	checkModes(t, dir, 0o600, 0, 0, "SRV.", "YSRV.")
	checkModes(t, dir, 0o600, os.Getuid(), os.Getgid(), "CLI", "YCLI")
	segs := segmentModes(t, os.Getpid())
	if len(segs) == 0 {
		t.Fatal("the root FIFO sender has no segment")
	}
	for id, mode := range segs {
		if mode != 0o600 {
			t.Errorf("segment %d of the root sender: mode %v, want 0600", id, mode)
		}
	}

	// What a message in flight could be reached through: the files of the
	// directory, the sender's segments, and both processes' descriptors
	// and mappings.
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, de := range des {
		files = append(files, filepath.Join(dir, de.Name()))
	}
	var reads, alters []string
	add := func(list *[]string, kind string, vals ...string) {
		for _, v := range vals {
			*list = append(*list, kind, v)
		}
	}
	for _, f := range files {
		add(&reads, "open-r", f)
		add(&reads, "open-w", f)
		add(&alters, "unlink", f)
		add(&alters, "chmod", f)
		add(&alters, "rename", f)
	}
	for _, s := range simpltest.Segments(t, os.Getpid(), srv.PID()) {
		id := strconv.Itoa(s.ID)
		add(&reads, "shmat", id)
		add(&reads, "shmat-ro", id)
		add(&reads, "shmstat", id)
		add(&alters, "shmset", id)
		add(&alters, "shmrm", id)
	}
	for _, pid := range []int{os.Getpid(), srv.PID()} {
		fds, maps, lanes, sysv := procTargets(t, pid, dir)
		if lanes == 0 || sysv == 0 || len(fds) == 0 {
			t.Fatalf("pid %d: %d lane mappings, %d System V mappings, %d descriptors: the held messages are not where expected", pid, lanes, sysv, len(fds))
		}
		for _, fd := range fds {
			add(&reads, "procfd", fmt.Sprintf("/proc/%d/fd/%s", pid, fd))
			add(&reads, "getfd", fmt.Sprintf("%d:%s", pid, fd))
		}
		for _, m := range maps {
			start, _, _ := strings.Cut(m, "-")
			add(&reads, "mapfile", fmt.Sprintf("/proc/%d/map_files/%s", pid, m))
			add(&reads, "mem", fmt.Sprintf("%d:0x%s", pid, start))
		}
	}
	sends := []string{
		"send", "SRV:auto", "send", "SRV:shm", "send", "SRV:fifo",
		"shmdial", fmt.Sprintf("SRV:%d", srv.PID()),
		"shmdial", fmt.Sprintf("CLISHM:%d", os.Getpid()),
	}

	// The control: root gets through every way, so each probe works.
	for _, r := range runProbe(t, dir, rootCred, "default", append(slices.Clone(sends), reads...)...) {
		switch {
		case r.classes == "ok":
		case r.kind == "getfd" || r.kind == "mapfile":
			// These need capabilities a container may withhold from root.
			t.Logf("control: %v", r)
		default:
			t.Errorf("control as root: %v", r)
		}
	}

	// The nobody user.
	var probes []string
	probes = append(probes, "inherited", "-")
	probes = append(probes, sends...)
	probes = append(probes, "attach", "SRV")
	probes = append(probes, reads...)
	probes = append(probes, alters...)
	res := runProbe(t, dir, nobodyCred, "default", probes...)
	var refusals shmRefusal
	t.Run("send", func(t *testing.T) {
		for _, r := range res {
			switch r.kind {
			case "send":
				// Locate fails opening the receive FIFO, over either
				// transport, before shm is tried.
				t.Logf("%v", r)
				if !r.is("ErrPermission") {
					t.Errorf("nobody: %v; want a refusal wrapping os.ErrPermission", r)
				}
			case "shmdial":
				t.Logf("%v", r)
				refusals.check(t, "nobody", r)
			}
		}
	})
	t.Run("attach", func(t *testing.T) {
		for _, r := range res {
			if r.kind == "attach" {
				t.Logf("%v", r)
				if !r.is("ErrNameInUse") {
					t.Errorf("nobody: %v; want ErrNameInUse", r)
				}
			}
		}
	})
	t.Run("in-flight", func(t *testing.T) {
		for _, r := range res {
			switch r.kind {
			case "send", "shmdial", "attach":
			case "inherited":
				if r.classes != "ok" {
					t.Errorf("nobody: %v", r)
				}
			default:
				if !r.is("EACCES") && !r.is("EPERM") {
					t.Errorf("nobody: %v; want EACCES or EPERM", r)
				} else if testing.Verbose() {
					t.Logf("%v", r)
				}
			}
		}
	})

	// The root exchange was not disturbed: every file is still there, and
	// both held requests are answered with their data intact.
	for _, f := range files {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("after the probes: %v", err)
		}
	}
	reply := make([]byte, 4)
	if n, err := cSHM.Send(ctx, []byte{opFlush}, reply); err != nil || string(reply[:n]) != "F" {
		t.Fatalf("flush: %q, %v", reply[:n], err)
	}
	for range 2 {
		h := <-results
		if h.err != nil {
			t.Errorf("held Send: %v", h.err)
		} else if string(h.reply[:h.n]) != string(incremented(h.req[1:])) {
			t.Errorf("held Send of %d bytes: reply of %d bytes differs", len(h.req), h.n)
		}
	}
	refusals.report(t)
	cSHM.Close()
	cFIFO.Close()
	viaSHM.Close()
	viaFIFO.Close()
	srv.Signal(syscall.SIGTERM)
	if err := srv.Wait(10 * time.Second); err != nil {
		t.Errorf("receiver: %v", err)
	}
}

// TestPermGroup: WithPerm(0660) admits a member of the channel's group
// over both transports, where 0600 refuses it; a user outside the group is
// refused either way. The receivers are not root here (daemon, in group
// nogroup), so a FIFO sender's own files must grant the group too.
func TestPermGroup(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)

	grp := simpltest.Start(t, "perm-serve", permEnv(dir), daemonCred, "0660", "auto", "GRP")
	priv := simpltest.Start(t, "perm-serve", permEnv(dir), daemonCred, "default", "auto", "PRIV")
	checkModes(t, dir, 0o660, daemonUID, groupGID, "GRP.", "YGRP.")
	checkModes(t, dir, 0o600, daemonUID, groupGID, "PRIV.", "YPRIV.")
	grpDial := fmt.Sprintf("GRP:%d", grp.PID())
	privDial := fmt.Sprintf("PRIV:%d", priv.PID())
	var refusals shmRefusal

	t.Run("member", func(t *testing.T) {
		res := runProbe(t, dir, nobodyCred, "0660",
			"send", "GRP:auto", "send", "GRP:shm", "send", "GRP:fifo", "shmdial", grpDial,
			"send", "PRIV:auto", "send", "PRIV:shm", "send", "PRIV:fifo", "shmdial", privDial)
		for _, r := range res {
			t.Logf("%v", r)
			switch {
			case strings.HasPrefix(r.val, "GRP"):
				if r.classes != "ok" {
					t.Errorf("group member to a 0660 channel: %v", r)
				}
				if r.val == "GRP:auto" && r.detail != "sent through shm" {
					t.Errorf("group member to a 0660 channel: %v; want it through shm", r)
				}
			case r.kind == "shmdial":
				refusals.check(t, "group member to a 0600 channel", r)
			case !r.is("ErrPermission"):
				t.Errorf("group member to a 0600 channel: %v; want a refusal wrapping os.ErrPermission", r)
			}
		}
	})
	t.Run("outsider", func(t *testing.T) {
		res := runProbe(t, dir, outsiderCred, "0660",
			"send", "GRP:auto", "send", "GRP:shm", "send", "GRP:fifo", "shmdial", grpDial)
		for _, r := range res {
			t.Logf("%v", r)
			if r.kind == "shmdial" {
				refusals.check(t, "outside the group, to a 0660 channel", r)
			} else if !r.is("ErrPermission") {
				t.Errorf("outside the group, to a 0660 channel: %v; want a refusal wrapping os.ErrPermission", r)
			}
		}
	})
	// Observed, not required: what a member gets when its own files do
	// not grant the group. Through shm the lane is passed as a descriptor
	// and its mode does not matter; through FIFOs the receiver cannot
	// attach the sender's segment and drops the doorbell, so the Send
	// waits until its context ends.
	t.Run("member-sender-0600", func(t *testing.T) {
		res := runProbe(t, dir, nobodyCred, "default", "send", "GRP:auto", "send", "GRP:fifo:1")
		if res[0].classes != "ok" {
			t.Errorf("group member with a 0600 channel, through shm: %v", res[0])
		}
		t.Logf("group member with a 0600 channel, through FIFOs: %v", res[1])
	})
	// Observed, not required: a member through a supplementary group only.
	// The kernel admits it to the receiver's FIFOs, but the shm handshake
	// sees only the primary group (SO_PEERCRED), and its own segments carry
	// its primary group.
	t.Run("supplementary", func(t *testing.T) {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var rx string
		for _, de := range des {
			if strings.HasPrefix(de.Name(), "GRP.") {
				rx = filepath.Join(dir, de.Name())
			}
		}
		res := runProbe(t, dir, suppCred, "0660", "open-w", rx, "shmdial", grpDial, "send", "GRP:shm", "send", "GRP:auto:1")
		if res[0].classes != "ok" {
			t.Errorf("supplementary member: %v", res[0])
		}
		for _, r := range res[1:] {
			t.Logf("supplementary member: %v", r)
		}
	})
	// The receivers served on through all of that.
	for _, r := range runProbe(t, dir, nobodyCred, "0660", "send", "GRP:auto", "send", "GRP:fifo") {
		if r.classes != "ok" {
			t.Errorf("group member, last: %v", r)
		}
	}
	refusals.report(t)

	grp.Signal(syscall.SIGTERM)
	priv.Signal(syscall.SIGTERM)
	for _, p := range []*simpltest.Proc{grp, priv} {
		if err := p.Wait(10 * time.Second); err != nil {
			t.Errorf("receiver: %v", err)
		}
	}
}

// TestPermDeputy: a receiver that admits other users (a public service,
// attached 0666 as C SIMPL does) must not become their way into a 0600
// exchange between other processes of its own user. On the FIFO
// transport the receiver takes the sender's identity from the segment's
// header and the segment from the doorbell, and cannot know who rang; it
// must not be made to answer, or to receive, another process's message
// (whom: the header must name the segment's creator; segid: a segment the
// ringer could not use is taken only through its claim; see
// internal/transport/fifo/trust.go).
func TestPermDeputy(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"whom", "segid"} {
		t.Run(mode, func(t *testing.T) {
			dir := simpltest.Dir(t)
			shareDir(t, dir)
			ctx := simpltest.Context(t, testTimeout)
			srv := simpltest.Start(t, "perm-serve", permEnv(dir), rootCred, "default", "auto", "SRV")
			pub := simpltest.Start(t, "perm-serve", permEnv(dir), rootCred, "0666", "auto", "PUB")
			victim := attach(t, dir, "VICTIM", simpl.WithTransport(simpl.FIFO))
			ctl := attach(t, dir, "CTL", simpl.WithTransport(simpl.FIFO))
			cVictim, cCtl, cPub := locate(t, victim, "SRV"), locate(t, ctl, "SRV"), locate(t, ctl, "PUB")

			// A root sender's message, held by the root receiver.
			req := append([]byte{opHold}, pattern(permPayload)...)
			reply := make([]byte, permPayload+16)
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := cVictim.Send(ctx, req, reply)
				done <- result{n, err}
			}()
			srv.Expect("held VICTIM", 10*time.Second)

			target := fmt.Sprintf("PUB:whom:VICTIM:%d", os.Getpid())
			if mode == "segid" {
				segs := simpltest.Segments(t, os.Getpid())
				if len(segs) != 1 {
					t.Fatalf("the victim has %d segments, want 1", len(segs))
				}
				target = fmt.Sprintf("PUB:segid:%d", segs[0].ID)
			}
			r := runProbe(t, dir, nobodyCred, "default", "forge", target)[0]
			t.Logf("nobody: %v", r)

			// PUB must not have received the message sent to SRV: see what
			// it received before a marker sent after the probe (FIFO
			// doorbells are served in order).
			var hole []string
			buf := make([]byte, 16)
			if n, err := cPub.Send(ctx, []byte{opEcho, 'm'}, buf); err != nil || n != 1 {
				t.Fatalf("marker to PUB: %d, %v", n, err)
			}
			for {
				line := pub.ReadLine(5 * time.Second)
				if line == "echo CTL" {
					break
				}
				if strings.HasPrefix(line, "held ") {
					hole = append(hole, "PUB received the message sent to SRV: "+line)
				}
			}
			// The held Send must still be waiting for SRV. PUB is done with
			// the probe's doorbell by now; had it rung VICTIM's reply FIFO,
			// the Send may not have woken yet, but then it returns before
			// SRV answers, with something else than SRV's answer, which is
			// checked below.
			var res result
			early := false
			select {
			case res = <-done:
				early = true
				hole = append(hole, fmt.Sprintf("the Send held by SRV returned early: %d bytes (its own request: %v), %v",
					res.n, res.err == nil && string(reply[:res.n]) == string(req), res.err))
			default:
			}

			// SRV answers: the held Send must get that answer, intact.
			if n, err := cCtl.Send(ctx, []byte{opFlush}, buf); err != nil || n != 1 {
				t.Fatalf("flush: %d, %v", n, err)
			}
			if !early {
				select {
				case res = <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the held Send did not end after SRV answered")
				}
				if res.err != nil || string(reply[:res.n]) != string(incremented(req[1:])) {
					msg := fmt.Sprintf("the held Send got %d bytes, %v, not SRV's answer", res.n, res.err)
					if len(hole) == 0 {
						t.Error(msg)
					}
					hole = append(hole, msg)
				}
			}
			if len(hole) > 0 {
				// The next Send's fate too: a late answer may be waiting.
				next := append([]byte{opEcho}, "next"...)
				n, err := cVictim.Send(ctx, next, buf)
				hole = append(hole, fmt.Sprintf("the next Send got %q, %v (want %q)", buf[:n], err, incremented(next[1:])))
			}
			cVictim.Close()
			victim.Close()
			cCtl.Close()
			cPub.Close()
			ctl.Close()
			for _, p := range []*simpltest.Proc{srv, pub} {
				p.Signal(syscall.SIGTERM)
				if err := p.Wait(10 * time.Second); err != nil {
					t.Errorf("receiver: %v", err)
				}
			}
			if len(hole) > 0 {
				t.Errorf("nobody, allowed to send to a 0666 root receiver (PUB), altered a 0600 exchange between two other root processes (VICTIM -> SRV) with %s: %s", target, strings.Join(hole, "; "))
			}
		})
	}
}
