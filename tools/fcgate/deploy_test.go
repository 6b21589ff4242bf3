package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// testServer starts a NATS server in this process, of the test's own, on
// 127.0.0.1 (any free port), configured by o beyond that, stopped when
// the test ends; it returns its client URL.
func testServer(t *testing.T, o server.Options) string {
	t.Helper()
	o.Host, o.Port, o.NoLog, o.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, true
	ns, err := server.NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(lineTimeout) {
		t.Fatal("the NATS server is not ready")
	}
	return ns.ClientURL()
}

// hostUser is an nkey user with host's gateway permissions.
func hostUser(pub, host string) *server.NkeyUser {
	pubs, subs := netwire.Permissions(host)
	return &server.NkeyUser{Nkey: pub, Permissions: &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pubs},
		Subscribe: &server.SubjectPermission{Allow: subs},
	}}
}

// crossDeployment starts the gateways of hosts h1 and h2 on a deployment,
// each with its arguments after -nats url, and checks that a Send from h1
// reaches a receiver on h2 and comes back; it returns the gateways.
func crossDeployment(t *testing.T, url string, args1, args2 []string) (gw1, gw2 *proctest.Proc) {
	t.Helper()
	dir1, dir2 := proctest.Dir(t), proctest.Dir(t)
	gw1, line := startGate(t, local(t, dir1, "h1", "fcgate", append([]string{"-nats", url}, args1...)...))
	if !strings.Contains(line, "host h1 serving through ") {
		t.Errorf("ready line %q", line)
	}
	gw2, _ = startGate(t, local(t, dir2, "h2", "fcgate", append([]string{"-nats", url}, args2...)...))
	srv := proctest.StartCmd(t, local(t, dir2, "h2", "fcrecv", "-n", "SRV", "-count", "1"))
	srv.Expect("attached SRV", lineTimeout)
	if r := runCmd(t, local(t, dir1, "h1", "fcsend", "-r", "h2:SRV", "-m", "through the deployment")); r.code != 0 || r.stdout != "through the deployment\n" {
		t.Errorf("fcsend -r h2:SRV on h1: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("fcrecv on h2: %v", err)
	}
	return gw1, gw2
}

// refusedGate is a gateway of host h3 that must not start.
type refusedGate struct {
	why  string
	args []string
	want string // in its one line on stderr
}

// refuse checks that each gateway exits 1 with one line saying its want.
func refuse(t *testing.T, gates []refusedGate) {
	t.Helper()
	dir := proctest.Dir(t)
	for _, c := range gates {
		r := runCmd(t, local(t, dir, "h3", "fcgate", c.args...))
		if r.code != 1 || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("fcgate with %s: exit %d, stdout %q, stderr %q; want exit 1 and one line saying %q", c.why, r.code, r.stdout, r.stderr, c.want)
		}
	}
}

// jwtUser makes a credentials file (-creds) for a user of account, signed
// by the account's key, with the NATS permissions of host's gateway.
func jwtUser(t *testing.T, dir, host string, account nkeys.KeyPair) string {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	uc := jwt.NewUserClaims(pub)
	uc.Name = host
	pubs, subs := netwire.Permissions(host)
	uc.Pub.Allow.Add(pubs...)
	uc.Sub.Allow.Add(subs...)
	ujwt, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, host+".creds")
	if err := os.WriteFile(f, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Gateways on a NATS deployment that runs in operator mode over TLS, as a
// production one would: each connects with -nats tls://..., -tls-ca and
// -creds (a JWT credentials file whose user holds its host's permissions),
// and a Send crosses. Without the CA, or without credentials, or with
// another host's credentials, a gateway is refused, with one line.
func TestDeploymentTLSCreds(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caFile, _ := writeCert(t, dir, "ca", "", nil, nil)
	_, _, srvCert, srvKey := writeCert(t, dir, "nats", "127.0.0.1", ca, caKey)

	operator, _ := nkeys.CreateOperator()
	opPub, _ := operator.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	account, _ := nkeys.CreateAccount()
	accPub, _ := account.PublicKey()
	ac := jwt.NewAccountClaims(accPub)
	accJWT, err := ac.Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accPub, accJWT); err != nil {
		t.Fatal(err)
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey})
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Replace(testServer(t, server.Options{
		TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver,
		TLS: true, TLSConfig: tc, TLSTimeout: 2,
	}), "nats://", "tls://", 1)
	creds1 := jwtUser(t, dir, "h1", account)
	creds2 := jwtUser(t, dir, "h2", account)
	gw1, gw2 := crossDeployment(t, url, []string{"-tls-ca", caFile, "-creds", creds1}, []string{"-tls-ca", caFile, "-creds", creds2})
	refuse(t, []refusedGate{
		{"no CA", []string{"-nats", url, "-creds", creds1}, "certificate"},
		{"no credentials", []string{"-nats", url, "-tls-ca", caFile}, "Authorization Violation"},
		{"h1's credentials serving h3", []string{"-nats", url, "-tls-ca", caFile, "-creds", creds1}, "NATS refuses this gateway's subscriptions"},
	})
	stopGate(t, gw2)
	stopGate(t, gw1)
}
