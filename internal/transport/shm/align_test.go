package shm

import (
	"os"
	"testing"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// The bell's ready bits are 64-bit atomics in shared memory, and the
// endpoint's structs may hold 64-bit atomics of their own: on 32-bit ARM
// (GOARCH=arm, which CI runs under qemu-arm) one that is only 4-byte
// aligned faults or is not atomic. This checks the addresses of a real
// endpoint's, not offsets on paper.
func TestAtomics64Aligned(t *testing.T) {
	addr := Address(t.TempDir(), "align", os.Getpid())
	e, err := Listen(addr, "align", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i, w := range e.bell.ready {
		if a := uintptr(unsafe.Pointer(w)); a%8 != 0 {
			t.Errorf("bell ready word %d at %#x: not 8-byte aligned", i, a)
		}
		w.Add(0) // a 64-bit atomic on the shared word itself
	}
	n := proctest.CheckAtomics64Aligned(t, e)
	t.Logf("%d ready words, %d 64-bit atomics in Endpoint", len(e.bell.ready), n)
}
