package fifo

import (
	"encoding/binary"
	"math"
	"testing"
	"unsafe"
)

// FuzzSegmentTrailer: a segment's trailer words (segment.go) are in memory
// every receiver it was rung at can write, and a relayer writes the
// holder. Whatever they hold, and whatever the segment's size, reading
// them never crashes: hasTrailer says yes only for a segment of whole
// 8-byte words with room for the header and trailer that ends with the
// magic; holder is a pid (0 to MaxInt32, 0 for a value no pid can be);
// holderIsPending only for a tagged word; and takeClaim takes the
// request only for the token the claim holds, once, leaving 0.
func FuzzSegmentTrailer(f *testing.F) {
	f.Add(uint16(0), uint64(holderTag), trailerMagic, uint64(0x1234), uint64(0x1234))
	f.Add(uint16(8), holderTag|holderPending|77, trailerMagic, uint64(5), uint64(6))
	f.Add(uint16(3), uint64(4242), trailerMagic, uint64(1), uint64(1))
	f.Add(uint16(0), uint64(math.MaxUint64), uint64(0), uint64(0), uint64(0))
	f.Add(uint16(4096), uint64(1)<<31, trailerMagic, uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, extra uint16, holder, magic, claim, token uint64) {
		size := HeaderSize + int(extra)%8192
		words := make([]uint64, (size+trailerSize+7)/8)
		mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), size)
		s := segment{mem: mem}
		if len(mem)%8 == 0 && len(mem) >= HeaderSize+trailerSize {
			n := len(mem)
			binary.NativeEndian.PutUint64(mem[n-offHolder:], holder)
			binary.NativeEndian.PutUint64(mem[n-offMagic:], magic)
			binary.NativeEndian.PutUint64(mem[n-offClaim:], claim)
		}
		want := len(mem)%8 == 0 && len(mem) >= HeaderSize+trailerSize && magic == trailerMagic
		if got := s.hasTrailer(); got != want {
			t.Fatalf("%d-byte segment, magic %#x: hasTrailer %v, want %v", len(mem), magic, got, want)
		}
		if !want {
			return
		}
		if p := s.holder(); p < 0 || p > math.MaxInt32 {
			t.Fatalf("holder word %#x: pid %d", holder, p)
		}
		if s.holderIsPending() && !tagged(holder) {
			t.Fatalf("holder word %#x: pending, but not tagged", holder)
		}
		took := s.takeClaim(token)
		if took != (claim == token) {
			t.Fatalf("claim %#x, token %#x: taken %v", claim, token, took)
		}
		if took && s.takeClaim(token) && token != 0 {
			t.Fatalf("claim %#x taken twice", claim)
		}
	})
}
