package main

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
)

// The QNX Neutrino programs (testdata/qnx_*.c), built against the
// library's <sys/neutrino.h> and <sys/dispatch.h> with the commands
// docs/porting-qnx.md gives; qnx_client also against the static archive
// (qnx_client-a).
var qnxPrograms = []string{"qnx_server", "qnx_client", "qnx_name", "qnx_timeouts", "qnx_pulses", "qnx_fixes"}

var (
	qnxOnce sync.Once
	qnxErr  error
)

func buildQNX() error {
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "cc", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("cc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, p := range qnxPrograms {
		if err := run("-Wall", "-Werror", "-I", "include", filepath.Join("testdata", p+".c"), "-L", binDir, "-lsimpl", "-lpthread", "-o", filepath.Join(binDir, p)); err != nil {
			return err
		}
	}
	return run("-Wall", "-Werror", "-I", "include", filepath.Join("testdata", "qnx_client.c"), filepath.Join(binDir, "libsimpl.a"), "-lpthread", "-ldl", "-o", filepath.Join(binDir, "qnx_client-a"))
}

func builtQNX(t *testing.T) {
	t.Helper()
	built(t)
	qnxOnce.Do(func() { qnxErr = buildQNX() })
	if qnxErr != nil {
		t.Fatal(qnxErr)
	}
}

const qwait = 10 * time.Second

// qnxServer starts qnx_server with args and returns it with its pid and
// chid, as it prints them.
func qnxServer(t *testing.T, dir string, args ...string) (*prog, string, string) {
	t.Helper()
	return qnxServerEnv(t, dir, nil, args...)
}

// qnxServerEnv is qnxServer with env added to the server's environment.
func qnxServerEnv(t *testing.T, dir string, env []string, args ...string) (*prog, string, string) {
	t.Helper()
	s := start(t, dir, env, "qnx_server", args...)
	f := strings.Fields(s.ReadLine(qwait))
	if len(f) != 3 || f[0] != "ready" || f[1] != strconv.Itoa(s.PID()) {
		t.Fatalf("qnx_server: ready line %q; stderr: %s", f, s.Stderr())
	}
	return s, f[1], f[2]
}

// quit makes a client send "quit" and the server exit with status 0
// (its exit handler removes the channel's FIFOs, which proctest.Dir
// checks).
func quit(t *testing.T, dir string, s *prog, pid, chid string) {
	t.Helper()
	c := start(t, dir, nil, "qnx_client", pid, chid, "quit")
	c.expectLine(t, "quit 0", qwait)
	c.exits(t, 0)
	s.Expect("quit", qwait)
	s.exits(t, 0)
}

// bigHash is the hash qnx_client and qnx_server print for a big:n
// message: FNV-1a of qpat(i+1), i < n.
func bigHash(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(((i+1)*13 + 7) & 0xFF)
	}
	h := fnv.New32a()
	h.Write(b)
	return fmt.Sprintf("%08x", h.Sum32())
}

// TestQNXGettingStarted is docs/porting-qnx.md's worked example: Getting
// Started's first server and client, built from C against the shared
// library and (the client) against the static archive. The server gets
// the client's 28 bytes; the client gets the first 200 bytes of the
// 512-byte reply and status EOK.
func TestQNXGettingStarted(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir)
	c := start(t, dir, nil, "qnx_client", pid, chid, "hello")
	c.expectLine(t, "status 0 reply This is the reply", qwait)
	c.exits(t, 0)
	s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
	a := start(t, dir, nil, "qnx_client-a", pid, chid, "hello", "quit")
	a.expectLine(t, "status 0 reply This is the reply", qwait)
	a.expectLine(t, "quit 0", qwait)
	a.exits(t, 0)
	s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
	s.expectLine(t, "quit", qwait)
	s.exits(t, 0)
}

// TestQNXLayout: QNX's structures as a C program compiles them against
// the headers: struct _pulse (24 bytes on 64-bit targets, 16 on 32-bit),
// struct _msg_info (48), struct _io_connect's path at offset 40.
func TestQNXLayout(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	c := start(t, dir, nil, "qnx_client", "layout")
	want := "layout pulse 24 4 8 16 info 48 28 40 connect 40"
	if strconv.IntSize == 32 {
		want = "layout pulse 16 4 8 12 info 48 28 40 connect 40"
	}
	c.expectLine(t, want, qwait)
	c.exits(t, 0)
}

