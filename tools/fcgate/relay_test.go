package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/simpl"
)

// helperEnv makes this test binary a receiver for the tests (see helper)
// instead of running them.
const helperEnv = "GOSIMPL_FCGATE_HELPER"

// helper runs this test binary as one of the receivers the tests need,
// in the host whose FIFO_PATH it is given, with args NAME and TARGET:
//
//	relay:  attach NAME, say "ready", take one request and relay it to
//	        TARGET (a local or a remote name), then wait for SIGTERM
//	reject: attach NAME, say "ready", answer one request with ReplyError
//	cred:   attach NAME, say "ready", answer one request with its Cred
//	surpeer: play a C SIMPL host's surrogate_r (char encoding): connect
//	        to NAME (an address), locate TARGET, send "hello", print
//	        "reply R", or "closed" if the connection is closed first
//	chost:  play a C SIMPL host's surrogateTcp at NAME (an address), its
//	        SRV doing TARGET (a cHost mode); see cHostHelper
func helper(mode string, args []string) int {
	name, target := args[0], args[1]
	if mode == "surpeer" {
		return surPeer(name, target)
	}
	if mode == "chost" {
		return cHostHelper(name, target)
	}
	if mode == "allocs" {
		return allocsHelper(name, target)
	}
	err := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		ch, err := simpl.Attach(name)
		if err != nil {
			return err
		}
		defer ch.Close()
		fmt.Println("ready")
		msg, err := ch.Receive(ctx)
		if err != nil {
			return err
		}
		switch mode {
		case "relay":
			to, err := ch.Locate(ctx, target)
			if err != nil {
				return err
			}
			if err := msg.Relay(to); err != nil {
				return err
			}
			// A relay through shared memory or the network is
			// forwarded by this process: it stays until told to go
			// (closing the Channel would fail what it forwards).
			sig, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
			defer stop()
			<-sig.Done()
			return nil
		case "reject":
			return msg.ReplyError()
		case "cred":
			c, ok := msg.Cred()
			name, pid := msg.Sender()
			return msg.Reply(fmt.Appendf(nil, "cred %+v %v sender %s %d", c, ok, name, pid))
		}
		return fmt.Errorf("mode %q", mode)
	}()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		return 1
	}
	return 0
}

// startHelper runs helper mode on host h (a or b of a twoHosts), with
// args name and target, and waits for it to attach.
func (h *twoHosts) startHelper(t *testing.T, onA bool, mode, name, target string) *proctest.Proc {
	t.Helper()
	host := h.b
	if onA {
		host = h.a
	}
	cmd := host.Command(context.Background(), os.Args[0], "-test.run=^$", name, target)
	cmd.Env = append(cmd.Env, helperEnv+"="+mode)
	p := proctest.StartCmd(t, cmd)
	p.Expect("ready", lineTimeout)
	return p
}

