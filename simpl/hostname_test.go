package simpl_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A name with this host's own name in it ("vm:SRV", as C SIMPL takes the
// host's name: HOSTNAME, else /etc/hostname), or with an empty host
// ("::SRV"), is looked up locally, as C SIMPL does; another host's goes to
// the network transport (which needs this host's gateway, not running
// here), and so do "localhost" and 127.0.0.1, which C SIMPL sends through
// the network. A Channel without the network transport says it cannot.
func TestLocalHostNames(t *testing.T) {
	t.Setenv("HOSTNAME", "vm")
	dir := simpltest.Dir(t)
	srv := simpltest.Start(t, "server", env(dir), "SRV")
	cli := attach(t, dir, "CLI")
	local := attach(t, dir, "LOCAL", simpl.WithTransport(simpl.FIFO, simpl.SHM))
	ctx := simpltest.Context(t, testTimeout)
	for _, name := range []string{"vm:SRV", "::SRV", ":SRV", "_simplTCP:vm:SRV", ":vm:SRV"} {
		c, err := cli.Locate(ctx, name)
		if err != nil {
			t.Errorf("Locate(%q): %v", name, err)
			continue
		}
		if c.PID() != srv.PID() || c.Name() != name {
			t.Errorf("Locate(%q) reached pid %d as %q, want pid %d", name, c.PID(), c.Name(), srv.PID())
		}
		reply := make([]byte, 8)
		if n, err := c.Send(ctx, []byte{opEcho, 'a'}, reply); err != nil || string(reply[:n]) != "b" {
			t.Errorf("Send through %q: %q, %v", name, reply[:n], err)
		}
		c.Close()
	}
	for _, name := range []string{"other:SRV", "localhost:SRV", "127.0.0.1:SRV", "_simplTCP:other:SRV"} {
		if c, err := cli.Locate(ctx, name); !errors.Is(err, remoteErr()) || remoteErr() == simpl.ErrUnreachable && !strings.Contains(err.Error(), "no gateway") {
			t.Errorf("Locate(%q) = %v, %v; want %v (no gateway)", name, c, err, remoteErr())
		}
		if c, err := local.Locate(ctx, name); !errors.Is(err, simpl.ErrNotSupported) {
			t.Errorf("WithTransport(fifo, shm): Locate(%q) = %v, %v; want ErrNotSupported", name, c, err)
		}
	}
	for _, name := range []string{"a:b:c:d", "vm:", "h:" + string(make([]byte, 40))} {
		if _, err := cli.Locate(ctx, name); !errors.Is(err, simpl.ErrBadName) {
			t.Errorf("Locate(%q): %v, want ErrBadName", name, err)
		}
	}
	cli.Close()
	local.Close()
	srv.Kill()
	srv.Wait(5 * time.Second)
	reap(t, dir)
}