// TestQNXMessages: statuses, MsgError, pulses interleaved with messages
// (each arrives in the order its client sent it), and a 1 MiB message
// read by the server with MsgRead in pieces and answered with MsgWrite
// in pieces: both sides see the same bytes; and iov_t gathering and
// scattering (MsgSendv, MsgReadv, MsgWritev, MsgReplyv).
func TestQNXMessages(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir)
	const big = 1 << 20
	c := start(t, dir, nil, "qnx_client", pid, chid, "status:5", "err:22", "pulse:1:10", "hello", "pulse:2:-20",
		"pulse:127:2147483647", "status:0", "big:"+strconv.Itoa(big), "pulse:3:30", "iov")
	for _, want := range []string{"status 5", "err -1 EINVAL", "pulsed", "status 0 reply This is the reply", "pulsed",
		"pulsed", "status 0", "big " + strconv.Itoa(big) + " " + bigHash(big) + " reply ok", "pulsed",
		// 0123456, the client's own bytes up to offset 10 (MsgWrite
		// left a gap), XYZ; the rest untouched.
		"iov 77 0123456???XYZ???????????"} {
		c.expectLine(t, want, qwait)
	}
	c.exits(t, 0)
	for _, want := range []string{"pulse 1 10", "msg 28 Does this work? Let us see.", "pulse 2 -20", "pulse 127 2147483647",
		fmt.Sprintf("big 512 %d %d %s", big+16, big, bigHash(big)), "pulse 3 30", "iov read 8 ab cdefgh",
		"iov wrote 3 replied 0"} {
		s.expectLine(t, want, qwait)
	}
	quit(t, dir, s, pid, chid)
}

// TestQNXUnblock: a client's kernel timeout (TimerTimeout SEND|REPLY,
// SIGEV_UNBLOCK) on a message its server holds. With _NTO_CHF_UNBLOCK
// the server gets an UNBLOCK pulse whose value is the rcvid, MsgInfo
// shows _NTO_MI_UNBLOCK_REQ, and its MsgError(ETIMEDOUT) is what the
// client gets; without it the client leaves at once with ETIMEDOUT and
// the server hears nothing (also with an absolute CLOCK_REALTIME time
// through timer_timeout).
func TestQNXUnblock(t *testing.T) {
	builtQNX(t)
	t.Run("unblock channel", func(t *testing.T) {
		dir := proctest.Dir(t)
		s, pid, chid := qnxServer(t, dir, "-u")
		c := start(t, dir, nil, "qnx_client", pid, chid, "slow:300", "status:4")
		c.expectLine(t, "slow -1 ETIMEDOUT", qwait)
		c.expectLine(t, "status 4", qwait)
		c.exits(t, 0)
		s.expectLine(t, "held", qwait)
		s.expectLine(t, "unblock flags 0x100", qwait)
		s.expectLine(t, "unblocked 0", qwait)
		quit(t, dir, s, pid, chid)
	})
	t.Run("plain channel", func(t *testing.T) {
		dir := proctest.Dir(t)
		s, pid, chid := qnxServer(t, dir)
		c := start(t, dir, nil, "qnx_client", pid, chid, "slow:300", "slowabs:300", "status:4")
		c.expectLine(t, "slow -1 ETIMEDOUT", qwait)
		c.expectLine(t, "slowabs -1 ETIMEDOUT", qwait)
		c.expectLine(t, "status 4", qwait)
		c.exits(t, 0)
		s.expectLine(t, "held", qwait)
		s.expectLine(t, "held", qwait)
		// No unblock pulse came before quit's line.
		quit(t, dir, s, pid, chid)
	})
}

