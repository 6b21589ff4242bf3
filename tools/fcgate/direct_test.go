package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/nats-io/nats-server/v2/server"
)

// A program straight to NATS (simpl/netdirect, GOSIMPL_NATS): on h1 no
// gateway runs; fcsend, whose NATS user may only send as h1 and read its
// own answers (a program's permissions, not a gateway's), reaches SRV on
// h2 through h2's gateway, and SRV sees it come from h1's fcsend; its
// gateway's name leaves h1's FIFO directory with it (proctest.Dir checks).
// A Send beyond the servers, or refused by them, fails in one line.
func TestDirect(t *testing.T) {
	keys := t.TempDir()
	seed1, pub1 := writeSeed(t, keys, "h1")
	seed2, pub2 := writeSeed(t, keys, "h2")
	pubs, _ := netwire.Permissions("h1")
	program := &server.NkeyUser{Nkey: pub1, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{pubs[0], netwire.InboxPrefix + ">"}},
		Subscribe: &server.SubjectPermission{Allow: []string{gateway.ProgramInbox("h1") + ".>"}},
	}}
	url := testServer(t, server.Options{Nkeys: []*server.NkeyUser{program, hostUser(pub2, "h2")}})

	dir1, dir2 := proctest.Dir(t), proctest.Dir(t)
	gw2, _ := startGate(t, local(t, dir2, "h2", "fcgate", "-nats", url, "-nkey", seed2))
	send := func(env []string, args ...string) result {
		cmd := local(t, dir1, "h1", "fcsend", args...)
		cmd.Env = append(cmd.Env, env...)
		return runCmd(t, cmd)
	}
	direct := []string{"GOSIMPL_NATS=" + url, "GOSIMPL_NATS_NKEY=" + seed1}
	cred := exec.Command(os.Args[0], "-test.run=^$", "CRED", "-")
	cred.Env = append(os.Environ(), "FIFO_PATH="+dir2, "HOSTNAME=h2", helperEnv+"=cred")
	p := proctest.StartCmd(t, cred)
	p.Expect("ready", lineTimeout)
	r := send(direct, "-n", "CTL", "-r", "h2:CRED", "-m", "straight")
	want := "cred {PID:0 UID:-1 GID:-1 Host:h1 Program:CTL HostPID:"
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("fcsend -n CTL -r h2:CRED straight to NATS: exit %d, stdout %q, stderr %q; want %q...", r.code, r.stdout, r.stderr, want)
	}
	if err := p.Wait(runTimeout); err != nil {
		t.Errorf("the receiver on h2: %v", err)
	}
	for _, c := range []struct {
		why  string
		env  []string
		want string
	}{
		{"no gateway and no GOSIMPL_NATS", nil, "no gateway runs on this host (start fcgate)"},
		{"no key", []string{"GOSIMPL_NATS=" + url}, "Authorization Violation"},
		{"nothing listening", []string{"GOSIMPL_NATS=nats://127.0.0.1:1"}, "GOSIMPL_NATS: connecting to NATS at nats://127.0.0.1:1"},
		{"beyond loopback without TLS", []string{"GOSIMPL_NATS=nats://192.0.2.1:4222"}, "refusing to run insecurely: the connection has no TLS or no authentication: set GOSIMPL_NATS_CA"},
	} {
		r := send(c.env, "-r", "h2:SRV", "-m", "x")
		if r.code != 1 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("fcsend with %s: exit %d, stderr %q; want one line saying %q", c.why, r.code, r.stderr, c.want)
		}
	}
	stopGate(t, gw2)
}
