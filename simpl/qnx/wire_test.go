package qnx

import (
	"bytes"
	"testing"
)

// FuzzDecodeHeader: no input crashes the decoder, and every header it
// accepts encodes back to the same 16 bytes.
func FuzzDecodeHeader(f *testing.F) {
	for _, h := range []header{
		{kind: kindMsg, a: 0x40000001, b: 7, c: 1234},
		{kind: kindPulse, a: -33, b: -1, c: 10},
		{kind: kindConnect, a: 5, b: 1},
		{kind: kindDisconnect},
		{kind: kindUnblock, a: 9, b: 0x50, c: 110},
	} {
		b := make([]byte, headerSize+3)
		putHeader(b, h)
		f.Add(b)
	}
	f.Add([]byte("QN"))
	f.Add([]byte{'Q', 'N', wireVersion, 2, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		if h.kind == kindPulse && (h.a < -128 || h.a > 127) {
			t.Fatalf("pulse code %d accepted", h.a)
		}
		out := make([]byte, headerSize)
		putHeader(out, h)
		if !bytes.Equal(out, b[:headerSize]) {
			t.Fatalf("%x decodes to %+v, which encodes as %x", b[:headerSize], h, out)
		}
	})
}

// FuzzDecodeReplyHeader: no input crashes the reply decoder, and what it
// accepts encodes back the same.
func FuzzDecodeReplyHeader(f *testing.F) {
	b := make([]byte, replyHeaderSize)
	putReplyHeader(b, replyError, 110)
	f.Add(b)
	f.Add([]byte{replyOK, 0, 0, 0, 1, 0, 0, 0, 'x'})
	f.Add([]byte{7})
	f.Fuzz(func(t *testing.T, b []byte) {
		how, v, ok := decodeReplyHeader(b)
		if !ok {
			return
		}
		out := make([]byte, replyHeaderSize)
		putReplyHeader(out, how, v)
		if !bytes.Equal(out, b[:replyHeaderSize]) {
			t.Fatalf("%x round-trips as %x", b[:replyHeaderSize], out)
		}
	})
}

// The pulse layout round-trips, and a short buffer is EFAULT.
func TestPulseLayout(t *testing.T) {
	b := make([]byte, PulseSize)
	p := Pulse{Code: -33, Value: -5, Scoid: 0x10000003}
	if err := putPulse(b, p); err != nil {
		t.Fatal(err)
	}
	if got, ok := DecodePulse(b); !ok || got != p {
		t.Fatalf("got %+v %v, want %+v", got, ok, p)
	}
	if err := putPulse(b[:PulseSize-1], p); err != EFAULT {
		t.Fatalf("short buffer: %v, want EFAULT", err)
	}
	if _, ok := DecodePulse(b[:3]); ok {
		t.Fatal("short pulse decoded")
	}
}