// TestQNXDisconnect: on a _NTO_CHF_DISCONNECT channel the server gets a
// DISCONNECT pulse when a client detaches, and when a client dies by
// SIGKILL while REPLY-blocked; ConnectDetach(scoid) releases it.
func TestQNXDisconnect(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir, "-d")
	c := start(t, dir, nil, "qnx_client", pid, chid, "status:1")
	c.expectLine(t, "status 1", qwait)
	c.exits(t, 0)
	s.expectLine(t, "disconnect 0", qwait)

	k := start(t, dir, nil, "qnx_client", pid, chid, "hang")
	k.expectLine(t, "hanging", qwait)
	s.expectLine(t, "held", qwait)
	k.Kill()
	k.Wait(qwait)
	s.expectLine(t, "disconnect 0", qwait)
	// The killed client's own FIFOs stay for the next attach to reclaim.
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Reap(""); err != nil {
		t.Error(err)
	}
	quit(t, dir, s, pid, chid)
}

// TestQNXServerGone: a client REPLY-blocked on a server that exits
// (its channels destroyed by the exit handler) or is SIGKILLed is
// released with ESRCH, and its next MsgSend on the connection fails with
// EBADF or ESRCH, never hangs.
func TestQNXServerGone(t *testing.T) {
	builtQNX(t)
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			dir := proctest.Dir(t)
			s, pid, chid := qnxServer(t, dir)
			c := start(t, dir, nil, "qnx_client", pid, chid, "hang", "status:1")
			c.expectLine(t, "hanging", qwait)
			s.expectLine(t, "held", qwait)
			if kill {
				s.Kill()
				s.Wait(qwait)
			} else {
				quit(t, dir, s, pid, chid)
			}
			c.expectLine(t, "hang ended -1 ESRCH", qwait)
			if got := c.ReadLine(qwait); got != "status -1" {
				t.Errorf("MsgSend after the server went: %q", got)
			}
			c.exits(t, 0)
			if kill {
				reg, err := naming.Open(dir)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := reg.Reap(""); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestQNXThreads: three server threads receive on one channel at once
// (each holds a message until all three hold one), and in one client
// process errno and TimerTimeout are per thread: one thread's armed
// timeout ends its own MsgSend only, while another thread's failing
// call sets only its own errno.
func TestQNXThreads(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir, "-t", "3")
	var cs []*prog
	for range 3 {
		cs = append(cs, start(t, dir, nil, "qnx_client", pid, chid, "hold"))
	}
	seen := map[string]bool{}
	for _, c := range cs {
		line := c.ReadLine(qwait)
		seen[line] = true
		c.exits(t, 0)
	}
	for _, want := range []string{"hold 0", "hold 1", "hold 2"} {
		if !seen[want] {
			t.Errorf("no %q from the clients: %v", want, seen)
		}
	}
	c := start(t, dir, nil, "qnx_client", pid, chid, "threads")
	c.expectLine(t, "threads -1 ETIMEDOUT 7 EOK -1 EBADF", qwait)
	c.exits(t, 0)
	s.expectLine(t, "held", qwait)
	quit(t, dir, s, pid, chid)
}

// TestQNXDeliverEvent: Getting Started's MsgDeliverEvent pattern. The
// client sends a SIGEV_PULSE sigevent naming a connection to its own
// channel; the server replies at once and then delivers it; the client's
// MsgReceive returns 0 with its code and value.
func TestQNXDeliverEvent(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir)
	c := start(t, dir, nil, "qnx_client", pid, chid, "event")
	c.expectLine(t, "event 17 4711", qwait)
	c.exits(t, 0)
	s.expectLine(t, "delivered 0", qwait)
	quit(t, dir, s, pid, chid)
}

