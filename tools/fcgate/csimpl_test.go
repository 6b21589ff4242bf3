package main

// C SIMPL programs through fcgate (issue 13 item 4): testdata/cnet.c, a
// C program written from the spec that locates "host:NAME" as C SIMPL's
// library does (SUR_REQUEST_PROTOCOL to _simplProtoRouter, SUR_NAME_LOCATE
// to the surrogate named, then Sends and Triggers to it), run as real
// processes against the real fcgate: on one host with a gateway serving
// another host name (no root needed), with a C router already running
// (cnet plays it), and across two hosts of a netlab lab.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// csimplTimeout bounds a gateway's or a C program's life in these tests.
const csimplTimeout = time.Minute

// buildCNet compiles testdata/cnet.c into the test's temporary
// directory, or skips the test when there is no C compiler.
func buildCNet(t *testing.T) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler (cc) on PATH: the C SIMPL tests need one (.ci/run installs gcc)")
	}
	out := filepath.Join(t.TempDir(), "cnet")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	if b, err := exec.CommandContext(ctx, cc, "-O1", "-Wall", "-Werror", "-I", filepath.Join("..", "..", "internal", "transport", "fifo", "testdata"), "-o", out, filepath.Join("testdata", "cnet.c")).CombinedOutput(); err != nil {
		t.Fatalf("compile testdata/cnet.c: %v\n%s", err, b)
	}
	return out
}

// onHost runs name on this machine with FIFO_PATH dir and HOSTNAME host,
// killed after csimplTimeout.
func onHost(t *testing.T, dir, host, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), csimplTimeout)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "FIFO_PATH="+dir, "HOSTNAME="+host, "GORACE=atexit_sleep_ms=0")
	return cmd
}

// lines runs cmd to completion and returns its stdout's lines, failing
// the test if it does not exit 0.
func lines(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("%v: exit %d, stdout %q, stderr %q", cmd.Args, r.code, r.stdout, r.stderr)
	}
	return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

// expectLines checks got against want, line by line; a want line ending
// in "*" matches any line starting with the rest.
func expectLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		w, g := want[i], got[i]
		ok = g == w || strings.HasSuffix(w, "*") && strings.HasPrefix(g, strings.TrimSuffix(w, "*"))
	}
	if !ok {
		t.Errorf("%s printed\n  %q\nwant\n  %q", what, got, want)
	}
}

// waitGone waits until no FIFO of a name starting with prefix is left in
// dir.
func waitGone(t *testing.T, dir, prefix string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, de := range des {
			if strings.HasPrefix(de.Name(), prefix) || strings.HasPrefix(de.Name(), "Y"+prefix) {
				left = append(left, de.Name())
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v still in the FIFO directory: %v", d, left)
		}
		time.Sleep(20 * time.Millisecond) // polling the directory, bounded above
	}
}

