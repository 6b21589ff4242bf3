package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/nats-io/nats.go"
)

// A receiving gateway with a policy file serves only what it allows,
// deny by default: on b, a's program CTL may reach ACT_*, any program of
// a may reach LOG, nothing else. Denied requests (Locate and Send alike)
// fail with the policy's error, are counted, and reach no receiver.
func TestPolicyAcrossHosts(t *testing.T) {
	lab := netlab.New(t, "a", "b")
	h := &twoHosts{lab: lab, a: lab.Host("a"), b: lab.Host("b")}
	policy := filepath.Join(t.TempDir(), "policy")
	if err := os.WriteFile(policy, []byte("allow a:CTL ACT_*\nallow a LOG\nallow a NOPE # for waitRoute\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.gwA, _ = startGate(t, h.a.Command(context.Background(), bin("fcgate"),
		"-listen", h.a.Addr()+":4222", "-cluster", h.a.Addr()+":6222", "-insecure"))
	h.gwB, _ = startGate(t, h.b.Command(context.Background(), bin("fcgate"), "-v", "-policy", policy,
		"-listen", h.b.Addr()+":4222", "-cluster", h.b.Addr()+":6222", "-routes", "nats://"+h.a.Addr()+":6222", "-insecure"))
	h.waitRoute(t)

	act := h.recv(t, "-n", "ACT_1", "-count", "1")
	log := h.recv(t, "-n", "LOG", "-count", "1")
	for _, c := range []struct {
		args []string
		want string // stdout, or "" for the policy's refusal
	}{
		{[]string{"-n", "CTL", "-r", "b:ACT_1", "-m", "move"}, "move\n"},
		{[]string{"-n", "OTHER", "-r", "b:ACT_1", "-m", "not you"}, ""},
		{[]string{"-n", "CTL", "-r", "b:LOG", "-m", "logged"}, "logged\n"},
		{[]string{"-n", "CTL", "-r", "b:SECRET", "-m", "x"}, ""},
	} {
		r := h.send(t, c.args...)
		switch {
		case c.want != "" && (r.code != 0 || r.stdout != c.want):
			t.Errorf("fcsend %v: exit %d, stdout %q, stderr %q; want %q", c.args, r.code, r.stdout, r.stderr, c.want)
		case c.want == "" && (r.code != 1 || !strings.Contains(r.stderr, "the remote host's policy")):
			t.Errorf("fcsend %v: exit %d, stderr %q; want the remote host's policy refusing", c.args, r.code, r.stderr)
		}
	}
	// Each receiver saw exactly its one allowed request.
	for _, c := range []struct {
		p    *proctest.Proc
		want string
	}{{act, ": move"}, {log, ": logged"}} {
		if got := c.p.Expect("message from", lineTimeout); !strings.HasSuffix(got, c.want) {
			t.Errorf("receiver: %q, want a message ending %q", got, c.want)
		}
		if err := c.p.Wait(runTimeout); err != nil {
			t.Errorf("receiver: %v", err)
		}
	}

	// The policy is read again when its file changes: written in place,
	// OTHER may reach ACT_1 from then on; replaced (renamed over) by a
	// file it cannot parse, the policy in force stays.
	waitStderr := func(want string) {
		t.Helper()
		deadline := time.Now().Add(lineTimeout)
		for !strings.Contains(h.gwB.Stderr(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("b's gateway said no %q within %v; stderr %q", want, lineTimeout, h.gwB.Stderr())
			}
			time.Sleep(10 * time.Millisecond) // polling its stderr, bounded
		}
	}
	if err := os.WriteFile(policy, []byte("allow a:CTL ACT_*\nallow a:OTHER ACT_1\nallow a LOG\nallow a NOPE\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStderr("read again: 4 rules")
	act2 := h.recv(t, "-n", "ACT_1", "-count", "1")
	if r := h.send(t, "-n", "OTHER", "-r", "b:ACT_1", "-m", "now you"); r.code != 0 || r.stdout != "now you\n" {
		t.Errorf("OTHER to b:ACT_1 once allowed: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := act2.Wait(runTimeout); err != nil {
		t.Errorf("receiver: %v", err)
	}
	bad := policy + ".new"
	if err := os.WriteFile(bad, []byte("allow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad, policy); err != nil {
		t.Fatal(err)
	}
	waitStderr("keeping the policy in force")
	// Still the last good policy: OTHER may not reach SECRET (no
	// policy at all would say "not found": nobody holds it).
	if r := h.send(t, "-n", "OTHER", "-r", "b:SECRET", "-m", "x"); r.code != 1 || !strings.Contains(r.stderr, "the remote host's policy") {
		t.Errorf("OTHER to b:SECRET under the kept policy: exit %d, stderr %q; want the policy refusing", r.code, r.stderr)
	}

	h.gwB.Signal(15)
	got := h.gwB.Expect("fcgate: stopped: ", lineTimeout)
	// Denied: OTHER's Locate of ACT_1, CTL's of SECRET, OTHER's of SECRET.
	if !strings.Contains(got, ", denied 3,") {
		t.Errorf("b's counts: %q; want 3 denied", got)
	}
	if err := h.gwB.Wait(runTimeout); err != nil {
		t.Errorf("b's gateway: %v", err)
	}
	stopGate(t, h.gwA)
}

// violations collects a NATS connection's permission violations.
type violations chan error

func (v violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		select {
		case v <- err:
		default:
		}
	}
}

// refused checks that what did was refused by the server's permissions,
// with an error naming want.
func (v violations) refused(t *testing.T, nc *nats.Conn, why, want string, did func() error) {
	t.Helper()
	if err := did(); err != nil {
		t.Fatalf("%s: %v", why, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("%s: flush: %v", why, err)
	}
	select {
	case err := <-v:
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: refused with %v, want it to name %q", why, err, want)
		}
	case <-time.After(lineTimeout):
		t.Errorf("%s: not refused", why)
	}
}

// Every client of a gateway's embedded server holds one host's NATS
// permissions. A program of the host (no certificate) may send as its
// host only, may not serve the host's names, nor read the gateway's
// answers; a client whose certificate names host b may serve b's names
// and send as b, and nothing for another host. What is refused never
// reaches a receiver.
func TestPermissions(t *testing.T) {
	dir := proctest.Dir(t)
	certs := t.TempDir()
	ca, caKey, caFile, _ := writeCert(t, certs, "ca", "", nil, nil)
	_, _, meCert, meKey := writeCert(t, certs, "other", "127.0.0.1", ca, caKey)
	_, _, bCert, bKey := writeCert(t, certs, "b", "127.0.0.1", ca, caKey)
	gw, line := startGate(t, local(t, dir, "me", "fcgate", "-host", "other", "-listen", "127.0.0.1:0",
		"-tls-cert", meCert, "-tls-key", meKey, "-tls-ca", caFile))
	url := line[strings.LastIndex(line, " ")+1:]
	recv := proctest.StartCmd(t, local(t, dir, "me", "fcrecv", "-n", "SRV", "-count", "1"))
	recv.Expect("attached SRV", lineTimeout)

	// b's client, by its certificate.
	v := make(violations, 8)
	nc, err := nats.Connect(url, nats.RootCAs(caFile), nats.ClientCert(bCert, bKey),
		nats.CustomInboxPrefix(netwire.Inbox("b")), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	noop := func(*nats.Msg) {}
	// It may serve b's names (nothing is refused)...
	if _, err := nc.Subscribe(netwire.HostSubjects("b"), noop); err != nil {
		t.Fatal(err)
	}
	// ...and not other's, nor read other's answers.
	v.refused(t, nc, "b serving other's names", netwire.HostSubjects("other"), func() error {
		_, err := nc.Subscribe(netwire.HostSubjects("other"), noop)
		return err
	})
	v.refused(t, nc, "b reading other's answers", netwire.Inbox("other"), func() error {
		_, err := nc.Subscribe(netwire.Inbox("other")+".>", noop)
		return err
	})
	// Sending as c is refused; as b, it is delivered.
	v.refused(t, nc, "b sending as c", netwire.Subject("other", "SRV", "c"), func() error {
		return nc.PublishMsg(&nats.Msg{Subject: netwire.Subject("other", "SRV", "c"), Reply: netwire.Inbox("b") + ".x", Header: fromHeader("c", "forged"), Data: []byte("forged")})
	})
	m := ask(t, nc, netwire.Subject("other", "SRV", "b"), fromHeader("b", "as-b"), []byte("as b"))
	if st := m.Header.Get(netwire.HeaderStatus); st != "ok" || string(m.Data) != "as b" {
		t.Errorf("b's Send: status %q, reply %q", st, m.Data)
	}
	if got := recv.Expect("message from", lineTimeout); !strings.HasSuffix(got, ": as b") {
		t.Errorf("fcrecv: %q, want b's request (and never the forged one)", got)
	}
	if err := recv.Wait(runTimeout); err != nil {
		t.Errorf("fcrecv: %v", err)
	}
	nc.Close()

	// A client without a certificate cannot even connect: the server
	// requires one of every client (-tls-ca).
	if nc, err := nats.Connect(url, nats.RootCAs(caFile)); err == nil {
		nc.Close()
		t.Error("a client without a certificate connected")
	}
	stopGate(t, gw)

	// Without TLS, on loopback: clients are this host's programs.
	gw, line = startGate(t, local(t, dir, "me", "fcgate", "-host", "other", "-listen", "127.0.0.1:0"))
	url = line[strings.LastIndex(line, " ")+1:]
	v = make(violations, 8)
	nc, err = nats.Connect(url, nats.CustomInboxPrefix(gateway.ProgramInbox("other")), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	v.refused(t, nc, "a program serving its host's names", netwire.HostSubjects("other"), func() error {
		_, err := nc.Subscribe(netwire.HostSubjects("other"), noop)
		return err
	})
	v.refused(t, nc, "a program reading its gateway's answers", netwire.Inbox("other"), func() error {
		_, err := nc.Subscribe(netwire.Inbox("other")+".>", noop)
		return err
	})
	v.refused(t, nc, "a program sending as another host", netwire.Subject("x", "SRV", "x"), func() error {
		return nc.Publish(netwire.Subject("x", "SRV", "x"), []byte("forged"))
	})
	nc.Close()
	stopGate(t, gw)
}

// fromHeader is the header of a Send request from program name on host.
func fromHeader(host, name string) nats.Header {
	h := reqHeader("send", name+"-"+time.Now().Format("150405.000000000"))
	h.Set(netwire.HeaderFromHost, host)
	h.Set(netwire.HeaderFromName, name)
	return h
}
