package simpl_test

// A remote sender's origin across real processes: the host's gateway
// (the process holding its name) Sends with transport.WithOrigin, and the
// receiver's Message.Cred reports that origin, with no local pid; another
// process that claims an origin is reported as itself; the gateway's
// Send through FIFOs, which carry no origin, has no credentials at all.

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/gosimpl/gosimpl/transport"
)

var originRoles = map[string]simpltest.Role{
	"origin-send": roleOriginSend,
}

// farOrigin is the origin the helpers claim.
var farOrigin = transport.Origin{Host: "far.example", Name: "PROG#2", PID: 4242}

// roleOriginSend TRANSPORT NAME TO: attach NAME with TRANSPORT, locate TO,
// send "who?" claiming farOrigin, print "reply R".
func roleOriginSend(args []string) error {
	ch, err := simpl.Attach(args[1], withTransport(parseTransport(args[0])))
	if err != nil {
		return err
	}
	defer ch.Close()
	to, err := ch.Locate(context.Background(), args[2])
	if err != nil {
		return err
	}
	defer to.Close()
	simpltest.Ready()
	ctx, cancel := context.WithTimeout(context.Background(), credTime)
	defer cancel()
	reply := make([]byte, 16)
	n, err := to.Send(transport.WithOrigin(ctx, &farOrigin), []byte("who?"), reply)
	if err != nil {
		return err
	}
	fmt.Printf("reply %s\n", reply[:n])
	return nil
}

func TestCredOrigin(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "ORIGIN", simpl.WithTransport())
	for _, tc := range []struct {
		name, tx, as string
		want         func(pid int) (simpl.Cred, bool)
	}{
		{"the gateway, shm", "shm", netwire.GatewayName, func(int) (simpl.Cred, bool) {
			return simpl.Cred{PID: 0, UID: -1, GID: -1, Host: farOrigin.Host, Program: farOrigin.Name, HostPID: farOrigin.PID}, true
		}},
		{"another process, shm", "shm", "FORGER", func(pid int) (simpl.Cred, bool) {
			return simpl.Cred{PID: pid, UID: os.Getuid(), GID: os.Getgid()}, true
		}},
		{"the gateway, fifo", "fifo", netwire.GatewayName, func(int) (simpl.Cred, bool) { return simpl.Cred{}, false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := simpltest.Start(t, "origin-send", permEnv(dir), tc.tx, tc.as, "ORIGIN")
			ctx := simpltest.Context(t, credTime)
			m, err := srv.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, wantOK := tc.want(p.PID())
			if c, ok := m.Cred(); c != want || ok != wantOK {
				t.Errorf("Cred() = %+v, %v; want %+v, %v", c, ok, want, wantOK)
			}
			if c, _ := m.Cred(); c.Remote() != (want.Host != "") {
				t.Errorf("Cred().Remote() = %v", c.Remote())
			}
			if name, pid := m.Sender(); name != tc.as || pid != p.PID() {
				t.Errorf("Sender() = %s, %d; want %s, %d", name, pid, tc.as, p.PID())
			}
			if err := m.Reply([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			p.Expect("reply ok", credTime)
			if err := p.Wait(credTime); err != nil {
				t.Fatal(err)
			}
		})
	}
}
