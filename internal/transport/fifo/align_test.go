package fifo

import (
	"testing"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
)

// The endpoint counts events in 64-bit atomics, which on 32-bit ARM
// (GOARCH=arm, which CI runs under qemu-arm) must be 8-byte aligned. The
// segments' 64-bit claim words are checked where they are used
// (sys.Uint64At refuses an unaligned address), by every test that sends.
func TestAtomics64Aligned(t *testing.T) {
	reg, err := naming.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ep, err := Attach("ALIGN", Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	if n := proctest.CheckAtomics64Aligned(t, ep); n < 3 {
		t.Errorf("found %d 64-bit atomics in Endpoint, want at least its 3 counters", n)
	}
}