// A C program on a host whose gateway is its router: it locates
// other:SRV (a C receiver reached through NATS and back), Sends small and
// large messages, gets a ReplyError and a reply too large for it as -1,
// Triggers; a name nobody holds, a protocol nobody serves, surrogateTcp's
// protocol (the gateway serves it when no surrogateTcp runs); a
// receiver killed holding a Send and a C program killed holding a
// surrogate; messages the router cannot read are refused, counted, and
// the router goes on. Every surrogate is detached when its program lets
// go of it, and nothing is left in the FIFO directory.
func TestCSimplRouter(t *testing.T) {
	cnet := buildCNet(t)
	dir := proctest.Dir(t)
	gw, _ := startGate(t, onHost(t, dir, "me", bin("fcgate"), "-v", "-host", "other", "-listen", "127.0.0.1:0"))

	t.Run("send", func(t *testing.T) {
		srv := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "recv", "SRV", "6"))
		srv.Expect("ready", lineTimeout)
		got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:SRV", "64", "0", "100000", "X", "100:50", "p5"))
		expectLines(t, "cnet locate other:SRV", got, []string{
			"located _gosimpl_s*", "ok 64 80", "ok 0 16", "ok 100000 100016", "err X -1", "err 100:50 -1", "triggered 5", "done",
		})
		for _, want := range []string{"msg 64 80", "msg 0 16", "msg 100000 100016", "msg 1 17", "msg 100 50", "proxy 5"} {
			if got := srv.ReadLine(lineTimeout); got != want {
				t.Errorf("the C receiver printed %q, want %q", got, want)
			}
		}
		if err := srv.Wait(runTimeout); err != nil {
			t.Errorf("the C receiver: %v", err)
		}
		waitGone(t, dir, "_gosimpl_s", 5*time.Second)
	})

	t.Run("not found", func(t *testing.T) {
		got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:NOPE", "8"))
		expectLines(t, "cnet locate other:NOPE", got, []string{"locate failed: cannot locate remote process"})
		got = lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "_simplRS232:other:SRV", "8"))
		expectLines(t, "cnet locate _simplRS232:other:SRV", got, []string{"locate failed: protocol not in router table"})
		waitGone(t, dir, "_gosimpl_s", 5*time.Second)
	})

	t.Run("protocols", func(t *testing.T) {
		// (_simplTCP:other:SRV goes through the bridge to C SIMPL hosts,
		// not NATS: TestCSimplRouterTCPProtocol.)
		srv := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "recv", "SRV", "1"))
		srv.Expect("ready", lineTimeout)
		for _, target := range []string{gateway.Protocol + ":other:SRV"} {
			got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", target, "8"))
			expectLines(t, "cnet locate "+target, got, []string{"located _gosimpl_s*", "ok 8 24", "done"})
		}
		if err := srv.Wait(runTimeout); err != nil {
			t.Errorf("the C receiver: %v", err)
		}
	})

	t.Run("receiver killed", func(t *testing.T) {
		hold := proctest.StartCmd(t, onHost(t, dir, "me", bin("fcrecv"), "-n", "HOLD", "-delay", "1m"))
		hold.Expect("attached HOLD", lineTimeout)
		cli := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:HOLD", "8"))
		cli.Expect("located", lineTimeout)
		hold.Expect("message from", lineTimeout)
		t0 := time.Now()
		hold.Kill()
		if got := cli.Expect("err 8", lineTimeout); got != "err 8 -1" {
			t.Errorf("cnet whose receiver was killed: %q", got)
		}
		el := time.Since(t0)
		t.Logf("the C program's Send failed %v after its receiver was killed", el)
		if el > 2*time.Second {
			t.Errorf("the C program's Send failed %v after its receiver was killed, want within 2s", el)
		}
		if err := cli.Wait(runTimeout); err != nil {
			t.Errorf("cnet: %v", err)
		}
		reap(t, dir, "HOLD")
	})

	t.Run("program killed", func(t *testing.T) {
		cli := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:NOPE2", "wait"))
		if got := cli.ReadLine(lineTimeout); got != "locate failed: cannot locate remote process" {
			t.Fatalf("cnet: %q", got)
		}
		cli.Wait(runTimeout)
		srv := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "recv", "SRV", "1"))
		srv.Expect("ready", lineTimeout)
		cli = proctest.StartCmd(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:SRV", "wait"))
		cli.Expect("waiting", lineTimeout)
		cli.Kill() // holding its surrogate: the gateway notices and detaches it
		reap(t, dir, "CLI")
		waitGone(t, dir, "_gosimpl_s", 3*time.Second)
		srv.Kill()
		reap(t, dir, "SRV")
	})

	t.Run("bad messages", func(t *testing.T) {
		ch, err := simpl.Attach("BAD", simpl.WithDir(dir), simpl.WithTransport(simpl.FIFO))
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		router, err := ch.Locate(ctx, gateway.RouterName)
		if err != nil {
			t.Fatal(err)
		}
		noNUL := make([]byte, 40)
		noNUL[0] = 11
		for i := 16; i < 40; i++ {
			noNUL[i] = 'x'
		}
		unknown := make([]byte, 16)
		unknown[0] = 99
		for _, m := range [][]byte{{1, 2, 3}, unknown, noNUL} {
			if _, err := router.Send(ctx, m, make([]byte, 32)); !errors.Is(err, simpl.ErrRejected) {
				t.Errorf("Send % x to the router: %v, want ErrRejected", m[:min(len(m), 20)], err)
			}
		}
		if _, err := router.Send(ctx, make([]byte, 2000), make([]byte, 32)); err == nil {
			t.Error("a 2000-byte message to the router (its limit 1024): no error")
		}
		// A surrogate's first message must be SUR_NAME_LOCATE: a remote
		// name_attach (SUR_NAME_ATTACH, which only C SIMPL's tcp_x
		// serves) is refused, and the surrogate detached.
		name := make([]byte, 32)
		if n, err := router.Send(ctx, cBytes(11, 40, "_simplDefault", 24), name); err != nil || n != 32 || name[0] == 0 {
			t.Fatalf("SUR_REQUEST_PROTOCOL: %d bytes %q, %v", n, name, err)
		}
		sur, err := ch.Locate(ctx, strings.TrimRight(string(name), "\x00"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sur.Send(ctx, cBytes(0, 116, "other", 52, "SRV", 32, "BAD", 32), make([]byte, 20)); !errors.Is(err, simpl.ErrRejected) {
			t.Errorf("SUR_NAME_ATTACH to a surrogate: %v, want ErrRejected", err)
		}
		waitGone(t, dir, "_gosimpl_s", 5*time.Second)
		// The router goes on.
		got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:NOPE", "8"))
		expectLines(t, "cnet locate other:NOPE", got, []string{"locate failed: cannot locate remote process"})
	})

	t.Run("registration", func(t *testing.T) { testThirdParty(t, dir, cnet) })

	// Requests: the nine name_locates of cnet (_simplRS232's and
	// _simplFAKE's among them) and the one of the bad messages. Located: SRV three times, HOLD; not found: NOPE
	// twice, NOPE2. Sent: three and one; failed: X, 100:50, HOLD's. Bad:
	// three to the router, one to a surrogate.
	stopCSimpl(t, gw, "requests 10, registrations 0, located 4, not found 3, sends 4, failed 3, triggers 1, bad 4, busy 0")
}

// stopCSimpl stops a gateway started with -v and checks its C SIMPL
// counts.
func stopCSimpl(t *testing.T, gw *proctest.Proc, want string) {
	t.Helper()
	gw.Signal(15)
	gw.Expect("fcgate: stopped: ", lineTimeout)
	if got := gw.Expect("fcgate: C SIMPL: ", lineTimeout); !strings.HasSuffix(got, want) {
		t.Errorf("fcgate's C SIMPL counts: %q, want %q", got, want)
	}
	if err := gw.Wait(runTimeout); err != nil {
		t.Errorf("fcgate after SIGTERM: %v", err)
	}
}

// reap removes the FIFOs a killed program left under name.
func reap(t *testing.T, dir, name string) {
	t.Helper()
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Reap(name); err != nil {
		t.Error(err)
	}
}

// waitFile waits until dir holds name.
func waitFile(t *testing.T, dir, name string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the FIFO directory after %v", name, d)
		}
		time.Sleep(20 * time.Millisecond) // polling the directory, bounded above
	}
}

