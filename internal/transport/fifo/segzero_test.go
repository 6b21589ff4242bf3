package fifo

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
)

// Segment id 0, the first of a fresh IPC namespace (a container's), is a
// segment like any other when the reader resynchronises: a claimed
// request in it is found in a misaligned stretch. Before, the probe took
// id 0 for no segment and dropped such a request (helper-58).
func TestSegmentZero(t *testing.T) {
	if inPrivateIPC(t) {
		return
	}
	if os.Getenv(privateIPCEnv) == "" {
		t.Skip("no IPC namespace of its own (not root): segment 0 is someone else's")
	}
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := attachT(t, reg, "SRV", 0o600)
	_, cli := attachCLI(t, dir)
	c, err := cli.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := cli.getSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.putSlot(s)
	if err := cli.grow(s, 64); err != nil {
		t.Fatal(err)
	}
	if s.seg.id != 0 {
		t.Skipf("the namespace's first segment has id %d", s.seg.id)
	}
	s.seg.writeHeader(s.whom, cli.pid, 64, 1, 1)
	s.seg.setClaim(c.token)
	if got := srv.probeSegment(0); got != probeClaimed {
		t.Errorf("probe of segment 0, claimed for the receiver: %d, want probeClaimed (%d)", got, probeClaimed)
	}
	// A stray byte, then segment 0's doorbell: the doorbell is found.
	stretch := binary.NativeEndian.AppendUint32([]byte{7}, 0)
	found := false
	for _, w := range srv.findWords(stretch, srv.prober()) {
		found = found || w.v == 0 && w.off == 1
	}
	if !found {
		t.Errorf("segment 0's doorbell after a stray byte not found in %x", stretch)
	}
}
