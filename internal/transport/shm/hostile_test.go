//go:build !race

package shm

// Hostile and broken peers: crafted lane headers, raw clients that botch
// the handshake, receivers that answer out of bounds, and white-box checks
// of the receiver's lane scan and answer bookkeeping.

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// postRaw posts req on one of c's lanes with the header words nbytes and
// maxReply as given, as a broken or hostile sender would, and returns the
// receiver's answer code. It mirrors Send with the header forged.
func postRaw(t *testing.T, c *Conn, req []byte, nbytes, maxReply uint32) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.get(context.Background(), len(req))
	if err != nil {
		t.Fatal(err)
	}
	copy(l.w.data, req)
	l.w.nbytes.Store(nbytes)
	l.w.maxReply.Store(maxReply)
	l.w.code.Store(0)
	l.w.state.Store(lanePosted)
	c.bell.ring(l.index)
	if st, _ := l.wait(ctx, true, false); st != laneAnswered {
		c.discard(l)
		t.Fatalf("forged header nbytes=%d maxReply=%d: no answer within 10s (state %d)", nbytes, maxReply, st)
	}
	code := l.w.code.Load()
	l.w.state.Store(laneIdle)
	c.put(l)
	return code
}

// 6a. A lane header whose sizes exceed the lane: the Send fails with
// ErrBadMessage, the request is never delivered, the receiver serves on.
func TestBadLaneHeader(t *testing.T) {
	p := startRecv(t, "badheader", 1000, holdForever)
	c := dial(t, p, Options{})
	c.mu.Lock()
	room := uint32(len(c.free[0].w.data)) // the first lane: the smallest
	c.mu.Unlock()
	req := append([]byte{opEcho}, "forged"...)
	for _, h := range []struct{ nbytes, maxReply uint32 }{
		{room + 1, 16},
		{1 << 31, 16},
		{^uint32(0), 16},
		{7, room + 1},
		{7, ^uint32(0)},
		{^uint32(0), ^uint32(0)},
	} {
		code := postRaw(t, c, req, h.nbytes, h.maxReply)
		if err := codeErr(code, 0, 0, 0); code == codeOK || !errors.Is(err, transport.ErrBadMessage) {
			t.Fatalf("header nbytes=%d maxReply=%d in a lane of %d: code %d (%v), want ErrBadMessage",
				h.nbytes, h.maxReply, room, code, err)
		}
		echo(t, c, "after a forged header")
	}
	// Within the lane but over the receiver's MaxMessage: ErrTooLarge.
	if code := postRaw(t, c, req, 1001, 16); !errors.Is(codeErr(code, 0, 0, 0), transport.ErrTooLarge) {
		t.Fatalf("nbytes over MaxMessage: code %d, want ErrTooLarge", code)
	}
	// A header at the lane's very limits is fine.
	if code := postRaw(t, c, req, 1000, room); code != codeOK {
		t.Fatalf("nbytes=1000 maxReply=%d: code %d, want OK", room, code)
	}
	if m := counts(t, c); m["recv"] != 6+1+1 {
		t.Fatalf("the receiver got %d requests, want 8 (6 echoes, 1 at the limits, this count)", m["recv"])
	}
}

// The same in one process, where Receive itself can be watched: it never
// returns a request whose header is corrupt.
func TestBadLaneHeaderNotDelivered(t *testing.T) {
	e, addr := listen(t, "badlocal", Options{})
	c, err := Dial(context.Background(), addr, os.Getpid(), "forger", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t, 20*time.Second)
	got := make(chan transport.Request, 1)
	go func() {
		req, _, _ := e.Receive(ctx)
		got <- req
	}()
	if code := postRaw(t, c, []byte("x"), 1<<20, 0); code != codeBadHeader {
		t.Fatalf("code %d, want codeBadHeader", code)
	}
	// The Receive that refused the corrupt header goes on to the next
	// request, a good one: it returns that, never the corrupt one.
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("good"), make([]byte, 16))
		sent <- err
	}()
	req := <-got
	if !req.Valid() || string(req.Data()) != "good" {
		t.Fatalf("Receive after a corrupt header: %q (valid %v), want the good request that followed", req.Data(), req.Valid())
	}
	if err := req.Reply([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("the good Send: %v", err)
	}
}