// With a C SIMPL router already running (cnet plays it), the gateway
// registers with it as _gosimplNATS, one idle surrogate at a time, as
// surrogateTcp does: a C program's name_locate gets that surrogate from
// the router and reaches other:SRV through it, and the gateway registers
// the next. When that router exits, the gateway becomes the router.
func TestCSimplRegisters(t *testing.T) {
	cnet := buildCNet(t)
	dir := proctest.Dir(t)
	router := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "router", "3"))
	router.Expect("ready", lineTimeout)
	gw := proctest.StartCmd(t, onHost(t, dir, "me", bin("fcgate"), "-v", "-host", "other", "-listen", "127.0.0.1:0"))
	if got, want := gw.Expect("fcgate: C SIMPL programs: ", lineTimeout), "registered as "+gateway.Protocol+" with the router "+gateway.RouterName; !strings.HasSuffix(got, want) {
		t.Errorf("fcgate's role: %q, want %q", got, want)
	}
	gw.Expect("serving through", lineTimeout)
	first := router.Expect("registered", lineTimeout)
	prog, ok := strings.CutPrefix(first, "registered "+gateway.Protocol+" _gosimpl_s")
	if !ok {
		t.Fatalf("the C router: %q, want a registration of %s", first, gateway.Protocol)
	}
	prog = "_gosimpl_s" + prog

	srv := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "recv", "SRV", "2"))
	srv.Expect("ready", lineTimeout)
	got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:SRV", "64"))
	expectLines(t, "cnet locate other:SRV through the C router", got, []string{"located " + prog, "ok 64 80", "done"})
	if got, want := router.Expect("handed", lineTimeout), "handed "+gateway.Protocol+" "+prog; got != want {
		t.Errorf("the C router: %q, want %q", got, want)
	}
	if got := router.Expect("registered", lineTimeout); !strings.HasPrefix(got, "registered "+gateway.Protocol+" _gosimpl_s") || got == first {
		t.Errorf("the C router, after handing out %s: %q, want the next registration", prog, got)
	}
	// Its three messages taken, the C router exits, leaving the gateway's
	// registration unanswered: the gateway takes the router's name.
	if err := router.Wait(runTimeout); err != nil {
		t.Fatalf("the C router: %v", err)
	}
	waitFile(t, dir, fmt.Sprintf("%s.%d", gateway.RouterName, gw.PID()), 5*time.Second)
	got = lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "other:SRV", "8"))
	expectLines(t, "cnet locate other:SRV through the gateway's router", got, []string{"located _gosimpl_s*", "ok 8 24", "done"})
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("the C receiver: %v", err)
	}
	stopCSimpl(t, gw, "requests 1, registrations 1, located 2, not found 0, sends 2, failed 0, triggers 0, bad 0, busy 0")
}

