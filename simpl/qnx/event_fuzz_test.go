package qnx

import (
	"bytes"
	"math/bits"
	"testing"
)

// FuzzDecodeEvent: DecodeEvent reads a SigEvent a client put in its
// request (any bytes the client chose). It never crashes, refuses only
// fewer than EventSize bytes, and every event it reads encodes back to
// the same EventSize bytes.
func FuzzDecodeEvent(f *testing.F) {
	for _, ev := range []SigEvent{
		{Notify: SIGEV_PULSE, Coid: 0x40000001, Priority: 10, Code: 5, Value: 1234},
		{Notify: SIGEV_UNBLOCK},
		{Notify: -1, Coid: -1, Priority: -1, Code: -128, Value: -2147483648},
	} {
		b := make([]byte, EventSize+2)
		EncodeEvent(b, ev)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, EventSize-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok := DecodeEvent(b)
		if ok != (len(b) >= EventSize) {
			t.Fatalf("% x (%d bytes): ok %v", b, len(b), ok)
		}
		if !ok {
			if ev != (SigEvent{}) {
				t.Fatalf("% x: refused, but read %+v", b, ev)
			}
			return
		}
		out := make([]byte, EventSize)
		if !EncodeEvent(out, ev) || !bytes.Equal(out, b[:EventSize]) {
			t.Fatalf("% x: read %+v, which encodes as % x", b[:EventSize], ev, out)
		}
	})
}

// FuzzDecodePulse: DecodePulse reads a struct _pulse from a receive
// buffer. It never crashes, refuses only fewer than PulseSize bytes, reads
// a code within -128..127 and a 16-bit type and subtype, and every pulse
// it reads encodes back (putPulse) to the same bytes but for the padding,
// which it does not read.
func FuzzDecodePulse(f *testing.F) {
	for _, p := range []Pulse{
		{Code: -1, Value: 7, Scoid: 3},
		{Type: 0xffff, Subtype: 0x1234, Code: 127, Value: -2147483648, Scoid: -1},
		{Code: -128},
	} {
		b := make([]byte, PulseSize+1)
		if err := putPulse(b, p); err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, PulseSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := DecodePulse(b)
		if ok != (len(b) >= PulseSize) {
			t.Fatalf("% x (%d bytes): ok %v", b, len(b), ok)
		}
		if !ok {
			return
		}
		if p.Code < -128 || p.Code > 127 || p.Type < 0 || p.Type > 0xffff || p.Subtype < 0 || p.Subtype > 0xffff {
			t.Fatalf("% x: read %+v", b, p)
		}
		out := make([]byte, PulseSize)
		if err := putPulse(out, p); err != nil {
			t.Fatal(err)
		}
		// The fields' bytes: type, subtype, code, value, scoid; the rest
		// is padding.
		w := bits.UintSize / 8
		for _, r := range [][2]int{{0, 5}, {8, 12}, {8 + w, 12 + w}} {
			if !bytes.Equal(out[r[0]:r[1]], b[r[0]:r[1]]) {
				t.Fatalf("% x: read %+v, which encodes as % x", b[:PulseSize], p, out)
			}
		}
	})
}