// TestQNXBadInput: bad arguments from C on both sides (NULL buffers,
// negative sizes and counts, unknown chid, coid, rcvid and names, flags
// and events not supported) fail with QNX's errno, never a crash; the
// _r forms return -errno and leave errno alone; a faulty reply buffer
// releases the client with ESRVRFAULT.
func TestQNXBadInput(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir)
	c := start(t, dir, nil, "qnx_client", pid, chid, "bad", "hello")
	out := string(c.output(t, 30*time.Second))
	c.exits(t, 0)
	if strings.Contains(out, "FAIL") || !strings.Contains(out, "\nbad 0\n") || !strings.HasSuffix(out, "status 0 reply This is the reply\n") {
		t.Fatalf("client:\n%s", out)
	}
	if n := strings.Count(out, "ok "); n != 26 {
		t.Errorf("client: %d checks passed, want 26:\n%s", n, out)
	}
	var srv []string
	for {
		line := s.ReadLine(qwait)
		if strings.HasPrefix(line, "bad ") {
			if line != "bad 0" {
				t.Errorf("server: %s after:\n%s", line, strings.Join(srv, "\n"))
			}
			break
		}
		srv = append(srv, line)
	}
	for _, l := range srv {
		if !strings.HasPrefix(l, "ok ") {
			t.Errorf("server: %s", l)
		}
	}
	if len(srv) != 23 {
		t.Errorf("server: %d checks passed, want 23:\n%s", len(srv), strings.Join(srv, "\n"))
	}
	s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
	quit(t, dir, s, pid, chid)
}

// TestQNXFork: in a child forked without exec (which has none of the Go
// runtime's threads) every call fails at once with ENOSYS, and exit()
// does not hang in the library's exit handler; the parent goes on.
func TestQNXFork(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s, pid, chid := qnxServer(t, dir)
	c := start(t, dir, nil, "qnx_client", pid, chid, "fork", "status:9")
	for _, want := range []string{"ok child MsgSend", "ok child MsgSendPulse", "ok child ChannelCreate", "ok child name_open",
		"ok child MsgSend_r", "fork child 0", "status 9"} {
		c.expectLine(t, want, qwait)
	}
	c.exits(t, 0)
	quit(t, dir, s, pid, chid)
}

// TestQNXNameAttach: the library reference's name_attach example. The
// server attaches a name, accepts name_open's _IO_CONNECT, refuses other
// resource-manager messages with ENOSYS, prints its own messages, and
// releases the client at its DISCONNECT pulse; name_detach removes the
// name (proctest.Dir checks no FIFO is left).
func TestQNXNameAttach(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s := start(t, dir, nil, "qnx_name", "-s", "myname", "1")
	s.expectLine(t, "attached myname", qwait)
	c := start(t, dir, nil, "qnx_name", "-c", "myname", "3")
	for _, want := range []string{"sent 10", "sent 11", "sent 12", "io -1 ENOSYS"} {
		c.expectLine(t, want, qwait)
	}
	c.exits(t, 0)
	for _, want := range []string{"connect open 7", "data 10", "data 11", "data 12", "disconnect", "detached"} {
		s.expectLine(t, want, qwait)
	}
	s.exits(t, 0)
	// The name is gone: name_open fails with ENOENT.
	n := start(t, dir, nil, "qnx_name", "-c", "myname", "1")
	n.expectLine(t, "name_open ENOENT", qwait)
	n.exits(t, 1)
}

// TestQNXServerTimeouts: Getting Started's time1.c. A POSIX timer
// (timer_create with a SIGEV_PULSE event) pulses the server every
// second; a waiting client is answered MT_OK when data comes, and one
// left waiting is answered MT_TIMEDOUT after five pulses.
func TestQNXServerTimeouts(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s := start(t, dir, nil, "qnx_timeouts", "-s")
	f := strings.Fields(s.ReadLine(qwait))
	if len(f) != 3 || f[0] != "ready" {
		t.Fatalf("qnx_timeouts: %q", f)
	}
	a := start(t, dir, nil, "qnx_timeouts", f[1], f[2], "wait")
	s.expectLine(t, "waiting", qwait)
	d := start(t, dir, nil, "qnx_timeouts", f[1], f[2], "data")
	d.expectLine(t, "data 0 MT_OK after <4s", qwait)
	a.expectLine(t, "wait 0 MT_OK after <4s", qwait)
	s.expectLine(t, "data: served 1", qwait)
	b := start(t, dir, nil, "qnx_timeouts", f[1], f[2], "wait")
	s.expectLine(t, "waiting", qwait)
	b.expectLine(t, "wait 0 MT_TIMEDOUT after 4s+", qwait)
	s.expectLine(t, "timed out after 5 ticks", qwait)
	s.expectLine(t, "done ticks ok", qwait)
	for _, p := range []*prog{a, d, b, s} {
		p.exits(t, 0)
	}
}