// Across two hosts of a netlab lab, each with its gateway as its C
// programs' router: a C program on a locates b:SRV, a C receiver on b,
// Sends to it (one larger than a page, one larger than 64 KiB) and
// Triggers it; b:NOPE and a host no gateway serves fail name_locate; b's
// gateway killed holding a Send fails that Send within 2 s.
func TestCSimplTwoHosts(t *testing.T) {
	cnet := buildCNet(t)
	h := newTwoHosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), csimplTimeout)
	defer cancel()
	srv := proctest.StartCmd(t, h.b.Command(ctx, cnet, "recv", "SRV", "3"))
	srv.Expect("ready", lineTimeout)
	got := lines(t, h.a.Command(ctx, cnet, "locate", "CLI", "b:SRV", "64", "70000", "p7"))
	expectLines(t, "cnet locate b:SRV on a", got, []string{"located _gosimpl_s*", "ok 64 80", "ok 70000 70016", "triggered 7", "done"})
	for _, want := range []string{"msg 64 80", "msg 70000 70016", "proxy 7"} {
		if got := srv.ReadLine(lineTimeout); got != want {
			t.Errorf("the C receiver on b printed %q, want %q", got, want)
		}
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("the C receiver on b: %v", err)
	}
	for _, target := range []string{"b:NOPE", "nowhere:SRV"} {
		got := lines(t, h.a.Command(ctx, cnet, "locate", "CLI", target, "8"))
		expectLines(t, "cnet locate "+target+" on a", got, []string{"locate failed: cannot locate remote process"})
	}
	if got := h.gwA.Expect("csimpl: CLI", lineTimeout); !strings.Contains(got, "located b:SRV through _gosimpl_s") {
		t.Errorf("a's gateway: %q", got)
	}
	// b's gateway killed holding a Send: the C program's Send fails (-1)
	// once a's gateway hears nothing for 1.5 s, not C SIMPL's 40 s of
	// keep-alives.
	hold := h.recv(t, "-n", "HOLD", "-delay", "1m")
	cli := proctest.StartCmd(t, h.a.Command(ctx, cnet, "locate", "CLI", "b:HOLD", "8"))
	cli.Expect("located", lineTimeout)
	hold.Expect("message from", lineTimeout)
	t0 := time.Now()
	h.gwB.Kill()
	if got := cli.Expect("err 8", lineTimeout); got != "err 8 -1" {
		t.Errorf("cnet whose remote gateway was killed: %q", got)
	}
	el := time.Since(t0)
	t.Logf("the C program's Send failed %v after b's gateway was killed", el)
	if el > 2*time.Second {
		t.Errorf("the C program's Send failed %v after b's gateway was killed, want within 2s", el)
	}
	if err := cli.Wait(runTimeout); err != nil {
		t.Errorf("cnet: %v", err)
	}
	hold.Kill()
	stopCSimpl(t, h.gwA, "requests 4, registrations 0, located 2, not found 2, sends 2, failed 1, triggers 1, bad 0, busy 0")
}

// cBytes lays out a router message: the header (token, nbytes, then
// zeros) and each field in its size.
func cBytes(token, nbytes uint32, fields ...any) []byte {
	b := binary.NativeEndian.AppendUint32(nil, token)
	b = binary.NativeEndian.AppendUint32(b, nbytes)
	b = append(b, make([]byte, 8)...)
	for i := 0; i < len(fields); i += 2 {
		f := make([]byte, fields[i+1].(int))
		copy(f, fields[i].(string))
		b = append(b, f...)
	}
	return b
}

