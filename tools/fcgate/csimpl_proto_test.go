package main

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// A C program's name_locate("_simplTCP:HOST:NAME") through fcgate as its
// router keeps the protocol, as a gosimpl program's Locate of that name
// does: it goes to HOST's surrogateTcp through the gateway's bridge to C
// SIMPL hosts. Here HOST is 127.0.0.1, whose "surrogateTcp" is the same
// fcgate's -csimpl-tcp, so the C program's Send goes out over the
// surrogate protocol and back in to the C receiver SRV. Before, the
// protocol was dropped: the gateway looked for a gateway serving the host
// "127.0.0.1" over NATS, found none, and the name_locate failed.
func TestCSimplRouterTCPProtocol(t *testing.T) {
	cnet := buildCNet(t)
	dir := proctest.Dir(t)
	// A free port for -csimpl-tcp, which -csimpl-tcp-port must name too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	gw, _ := startGate(t, onHost(t, dir, "me", bin("fcgate"), "-v", "-host", "other", "-listen", "127.0.0.1:0",
		"-csimpl-tcp", "127.0.0.1:"+port, "-csimpl-tcp-port", port))
	defer stopGate(t, gw)
	gw.Expect("C SIMPL surrogates", lineTimeout)
	srv := proctest.StartCmd(t, onHost(t, dir, "me", cnet, "recv", "SRV", "1"))
	srv.Expect("ready", lineTimeout)
	got := lines(t, onHost(t, dir, "me", cnet, "locate", "CLI", "_simplTCP:127.0.0.1:SRV", "8"))
	expectLines(t, "cnet locate _simplTCP:127.0.0.1:SRV", got, []string{"located _gosimpl_s*", "ok 8 24", "done"})
	if got := srv.ReadLine(lineTimeout); got != "msg 8 24" {
		t.Errorf("the C receiver printed %q, want %q", got, "msg 8 24")
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("the C receiver: %v", err)
	}
	waitGone(t, dir, "_gosimpl_s", 5*time.Second)
}