// Relay and ReplyError at a remote receiver: a Send from a to b:RELAY,
// which relays it to b's SRV, is answered by SRV; one to b:BACK, which
// relays it back across the network to a:ECHO, is answered by a's ECHO;
// one to b:REJ, which answers ReplyError, fails for the sender as
// rejected.
func TestRemoteRelay(t *testing.T) {
	h := newTwoHosts(t)
	srv := h.recv(t, "-n", "SRV", "-count", "1", "-reply", "from b's SRV")
	relay := h.startHelper(t, false, "relay", "RELAY", "SRV")
	if r := h.send(t, "-r", "b:RELAY", "-m", "relay me"); r.code != 0 || r.stdout != "from b's SRV\n" {
		t.Errorf("fcsend -r b:RELAY (relayed to b's SRV): exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := srv.Expect("message from", lineTimeout); !strings.HasSuffix(got, ": relay me") {
		t.Errorf("b's SRV: %q", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	echo := proctest.StartCmd(t, h.a.Command(ctx, bin("fcrecv"), "-n", "ECHO", "-count", "1", "-reply", "from a's ECHO"))
	echo.Expect("attached", lineTimeout)
	back := h.startHelper(t, false, "relay", "BACK", "a:ECHO")
	t0 := time.Now()
	if r := h.send(t, "-r", "b:BACK", "-m", "there and back"); r.code != 0 || r.stdout != "from a's ECHO\n" {
		t.Errorf("fcsend -r b:BACK (relayed to a:ECHO): exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("a → b, relayed b → a, and both answers back: %v", time.Since(t0))
	if got := echo.Expect("message from", lineTimeout); !strings.HasSuffix(got, ": there and back") {
		t.Errorf("a's ECHO: %q", got)
	}

	rej := h.startHelper(t, false, "reject", "REJ", "-")
	if r := h.send(t, "-r", "b:REJ", "-m", "no"); r.code != 1 || !strings.Contains(r.stderr, "receiver replied with an error") {
		t.Errorf("fcsend -r b:REJ: exit %d, stderr %q; want ErrRejected", r.code, r.stderr)
	}
	relay.Signal(15)
	back.Signal(15)
	for _, p := range []*proctest.Proc{srv, relay, echo, back, rej} {
		if err := p.Wait(runTimeout); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// A remote sender's Cred at the receiver: the sending host, program and
// pid there, with no local pid, uid or gid; the sender is the gateway.
func TestRemoteCred(t *testing.T) {
	h := newTwoHosts(t)
	p := h.startHelper(t, false, "cred", "CRED", "-")
	r := h.send(t, "-n", "CTL", "-r", "b:CRED", "-m", "who am I?")
	want := "cred {PID:0 UID:-1 GID:-1 Host:a Program:CTL HostPID:"
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, " true sender _gosimpl_gw ") {
		t.Errorf("fcsend -n CTL -r b:CRED: exit %d, stdout %q, stderr %q; want %q..., true, from the gateway", r.code, r.stdout, r.stderr, want)
	}
	if err := p.Wait(runTimeout); err != nil {
		t.Error(err)
	}
}

// The tools that take a name take a remote one: fclocator -locate b:SRV
// prints b's owner (and b:NOPE is not found); fcsub and fcpub on a, with
// -b b:BROKER, subscribe and publish through b's broker; fcslay b:SRV
// refuses, saying it signals this host's processes only.
func TestToolsRemoteNames(t *testing.T) {
	h := newTwoHosts(t)
	srv := h.recv(t, "-n", "SRV")
	broker := proctest.StartCmd(t, h.b.Command(context.Background(), bin("fcbroker"), "-n", "BROKER"))
	broker.Expect("BROKER", lineTimeout)
	run := func(tool string, args ...string) result {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		return runCmd(t, h.a.Command(ctx, bin(tool), args...))
	}
	// fclocator hears of b's names within a heartbeat or two.
	deadline := time.Now().Add(lineTimeout)
	for {
		r := run("fclocator", "-locate", "b:SRV")
		if r.code == 0 {
			if !strings.Contains(r.stdout, "b:SRV ") || !strings.Contains(r.stdout, fmt.Sprint(srv.PID())) {
				t.Errorf("fclocator -locate b:SRV: %q, want b:SRV's row with pid %d", r.stdout, srv.PID())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fclocator -locate b:SRV: exit %d, stderr %q", r.code, r.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling a's view of b's names, bounded above
	}
	if r := run("fclocator", "-locate", "b:NOPE"); r.code != 1 || !strings.Contains(r.stderr, "name not found") {
		t.Errorf("fclocator -locate b:NOPE: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run("fcslay", "b:SRV"); r.code != 1 || !strings.Contains(r.stderr, "b:SRV is on host b: fcslay signals processes of this host only") {
		t.Errorf("fcslay b:SRV on a: exit %d, stderr %q", r.code, r.stderr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	sub := proctest.StartCmd(t, h.a.Command(ctx, bin("fcsub"), "-b", "b:BROKER", "-count", "1", "plant/#"))
	sub.Expect("subscribed", lineTimeout)
	if r := run("fcpub", "-b", "b:BROKER", "-t", "plant/temp", "-m", "21.5"); r.code != 0 {
		t.Errorf("fcpub -b b:BROKER: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := sub.Expect("plant/temp", lineTimeout); !strings.Contains(got, "21.5") {
		t.Errorf("fcsub -b b:BROKER: %q", got)
	}
	if err := sub.Wait(runTimeout); err != nil {
		t.Error(err)
	}
	for _, p := range []*proctest.Proc{srv, broker} {
		p.Signal(15)
		p.Wait(runTimeout)
	}
}

// surPeer is the helper's surpeer mode.
func surPeer(addr, target string) int {
	c, err := net.DialTimeout("tcp", addr, lineTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(lineTimeout))
	write := func(f surwire.Frame, reply bool) {
		b, _ := surwire.AppendFrame(nil, surwire.Char, &f, reply)
		c.Write(b)
	}
	write(surwire.Frame{Token: surwire.TokenNameLocate, RProgram: target, SHost: "chost"}, false)
	f, err := surwire.ReadFrame(c, surwire.Char, true, 1<<20)
	if err != nil {
		fmt.Println("closed")
		return 0
	}
	if f.Result != 0 {
		fmt.Println("not found")
		return 0
	}
	write(surwire.Frame{Token: surwire.TokenSend, YBytes: 100, Data: []byte("hello")}, false)
	if f, err = surwire.ReadFrame(c, surwire.Char, false, 1<<20); err != nil {
		fmt.Println("closed")
		return 0
	}
	fmt.Printf("reply %s\n", f.Data)
	write(surwire.Frame{Token: surwire.TokenClose}, false)
	return 0
}

// A C SIMPL host's surrogate reaches a receiver on b across a network:
// b's gateway takes connections from a (on its -csimpl-tcp-allow list)
// and closes those from c at once. b's policy file, which names a C SIMPL
// host by its address, lets a reach SRV and no other name.
func TestCSimplTCPHosts(t *testing.T) {
	lab := netlab.New(t, "a", "b", "c")
	a, b, c := lab.Host("a"), lab.Host("b"), lab.Host("c")
	policy := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(policy, []byte("allow "+a.Addr()+" SRV\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := proctest.StartCmd(t, b.Command(context.Background(), bin("fcgate"), "-listen", "127.0.0.1:4222",
		"-csimpl-tcp", b.Addr()+":8001", "-csimpl-tcp-allow", a.Addr(), "-policy", policy))
	gw.Expect("C SIMPL surrogates", lineTimeout)
	srv := proctest.StartCmd(t, b.Command(context.Background(), bin("fcrecv"), "-n", "SRV", "-count", "1", "-reply", "from b"))
	srv.Expect("attached", lineTimeout)
	other := proctest.StartCmd(t, b.Command(context.Background(), bin("fcrecv"), "-n", "OTHER", "-count", "1"))
	other.Expect("attached", lineTimeout)
	peer := func(h *netlab.Host, name ...string) string {
		to := "SRV"
		if len(name) > 0 {
			to = name[0]
		}
		cmd := h.Command(context.Background(), os.Args[0], "-test.run=^$", b.Addr()+":8001", to)
		cmd.Env = append(cmd.Env, helperEnv+"=surpeer")
		r := runCmd(t, cmd)
		if r.code != 0 {
			t.Fatalf("the C SIMPL peer on %s: exit %d, stderr %q", h.Name(), r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	if got := peer(a); got != "reply from b" {
		t.Errorf("a's surrogate: %q, want the reply", got)
	}
	if got := peer(c); got != "closed" {
		t.Errorf("c's surrogate, not allowed: %q, want the connection closed", got)
	}
	if got := peer(a, "OTHER"); got != "not found" {
		t.Errorf("a's surrogate to a name the policy keeps from it: %q, want not found", got)
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Error(err)
	}
	other.Signal(syscall.SIGTERM) // never sent to: it detaches and exits
	if err := other.Wait(runTimeout); err != nil {
		t.Error(err)
	}
	stopGate(t, gw)
}
