package fifo

import (
	"encoding/binary"
	"slices"
	"testing"
)

// bells is doorbells as senders write them.
func bells(vs ...int32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.NativeEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// rateBy rates words as the reader does, with segs the existing segments
// without a claim and claimed those with this receiver's.
func rateBy(segs, claimed []int32) func(int, int32) int {
	return func(_ int, v int32) int {
		switch {
		case v < 0:
			return rateProxyWord(v)
		case slices.Contains(claimed, v):
			return rateClaimed
		case slices.Contains(segs, v):
			return rateSegment
		}
		return rateNone
	}
}

func values(ws []word) []int32 {
	var vs []int32
	for _, w := range ws {
		vs = append(vs, w.v)
	}
	return vs
}

// TestSplitStretch: the doorbells of a misaligned stretch, as resync
// finds them after a stray write.
func TestSplitStretch(t *testing.T) {
	const seg, seg2 = 0x10002, 0x2a0007
	for _, tc := range []struct {
		name        string
		buf         []byte
		segs, claim []int32
		want        []int32
		dropped     int
	}{
		{"stray alone", []byte{7}, nil, nil, nil, 0},
		{"stray, then proxy 3", cat([]byte{7}, bells(-3)), nil, nil, []int32{-3}, 0},
		{"proxy 3, then stray", cat(bells(-3), []byte{7}), nil, nil, []int32{-3}, 0},
		{"stray between proxies", cat(bells(-3), []byte{7}, bells(-4)), nil, nil, []int32{-3, -4}, 0},
		{"6 junk bytes, then a request and proxy 3", cat([]byte("junk!!"), bells(seg, -3)), []int32{seg}, nil, []int32{seg, -3}, 1},
		{"requests around a stray", cat(bells(seg), []byte{1, 2, 3}, bells(seg2, -9)), []int32{seg, seg2}, nil, []int32{seg, seg2, -9}, 0},
		{"claimed request after a stray", cat([]byte{0xff}, bells(seg)), nil, []int32{seg}, []int32{seg}, 0},
		{"aligned", bells(seg, -1), []int32{seg}, nil, []int32{seg, -1}, 0},
		{"large proxy is dropped", cat([]byte{7}, bells(-1<<20)), nil, nil, nil, 1},
		// Two explanations as good: the word they disagree on goes.
		{"ambiguous", cat([]byte{0xfb}, bells(-1)[:3], []byte{0xff}), nil, nil, nil, 1},
	} {
		got, dropped := splitStretch(tc.buf, rateBy(tc.segs, tc.claim), nil)
		if !slices.Equal(values(got), tc.want) || dropped != tc.dropped {
			t.Errorf("%s: % x: %v, dropped %d; want %v, dropped %d", tc.name, tc.buf, values(got), dropped, tc.want, tc.dropped)
		}
	}
}

// FuzzSplitStretch: for doorbells with one stray write of 1 to 3 bytes
// among them, anywhere at a doorbell boundary, and a rating that knows
// the doorbells, every doorbell is found and nothing else; and for any
// stretch and rating, what is delivered is words of one split, in order.
func FuzzSplitStretch(f *testing.F) {
	f.Add(bells(-3, 0x10002), []byte{7}, uint8(0))
	f.Add(bells(-3, -4, -5), []byte("ab"), uint8(2))
	f.Add([]byte{}, []byte("xyz"), uint8(0))
	f.Add(bells(1, 2, 3, 4), []byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, words, stray []byte, at uint8) {
		words = words[:len(words)/4*4]
		stray = stray[:len(stray)%4]
		n := len(words) / 4
		k := int(at) % (n + 1)
		buf := cat(words[:4*k], stray, words[4*k:])
		truth := map[int]int32{}
		for i := range n {
			off := 4 * i
			if i >= k {
				off += len(stray)
			}
			truth[off] = int32(binary.NativeEndian.Uint32(words[4*i:]))
		}
		oracle := func(off int, v int32) int {
			if w, ok := truth[off]; ok && w == v {
				return 1
			}
			return 0
		}
		got, dropped := splitStretch(buf, oracle, nil)
		if len(got) != n || dropped != 0 {
			t.Fatalf("% x (stray %d bytes at word %d): %d words, dropped %d; want %d", buf, len(stray), k, len(got), dropped, n)
		}
		for _, w := range got {
			if truth[w.off] != w.v {
				t.Fatalf("% x: word %d at %d is not a doorbell", buf, w.v, w.off)
			}
		}

		// Any rating, here one the bytes decide.
		arbitrary := func(off int, v int32) int { return int(uint32(v)+uint32(off)) % 3 }
		got, dropped = splitStretch(buf, arbitrary, nil)
		per := len(buf) / 4
		if dropped < 0 || len(got)+dropped != per {
			t.Fatalf("% x: %d words and %d dropped of %d", buf, len(got), dropped, per)
		}
		tl := len(buf) % 4
		for i, w := range got {
			if i > 0 && w.off <= got[i-1].off {
				t.Fatalf("% x: words out of order: %v", buf, got)
			}
			if w.off%4 != 0 && w.off%4 != tl {
				t.Fatalf("% x: word at %d fits no split", buf, w.off)
			}
			if i > 0 && got[i-1].off%4 != 0 && w.off%4 == 0 {
				t.Fatalf("% x: words of two splits: %v", buf, got)
			}
			if v := int32(binary.NativeEndian.Uint32(buf[w.off:])); v != w.v || arbitrary(w.off, v) == 0 {
				t.Fatalf("% x: word %d at %d", buf, w.v, w.off)
			}
		}
	})
}
