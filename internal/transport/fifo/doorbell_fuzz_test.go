package fifo

import (
	"encoding/binary"
	"testing"
)

// FuzzFindWords: findWords, which picks the doorbells out of a misaligned
// stretch drained from the receive FIFO (bytes any writer of the FIFO
// chose), never crashes, and for any stretch and any verdict on the
// segments it names delivers only what resync.go promises: words that lie
// in the stretch and read as they are delivered, in order of offset,
// each one plausible (a proxy up to 65535, a segment without a trailer,
// or a segment claimed for this receiver), every claimed segment among
// them wherever it sits, and a non-negative count of what it dropped.
// The probe is the fuzzer's: mix decides what each segment id is to this
// receiver (none, C, spent, claimed), the same answer for the same id, as
// the memoised prober gives.
func FuzzFindWords(f *testing.F) {
	f.Add(bells(-3, 0x10002, -4), uint8(0))
	f.Add(cat(bells(-3), []byte{7}, bells(5, -200)), uint8(1))
	f.Add(cat(bells(1, 2), []byte("ab"), bells(3, 4, 5)), uint8(2))
	f.Add(cat([]byte("xyz"), bells(-70000, 6, 7)), uint8(3))
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{1, 2, 3}, uint8(0))
	f.Add(bells(-2147483648, 0, -65535, -65536, -255, -256), uint8(5))
	f.Fuzz(func(t *testing.T, stretch []byte, mix uint8) {
		if len(stretch) > resyncMax {
			stretch = stretch[:resyncMax]
		}
		probe := func(v int32) int {
			if v < 0 {
				return probeNone // probeSegment's answer for a negative id
			}
			return probeNone + int((uint32(v)+uint32(mix))%4)
		}
		var e Endpoint
		got := e.findWords(stretch, probe)
		if d := e.dropped.Load(); d < 0 {
			t.Fatalf("% x: dropped %d", stretch, d)
		}
		found := map[int32]bool{}
		for i, w := range got {
			if w.off < 0 || w.off+4 > len(stretch) {
				t.Fatalf("% x: word at %d outside the %d-byte stretch", stretch, w.off, len(stretch))
			}
			if v := int32(binary.NativeEndian.Uint32(stretch[w.off:])); v != w.v {
				t.Fatalf("% x: word at %d delivered as %d, reads %d", stretch, w.off, w.v, v)
			}
			if i > 0 && w.off <= got[i-1].off {
				t.Fatalf("% x: words out of order: %v", stretch, got)
			}
			switch {
			case w.v < 0 && rateProxyWord(w.v) == rateNone:
				t.Fatalf("% x: delivered %d, no proxy a sender rings", stretch, w.v)
			case w.v >= 0 && probe(w.v) != probeC && probe(w.v) != probeClaimed:
				t.Fatalf("% x: delivered segment %d, which this receiver cannot serve (probe %d)", stretch, w.v, probe(w.v))
			}
			found[w.v] = true
		}
		for off := 0; off+4 <= len(stretch); off++ {
			if v := int32(binary.NativeEndian.Uint32(stretch[off:])); v >= 0 && probe(v) == probeClaimed && !found[v] {
				t.Fatalf("% x: claimed segment %d at %d not delivered: %v", stretch, v, off, got)
			}
		}
	})
}