// dumpTable asks the router for its table and returns its entries,
// "protocol program" each.
func dumpTable(t *testing.T, ctx context.Context, router *simpl.Conn) []string {
	t.Helper()
	reply := make([]byte, 640)
	n, err := router.Send(ctx, cBytes(12, 16), reply)
	if err != nil || n != 640 {
		t.Fatalf("SUR_DUMP_TABLE: %d bytes, %v; want 640", n, err)
	}
	var out []string
	for i := 0; i < 10; i++ {
		e := reply[i*64:]
		proto, _, _ := strings.Cut(string(e[:24]), "\x00")
		prog, _, _ := strings.Cut(string(e[24:56]), "\x00")
		if proto != "" {
			out = append(out, proto+" "+prog)
		}
	}
	return out
}

// testThirdParty registers a protocol of its own with the gateway's router
// as a C SIMPL surrogate would (SUR_SURROGATE_READY, held unanswered), and
// serves the surrogate it registered: SUR_DUMP_TABLE lists it, a C
// program's name_locate of _simplFAKE:other:SRV reaches it (a
// SUR_NAME_LOCATE for other and SRV, then the program's Send and its
// sur_detach), the registration is answered, and the table is empty again.
func testThirdParty(t *testing.T, dir, cnet string) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	attach := func(name string) *simpl.Channel {
		ch, err := simpl.Attach(name, simpl.WithDir(dir), simpl.WithTransport(simpl.FIFO), simpl.WithPerm(0o666))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ch.Close() })
		return ch
	}
	reg, child := attach("fakeReg"), attach("fakeChild_1")
	router, err := reg.Locate(ctx, gateway.RouterName)
	if err != nil {
		t.Fatal(err)
	}
	registered := make(chan error, 1)
	go func() {
		_, err := router.Send(ctx, cBytes(10, 72, "_simplFAKE", 24, "fakeChild_1", 32), nil)
		registered <- err
	}()
	for deadline := time.Now().Add(lineTimeout); ; time.Sleep(10 * time.Millisecond) { // polling the table, bounded
		got := dumpTable(t, ctx, router)
		if len(got) == 1 && got[0] == "_simplFAKE fakeChild_1" {
			break
		}
		if len(got) != 0 || time.Now().After(deadline) {
			t.Fatalf("the router's table: %q, want the registration of _simplFAKE", got)
		}
	}
	cli := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "locate", "CLI", "_simplFAKE:other:SRV", "8"))
	msg, err := child.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := msg.Data(); len(d) != 152 || binary.NativeEndian.Uint32(d) != 2 || !strings.HasPrefix(string(d[16:68]), "other\x00") || !strings.HasPrefix(string(d[68:100]), "SRV\x00") {
		t.Fatalf("the registered surrogate got % x, want SUR_NAME_LOCATE of other and SRV", d)
	}
	if err := msg.Reply(append(msg.Data()[:16:16], 0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := <-registered; err != nil {
		t.Errorf("the registration, once its entry was used: %v", err)
	}
	if got := cli.ReadLine(lineTimeout); got != "located fakeChild_1" {
		t.Fatalf("cnet: %q", got)
	}
	// The program's Send, answered by the reply rule, then its sur_detach.
	if msg, err = child.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	reply := append([]byte(nil), msg.Data()...)
	for i := range reply {
		reply[i]++
	}
	for j := range 16 {
		reply = append(reply, byte(0xA0+j))
	}
	if err := msg.Reply(reply); err != nil {
		t.Fatal(err)
	}
	if got := cli.ReadLine(lineTimeout); got != "ok 8 24" {
		t.Errorf("cnet: %q", got)
	}
	if msg, err = child.Receive(ctx); err != nil || msg.Proxy() != simpl.ProxyShutdown {
		t.Errorf("the registered surrogate's last message: proxy %d, %v; want PROXY_SHUTDOWN", msg.Proxy(), err)
	}
	if err := cli.Wait(runTimeout); err != nil {
		t.Errorf("cnet: %v", err)
	}
	if got := dumpTable(t, ctx, router); len(got) != 0 {
		t.Errorf("the router's table after the entry was used: %q", got)
	}
}