// rawResult is what a raw client learned from the endpoint.
type rawResult struct {
	status int32
	ack    bool  // an answer arrived
	err    error // the socket failed or closed instead
	nfds   int
}

// rawHello connects to addr, sends msg with fds attached (nothing when
// both are empty) and reads the answer.
func rawHello(t *testing.T, addr string, msg []byte, fds ...int) rawResult {
	t.Helper()
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("raw connect: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(msg, oob, nil); err != nil {
		return rawResult{err: err}
	}
	buf, oobBuf := make([]byte, 64), make([]byte, 64)
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oobBuf)
	if err != nil {
		return rawResult{err: err}
	}
	if n == 0 {
		return rawResult{err: fmt.Errorf("closed")}
	}
	got, _ := sys.ParseRights(oobBuf[:oobn])
	for _, fd := range got {
		unix.Close(fd)
	}
	status, _, err := decodeAck(buf[:n])
	if err != nil {
		t.Fatalf("endpoint answered garbage: %v", err)
	}
	return rawResult{status: status, ack: true, nfds: len(got)}
}

func memfd(t *testing.T, size int, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("test-lane", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func openFDs(t *testing.T) int {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// 6b. Raw clients that botch the handshake are refused, leave nothing
// behind, and hold up nobody.
func TestHostileHandshake(t *testing.T) {
	e, addr := listen(t, "hostile", Options{})
	stop := serveLocal(t, e, 0)
	ctx := testCtx(t, 30*time.Second)
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL

	// Clients that connect and say nothing: each handshake waits for them
	// on its own, so they hold up nobody until they are dropped.
	var hangers []*net.UnixConn
	for range 32 {
		conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		hangers = append(hangers, conn)
	}
	hangStart := time.Now()

	// A normal sender meanwhile: Dial (a handshake of its own) and Send.
	within(t, 5*time.Second, "a normal Dial and Send while clients hang", func() {
		c, err := Dial(context.Background(), addr, os.Getpid(), "normal", Options{})
		if err != nil {
			t.Errorf("Dial while clients hang: %v", err)
			return
		}
		defer c.Close()
		reply := make([]byte, 16)
		if n, err := c.Send(ctx, []byte("hello"), reply); err != nil || string(reply[:n]) != string(complement([]byte("hello"))) {
			t.Errorf("Send while clients hang: %q, %v", reply[:n], err)
		}
	})
	if t.Failed() {
		return
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	waitFor(t, 5*time.Second, "the normal sender's lanes to be released", func() bool { return laneCount(e) == 0 })
	fdsBefore := openFDs(t)
	lane := func(size, seals int) []int { return []int{memfd(t, size, seals)} }
	hello := encodeHello("raw", laneMessages)
	notTerminated := append([]byte(magic), strings.Repeat("n", 32)...)
	trailing := encodeHello("a", laneMessages)
	trailing[20] = 'x'
	badMagic := encodeHello("raw", laneMessages)
	copy(badMagic, "XXXX")

	cases := []struct {
		name string
		msg  []byte
		fds  func() []int
		want int32
	}{
		{"garbage", []byte("hello, is this the receiver?"), nil, ackBadHello},
		{"empty message with a lane", []byte{}, func() []int { return lane(4096, sealed) }, ackBadHello},
		{"bad magic with a lane", badMagic, func() []int { return lane(4096, sealed) }, ackBadHello},
		{"name not terminated", notTerminated, func() []int { return lane(4096, sealed) }, ackBadHello},
		{"bytes after the name", trailing, func() []int { return lane(4096, sealed) }, ackBadHello},
		{"hello too long", append(append([]byte{}, hello...), 0), func() []int { return lane(4096, sealed) }, ackBadHello},
		// The names no transport accepts (issue 16): what Sender returns
		// is a name C SIMPL could attach, or NAME#k.
		{"a forged log line for a name", encodeHello("x\nmessage from root pid 1: OK", laneMessages), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"an escape sequence for a name", encodeHello("\x1b[2Jroot", laneMessages), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"an empty name", encodeHello("", laneMessages), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"a path for a name", encodeHello("../../etc/passwd", laneMessages), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"a bad NAME#k", encodeHello("CLI#0", laneMessages), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"an unknown lane kind", encodeHello("raw", 2), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"a GSL2 hello (proxies on the socket)", append([]byte("GSL2raw"), make([]byte, 29)...), func() []int { return lane(4096, sealed) }, ackBadHello},
		{"a proxy lane too small for its ring", encodeHello("raw", laneProxies), func() []int { return lane(proxyLaneSize-4096, sealed) }, ackBadLane},
		{"hello without a descriptor", hello, nil, ackBadHello},
		{"two lanes", hello, func() []int { return []int{memfd(t, 4096, sealed), memfd(t, 4096, sealed)} }, ackBadHello},
		{"unsealed memfd", hello, func() []int { return lane(4096, 0) }, ackBadLane},
		{"memfd sealed against shrinking only", hello, func() []int { return lane(4096, unix.F_SEAL_SHRINK) }, ackBadLane},
		{"tiny memfd", hello, func() []int { return lane(100, sealed) }, ackBadLane},
		{"empty memfd", hello, func() []int { return lane(0, sealed) }, ackBadLane},
		{"one page short", hello, func() []int { return lane(minLaneSize-1, sealed) }, ackBadLane},
		{"huge memfd", hello, func() []int { return lane(MaxLaneBytes+1, sealed) }, ackBadLane},
		{"write-sealed memfd", hello, func() []int { return lane(4096, sealed|unix.F_SEAL_WRITE) }, ackBadLane},
		{"a pipe", hello, func() []int { return []int{int(pw.Fd())} }, ackBadLane},
	}
	for _, tc := range cases {
		if testing.Verbose() {
			t.Logf("case %s", tc.name)
		}
		var fds []int
		if tc.fds != nil {
			fds = tc.fds()
		}
		r := rawHello(t, addr, tc.msg, fds...)
		for _, fd := range fds {
			if fd != int(pw.Fd()) {
				unix.Close(fd)
			}
		}
		if !r.ack || r.status != tc.want || r.nfds != 0 {
			t.Errorf("%s: answered %v status %d with %d descriptors (%v); want status %d and none",
				tc.name, r.ack, r.status, r.nfds, r.err, tc.want)
		}
		if n := laneCount(e); n != 0 {
			t.Fatalf("%s: the endpoint holds %d lanes", tc.name, n)
		}
	}
	// The raw path itself is sound: a proper hello gets a lane and the bell.
	fds := lane(4096, sealed)
	r := rawHello(t, addr, hello, fds...)
	for _, fd := range fds {
		unix.Close(fd)
	}
	if !r.ack || r.status != ackOK || r.nfds != 2 {
		t.Fatalf("proper raw hello: %+v, want ackOK, the bell and the nudge pipe", r)
	}
	// Every descriptor passed in was closed by the endpoint (the proper
	// lane's once its client went).
	waitFor(t, 5*time.Second, "the endpoint to close every descriptor it was passed", func() bool {
		return openFDs(t) <= fdsBefore && laneCount(e) == 0
	})

	// Still serving.
	c, err := Dial(context.Background(), addr, os.Getpid(), "after", Options{})
	if err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 16)
	if n, err := c.Send(ctx, []byte("again"), reply); err != nil || string(reply[:n]) != string(complement([]byte("again"))) {
		t.Fatalf("Send after the hostile clients: %q, %v", reply[:n], err)
	}
	c.Close()

	// The silent clients are dropped after the hello timeout; those beyond
	// the handshakes allowed a user at once are dropped sooner, or answered
	// busy first.
	for i, conn := range hangers {
		conn.SetReadDeadline(hangStart.Add(helloTimeout + 3*time.Second))
		var b [64]byte
		n, err := conn.Read(b[:])
		if err == nil && i >= MaxHandshakesPerUser {
			if status, limit, aerr := decodeAck(b[:n]); aerr == nil && status == ackBusy && limit == MaxHandshakesPerUser {
				n, err = conn.Read(b[:])
			}
		}
		if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent client %d: read %d bytes, %v; want the endpoint to hang up", i, n, err)
		}
	}
	if d := time.Since(hangStart); d < helloTimeout/2 {
		t.Fatalf("silent clients dropped after %v, before the handshake timeout", d)
	}
	if res := failures(stop()); len(res) != 0 {
		t.Fatalf("failed replies: %v", res)
	}
}

// A receiver answering out of bounds: the sender refuses the answer.
func TestHostileReceiver(t *testing.T) {
	e, addr := listen(t, "badreceiver", Options{})
	c, err := Dial(context.Background(), addr, os.Getpid(), "victim", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t, 20*time.Second)
	for _, tc := range []struct {
		name string
		code uint32
		n    func(maxReply int) int
		want error
	}{
		{"reply larger than the buffer", codeOK, func(m int) int { return m + 1 }, transport.ErrBadMessage},
		{"reply larger than the lane", codeOK, func(int) int { return 1 << 30 }, transport.ErrBadMessage},
		{"unknown code", 99, func(int) int { return 0 }, transport.ErrBadMessage},
		{"closed code", codeClosed, func(int) int { return 0 }, transport.ErrPeerGone},
	} {
		res := make(chan error, 1)
		go func() {
			_, err := c.Send(ctx, []byte("victim"), make([]byte, 8))
			res <- err
		}()
		req, _, err := e.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, n := laneOf(req), tc.n(req.MaxReply())
		l.mu.Lock()
		l.answerLocked(tc.code, n)
		l.busy = false
		l.mu.Unlock()
		select {
		case err := <-res:
			if !errors.Is(err, tc.want) {
				t.Fatalf("%s: Send returned %v, want %v", tc.name, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Send did not return", tc.name)
		}
	}
	// Still usable afterwards.
	stop := serveLocal(t, e, 0)
	reply := make([]byte, 8)
	if n, err := c.Send(ctx, []byte("ok"), reply); err != nil || string(reply[:n]) != string(complement([]byte("ok"))) {
		t.Fatalf("Send after the bad answers: %q, %v", reply[:n], err)
	}
	stop()
}

// fakeListener answers each lane handshake at addr with answer.
func fakeListener(t *testing.T, answer func(conn *net.UnixConn)) string {
	t.Helper()
	addr := Address(t.TempDir(), "fake", os.Getpid())
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64), make([]byte, 64)
			_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err == nil {
				fds, _ := sys.ParseRights(oob[:oobn])
				for _, fd := range fds {
					unix.Close(fd)
				}
				answer(conn)
			}
			conn.Close()
		}
	}()
	return addr
}

// A receiver that botches its side of the handshake: Dial fails cleanly.
func TestHostileHandshakeAnswer(t *testing.T) {
	pipeR := func() int {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		unix.Close(p[1])
		return p[0]
	}
	// bell is a bell memfd and a nudge pipe, as a receiver sends them.
	bell := func(size, seals int) []byte { return unix.UnixRights(memfd(t, size, seals), pipeR()) }
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	for _, tc := range []struct {
		name string
		msg  []byte
		oob  func() []byte
		want error
	}{
		{"hang up", nil, nil, transport.ErrPeerGone},
		{"garbage", []byte("nope"), nil, transport.ErrBadMessage},
		{"index out of range", encodeAck(ackOK, MaxLanes), func() []byte { return bell(bellSize, sealed) }, transport.ErrBadMessage},
		{"no bell", encodeAck(ackOK, 3), nil, transport.ErrBadMessage},
		{"unsealed bell", encodeAck(ackOK, 3), func() []byte { return bell(bellSize, 0) }, transport.ErrBadMessage},
		{"small bell", encodeAck(ackOK, 3), func() []byte { return bell(64, sealed) }, transport.ErrBadMessage},
		{"big bell", encodeAck(ackOK, 3), func() []byte { return bell(2*bellSize, sealed) }, transport.ErrBadMessage},
		{"bell without a nudge pipe", encodeAck(ackOK, 3), func() []byte { return unix.UnixRights(memfd(t, bellSize, sealed)) }, transport.ErrBadMessage},
		{"a memfd for the nudge pipe", encodeAck(ackOK, 3), func() []byte {
			return unix.UnixRights(memfd(t, bellSize, sealed), memfd(t, bellSize, sealed))
		}, transport.ErrBadMessage},
		{"full", encodeAck(ackFull, MaxLanes), nil, transport.ErrTooManyLanes},
		{"out of resources", encodeAck(ackFull, 0), nil, transport.ErrTooManyLanes},
		{"too many of this process", encodeAck(ackTooMany, DefaultLanesPerProcess), nil, transport.ErrTooManyLanes},
		{"denied", encodeAck(ackDenied, 0), nil, os.ErrPermission},
		{"refused", encodeAck(ackBadLane, 0), nil, transport.ErrBadMessage},
	} {
		addr := fakeListener(t, func(conn *net.UnixConn) {
			if tc.msg == nil {
				return
			}
			var oob []byte
			if tc.oob != nil {
				oob = tc.oob()
				defer func() {
					fds, _ := sys.ParseRights(oob)
					for _, fd := range fds {
						unix.Close(fd)
					}
				}()
			}
			conn.WriteMsgUnix(tc.msg, oob, nil)
		})
		var c *Conn
		var err error
		within(t, 5*time.Second, "Dial to a bad receiver", func() { c, err = Dial(context.Background(), addr, os.Getpid(), "x", Options{}) })
		if err == nil {
			c.Close()
			t.Fatalf("%s: Dial succeeded", tc.name)
		}
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: Dial: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A listener that is not the process it claims to be.
	p := startRecv(t, "impostor", 0, holdForever)
	if _, err := Dial(context.Background(), p.addr, os.Getpid(), "x", Options{}); !errors.Is(err, transport.ErrPeerGone) {
		t.Fatalf("Dial with the wrong pid: %v, want ErrPeerGone", err)
	}
	// Nobody there.
	if _, err := Dial(context.Background(), Address(t.TempDir(), "nobody", os.Getpid()), os.Getpid(), "x", Options{}); !errors.Is(err, transport.ErrPeerGone) {
		t.Fatalf("Dial to nobody: %v, want ErrPeerGone", err)
	}
}

func TestListenTwice(t *testing.T) {
	_, addr := listen(t, "twice", Options{})
	if e, err := Listen(addr, "twice", Options{}); !errors.Is(err, transport.ErrNameInUse) {
		if e != nil {
			e.Close()
		}
		t.Fatalf("second Listen on %s: %v, want ErrNameInUse", addr, err)
	}
}

func TestAllowed(t *testing.T) {
	e := &Endpoint{uid: 1000, gid: 100}
	for _, tc := range []struct {
		perm     os.FileMode
		cred     sys.Cred
		expected bool
	}{
		{0o600, sys.Cred{UID: 1000, GID: 5}, true},
		{0o600, sys.Cred{UID: 0, GID: 5}, true},
		{0o600, sys.Cred{UID: 1001, GID: 100}, false},
		{0o600, sys.Cred{UID: 1001, GID: 5}, false},
		{0o660, sys.Cred{UID: 1001, GID: 100}, true},
		{0o660, sys.Cred{UID: 1001, GID: 5}, false},
		{0o606, sys.Cred{UID: 1001, GID: 5}, true},
		{0o666, sys.Cred{UID: 1001, GID: 5}, true},
	} {
		e.perm = tc.perm
		if got := e.allowed(tc.cred); got != tc.expected {
			t.Errorf("perm %o, cred %+v: allowed %v, want %v", tc.perm, tc.cred, got, tc.expected)
		}
	}
}

func TestLaneSize(t *testing.T) {
	for _, tc := range []struct{ need, want int }{
		{0, minLaneSize}, {minLaneSize - HeaderSize, minLaneSize}, {minLaneSize - HeaderSize + 1, 2 * minLaneSize},
		{1 << 20, 2 << 20}, {64 << 20, 128 << 20}, {256 << 20, 512 << 20},
	} {
		if got := laneSize(tc.need); got != tc.want || got < tc.need+HeaderSize {
			t.Errorf("laneSize(%d) = %d, want %d", tc.need, got, tc.want)
		}
	}
}

// The receiver scans ready lanes from a cursor; a scan that finds nothing
// must have visited (and cleared) every pending bit, or a receiver about
// to sleep would leave a posted lane waiting for the next bell. Stale bits
// (a sender withdrew, or died) make takes fail mid-scan.
func TestPollLanesVisitsAll(t *testing.T) {
	e, addr := listen(t, "scan", Options{LanesPerProcess: 192})
	c, err := Dial(context.Background(), addr, os.Getpid(), "scan", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 191 more lanes: indices 0..191, three ready words.
	byIndex := map[int]*lane{}
	c.mu.Lock()
	byIndex[c.free[0].index] = c.free[0]
	c.mu.Unlock()
	for range 191 {
		l, err := c.newLane(context.Background(), 0, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.destroy()
		byIndex[l.index] = l
	}
	top := int(e.top.Load())
	if top != 192 || len(byIndex) != 192 {
		t.Fatalf("top %d, %d lanes", top, len(byIndex))
	}

	trial := func(cursor int, stale []int, posted int) error {
		e.cursor = cursor
		for _, i := range stale {
			e.bell.ready[i/64].Or(1 << (i % 64))
		}
		l := byIndex[posted]
		l.w.nbytes.Store(1)
		l.w.maxReply.Store(1)
		l.w.state.Store(lanePosted)
		c.bell.ring(posted)
		r, gen, _, ok := e.pollLanes()
		var ferr error
		if !ok {
			ferr = fmt.Errorf("cursor %d, stale %v: the posted lane %d was not found", cursor, stale, posted)
			l.w.state.Store(laneIdle)
		} else if r.index != posted {
			ferr = fmt.Errorf("took lane %d, want %d", r.index, posted)
		}
		if ok {
			r.Reply(gen, []byte{1})
			l.w.state.Store(laneIdle)
		}
		// Drain whatever is left, then nothing may be pending.
		for {
			if _, _, _, ok := e.pollLanes(); !ok {
				break
			}
		}
		for w, p := range e.pend {
			if p != 0 || e.bell.ready[w].Load() != 0 {
				e.pend[w] = 0
				e.bell.ready[w].Store(0)
				if ferr == nil {
					ferr = fmt.Errorf("cursor %d, stale %v: word %d still pending after a scan found nothing", cursor, stale, w)
				}
			}
		}
		return ferr
	}
	// The case that motivated the test: failures at 63 and 191 move the
	// cursor by whole words past the posted lane 100.
	if err := trial(0, []int{63, 191}, 100); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for range 300 {
		posted := rng.IntN(top)
		var stale []int
		for range 1 + rng.IntN(6) {
			if s := rng.IntN(top); s != posted {
				stale = append(stale, s)
			}
		}
		if err := trial(rng.IntN(top+1), stale, posted); err != nil {
			t.Fatal(err)
		}
	}
}

// Each answer goes to its own request: answering a request again after it
// was answered must not touch the lane's next request.
func TestAnswerAfterNextTake(t *testing.T) {
	e, addr := listen(t, "reuse", Options{})
	c, err := Dial(context.Background(), addr, os.Getpid(), "reuser", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t, 20*time.Second)
	type res struct {
		reply string
		err   error
	}
	sendAsync := func(msg string) chan res {
		ch := make(chan res, 1)
		go func() {
			reply := make([]byte, 16)
			n, err := c.Send(ctx, []byte(msg), reply)
			ch <- res{string(reply[:n]), err}
		}()
		return ch
	}
	first := sendAsync("one")
	r1, _, err := e.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t1 := r1
	if err := t1.Reply([]byte("ONE")); err != nil {
		t.Fatal(err)
	}
	if got := <-first; got.err != nil || got.reply != "ONE" {
		t.Fatalf("first: %+v", got)
	}
	second := sendAsync("two") // the same lane, idle again
	r2, _, err := e.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(r2.Data()) != "two" {
		t.Fatalf("second request: %q", r2.Data())
	}
	if h1, _ := r1.Handle(); laneOf(r2) != h1 {
		t.Fatalf("the lane's second message came in another Request value: the test no longer covers reuse")
	}
	t2 := r2
	if d := t1.Data(); d != nil {
		t.Errorf("a stale ticket shows %q, want nil", d)
	}
	if b := t1.ReplyBuffer(); b != nil {
		t.Errorf("a stale ticket offers a %d-byte reply buffer, want nil", len(b))
	}
	for name, late := range map[string]error{
		"Reply":        t1.Reply([]byte("STALE")),
		"ReplyInPlace": t1.ReplyInPlace(1),
		"ReplyError":   t1.ReplyError(),
	} {
		if !errors.Is(late, transport.ErrReplied) {
			t.Errorf("%s through the first message's ticket: %v, want ErrReplied", name, late)
		}
	}
	t1.Abort()
	if string(t2.Data()) != "two" {
		t.Fatalf("the second message changed under stale answers: %q", t2.Data())
	}
	if err := t2.Reply([]byte("TWO")); err != nil {
		t.Fatal(err)
	}
	if got := <-second; got.err != nil || got.reply != "TWO" {
		t.Fatalf("second: %+v", got)
	}
}

// A handshake that is under way when the endpoint closes must not tell the
// sender its message is too large: the receiver is gone.
func TestHandshakeDuringClose(t *testing.T) {
	addr := Address(t.TempDir(), "closing", os.Getpid())
	e, err := Listen(addr, "closing", Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Accepted: its handshake waits for the hello.
	proctest.WaitParked(t, 5*time.Second, "(*Endpoint).handshake", 1)
	within(t, 5*time.Second, "Endpoint.Close", func() { e.Close() })
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	fd := memfd(t, 4096, sealed)
	defer unix.Close(fd)
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.WriteMsgUnix(encodeHello("late", laneMessages), unix.UnixRights(fd), nil); err != nil {
		return // hung up: the sender sees ErrPeerGone
	}
	buf := make([]byte, 64)
	n, _, _, _, err := conn.ReadMsgUnix(buf, nil)
	if err != nil || n == 0 {
		return // hung up
	}
	status, index, err := decodeAck(buf[:n])
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if serr := ackErr(status, index); status == ackOK || !errors.Is(serr, transport.ErrPeerGone) {
		t.Errorf("a lane handshake finishing after Endpoint.Close is answered with status %d, "+
			"which Dial and Send report as %q instead of ErrPeerGone", status, serr)
	}
}

// A sender that asks to be nudged and never reads its nudge pipe: once the
// pipe is full the receiver's nudges are dropped, never waited for, and
// the receiver serves on.
func TestMuteSender(t *testing.T) {
	e, addr := listen(t, "mute", Options{})
	stop := serveLocal(t, e, 0)
	const sealed = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fd := memfd(t, 4096, sealed)
	defer unix.Close(fd)
	if _, _, err := conn.WriteMsgUnix(encodeHello("mute", laneMessages), unix.UnixRights(fd), nil); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, 64), make([]byte, 64)
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	fds, _ := sys.ParseRights(oob[:oobn])
	status, idx, err := decodeAck(buf[:n])
	if err != nil || status != ackOK || len(fds) != 2 {
		t.Fatalf("handshake: status %d, %d descriptors, %v", status, len(fds), err)
	}
	// The nudge pipe, made as small as it goes, and never read.
	defer unix.Close(fds[1])
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	bm, err := sys.Map(fds[0], bellSize)
	unix.Close(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer bm.Unmap()
	lm, err := sys.Map(fd, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Unmap()
	w, bell := wordsOf(lm), bellOf(bm)
	const rounds = 3 * 4096 // more nudges than the pipe holds
	deadline := time.Now().Add(20 * time.Second)
	for i := range rounds {
		w.swait.Store(swaitPipe) // "parked": nudge me, and I never read
		w.data[0] = byte(i)
		w.nbytes.Store(1)
		w.maxReply.Store(8)
		w.code.Store(0)
		w.state.Store(lanePosted)
		bell.ring(idx)
		for w.state.Load() != laneAnswered {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the receiver stopped answering (stuck nudging a full socket?)", i)
			}
			runtime.Gosched()
		}
		w.state.Store(laneIdle)
	}
	c, err := Dial(context.Background(), addr, os.Getpid(), "after", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, "still serving")
	conn.Close()
	waitFor(t, 5*time.Second, "the mute lane to be released", func() bool { return laneCount(e) <= 1 })
	if f := failures(stop()); len(f) > 0 {
		t.Fatalf("receiver: %v", f)
	}
}
