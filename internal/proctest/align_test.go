package proctest

import (
	"sync/atomic"
	"testing"
)

// The walk finds 64-bit atomics in nested structs and arrays, after
// fields that would leave them 4-byte aligned on 32-bit ARM were Go not
// to align them, and the check passes on this GOARCH.
func TestCheckAtomics64Aligned(t *testing.T) {
	var v struct {
		a int32
		b atomic.Int64
		c [2]struct {
			d byte
			e atomic.Uint64
		}
		f *atomic.Int64 // not followed
		g atomic.Int32  // not 64-bit
	}
	if n := CheckAtomics64Aligned(t, &v); n != 3 {
		t.Errorf("checked %d 64-bit atomics, want 3", n)
	}
}