// TestQNXReceivePulse: a C server whose main thread is a pulse-only
// event loop (MsgReceivePulse) while a second thread serves messages
// (MsgReceive) on the same channel, driven by client processes. First,
// alone on its channel, it checks MsgReceivePulse's errors (unknown
// chid, NULL and negative buffers and parts), RECEIVE timeouts, the
// pulse lost to a short buffer, and MsgReceivePulsev. Then: pulses sent
// while the serving thread holds a message go to the event loop; a
// message sent meanwhile waits, data intact, for the serving thread; the
// event loop never gets a message; every pulse, and the DISCONNECT at
// the client's exit, arrives once and in order (a pulse that comes while
// the event loop is between two calls may go to the serving thread, as
// on QNX, which the program marks).
func TestQNXReceivePulse(t *testing.T) {
	builtQNX(t)
	dir := proctest.Dir(t)
	s := start(t, dir, nil, "qnx_pulses")
	var pid, chid string
	checks := 0
	for pid == "" {
		line := s.ReadLine(qwait)
		switch f := strings.Fields(line); {
		case strings.HasPrefix(line, "ok "):
			checks++
		case line == "checks 0":
		case len(f) == 3 && f[0] == "ready" && f[1] == strconv.Itoa(s.PID()):
			pid, chid = f[1], f[2]
		default:
			t.Fatalf("qnx_pulses: %q; stderr: %s", line, s.Stderr())
		}
	}
	if checks != 22 {
		t.Fatalf("qnx_pulses: %d checks passed, want 22", checks)
	}
	x := start(t, dir, nil, "qnx_client", pid, chid, "hold", "wait")
	s.expectLine(t, "holding", qwait)
	sentOrder := map[string]int{"pulse 3 30": 1, "pulse 4 40": 2, "disconnect 0": 3}
	y := start(t, dir, nil, "qnx_client", pid, chid, "pulse:1:10", "pulse:2:-20", "hello", "pulse:3:30", "status:4", "pulse:4:40")
	for _, want := range []string{"pulsed", "pulsed", "status 0 reply This is the reply", "pulsed", "status 4", "pulsed"} {
		y.expectLine(t, want, qwait)
	}
	y.exits(t, 0)
	x.expectLine(t, "hold 0", qwait)
	s.expectLine(t, "pulse 1 10", qwait)
	s.expectLine(t, "pulse 2 -20", qwait)
	s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
	either := func(want string) {
		t.Helper()
		if got := s.ReadLine(qwait); got != want && got != want+" (MsgReceive)" {
			t.Fatalf("qnx_pulses: %q, want %q; stderr: %s", got, want, s.Stderr())
		}
	}
	// Pulse 3, pulse 4 and the DISCONNECT at y's exit: either thread
	// may get each, so the lines of different threads come in either
	// order; each thread's come in the order they were sent.
	byThread := map[bool][]string{}
	for range 3 {
		line := s.ReadLine(qwait)
		text, other := strings.CutSuffix(line, " (MsgReceive)")
		byThread[other] = append(byThread[other], text)
	}
	all := append(append([]string{}, byThread[false]...), byThread[true]...)
	slices.Sort(all)
	if want := []string{"disconnect 0", "pulse 3 30", "pulse 4 40"}; !slices.Equal(all, want) {
		t.Fatalf("qnx_pulses: %q, want %q", all, want)
	}
	for _, lines := range byThread {
		if !slices.IsSortedFunc(lines, func(a, b string) int {
			return cmp.Compare(sentOrder[a], sentOrder[b])
		}) {
			t.Fatalf("qnx_pulses: %q out of order", lines)
		}
	}
	x.stdin.Close()
	x.exits(t, 0)
	either("disconnect 0")
	// Messages only, while the event loop waits: each is served.
	z := start(t, dir, nil, "qnx_client", pid, chid, "status:1", "hello", "status:2")
	for _, want := range []string{"status 1", "status 0 reply This is the reply", "status 2"} {
		z.expectLine(t, want, qwait)
	}
	z.exits(t, 0)
	s.expectLine(t, "msg 28 Does this work? Let us see.", qwait)
	either("disconnect 0")
	quit(t, dir, s, pid, chid)
}
