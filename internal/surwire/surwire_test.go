package surwire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// nib is v as a char-encoded field.
func nib(v int32) []byte {
	b := make([]byte, 8)
	Char.putInt(b, v)
	return b
}

// seq is n bytes from start, counting up (wrapping).
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cfield is s NUL-padded to size.
func cfield(s string, size int) []byte {
	b := make([]byte, size)
	copy(b, s)
	return b
}

// stale is n bytes of left-over memory (C SIMPL sends such).
func stale(n int) []byte { return bytes.Repeat([]byte{0xa5}, n) }

// The frames of shared/spec/simpl-network-wire.md section 6, as captured
// between C SIMPL's surrogates, each read as the frame it is, and each of
// ours written byte for byte as captured but for the fields the spec
// says C SIMPL leaves unset (stale, which readers ignore; we write zeros
// or the length): mask lists those byte ranges.
func TestCapturedFrames(t *testing.T) {
	zeros64 := make([]byte, 64)
	for _, c := range []struct {
		name     string
		enc      Encoding
		reply    bool // a NAME_LOCATE reply
		captured []byte
		want     Frame
		mask     [][2]int
	}{
		{"char SEND of 64 zeros", Char, false,
			cat(nib(3), nib(64), nib(64), []byte{0xa8, 0, 0, 0, 0, 0, 0, 0}, zeros64),
			Frame{Token: TokenSend, YBytes: 64, Data: zeros64}, [][2]int{{24, 32}}},
		{"char REPLY of 64 zeros", Char, false,
			cat(nib(4), nib(64), nib(64), []byte{0xa8, 0, 0, 0, 0, 0, 0, 0}, zeros64),
			Frame{Token: TokenReply, Data: zeros64}, [][2]int{{16, 32}}},
		{"char NAME_LOCATE", Char, false,
			cat(nib(2), []byte{0, 0x80, 0, 0, 0, 0, 0, 0}, []byte{0xf0, 0, 0, 0, 0, 0, 0, 0}, []byte{0xa8, 0, 0, 0, 0, 0, 0, 0},
				append([]byte("_tcp_Surrogate_R."), stale(HostLen-17)...), cfield("cRecv", ProgramLen), cfield("vm", HostLen)),
			Frame{Token: TokenNameLocate, RProgram: "cRecv", SHost: "vm"}, [][2]int{{8, 32}, {32, 84}}},
		{"char NAME_LOCATE reply, found", Char, true,
			cat(nib(2), []byte{0, 0x80, 0, 0, 0, 0, 0, 0}, []byte{0xf0, 0, 0, 0, 0, 0, 0, 0}, []byte{0xa8, 0, 0, 0, 0, 0, 0, 0}, nib(0)),
			Frame{Token: TokenNameLocate, Result: 0}, [][2]int{{8, 32}}},
		{"char CLOSE", Char, false,
			cat(nib(5), nib(64), nib(64), []byte{0xa8, 0, 0, 0, 0, 0, 0, 0}),
			Frame{Token: TokenClose}, [][2]int{{8, 32}}},
		{"binary SEND of 00..3f", Binary, false,
			cat([]byte{3, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}, seq(0, 64)),
			Frame{Token: TokenSend, YBytes: 64, Data: seq(0, 64)}, nil},
		{"binary REPLY of 80..bf", Binary, false,
			cat([]byte{4, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}, seq(0x80, 64)),
			Frame{Token: TokenReply, Data: seq(0x80, 64)}, [][2]int{{8, 12}}},
		{"binary NAME_LOCATE", Binary, false,
			cat([]byte{2, 0, 0, 0, 0x88, 0, 0, 0}, stale(8), cfield("localhost", HostLen), cfield("r4", ProgramLen), cfield("vm", HostLen)),
			Frame{Token: TokenNameLocate, RHost: "localhost", RProgram: "r4", SHost: "vm"}, [][2]int{{8, 16}}},
		{"binary NAME_LOCATE reply, found", Binary, true,
			[]byte{2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			Frame{Token: TokenNameLocate, Result: 0}, nil},
		{"binary NAME_LOCATE reply, not found", Binary, true,
			[]byte{2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
			Frame{Token: TokenNameLocate, Result: -1}, nil},
		{"binary PROXY 5", Binary, false,
			cat([]byte{6, 0, 0, 0, 4, 0, 0, 0}, stale(8), []byte{5, 0, 0, 0}),
			Frame{Token: TokenProxy, Proxy: 5}, [][2]int{{8, 16}}},
		{"binary ALIVE", Binary, false, cat([]byte{8, 0, 0, 0}, stale(12)), Frame{Token: TokenAlive}, [][2]int{{4, 16}}},
		{"binary ALIVE_REPLY", Binary, false, cat([]byte{9, 0, 0, 0}, stale(12)), Frame{Token: TokenAliveReply}, [][2]int{{4, 16}}},
		{"binary CLOSE", Binary, false, cat([]byte{5, 0, 0, 0}, stale(12)), Frame{Token: TokenClose}, [][2]int{{4, 16}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bytes.NewReader(c.captured)
			got, err := ReadFrame(r, c.enc, c.reply, 1<<20)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if r.Len() != 0 {
				t.Errorf("%d bytes of the frame left unread", r.Len())
			}
			if !same(*got, c.want) {
				t.Errorf("read %+v, want %+v", *got, c.want)
			}
			ours, err := AppendFrame(nil, c.enc, &c.want, c.reply)
			if err != nil {
				t.Fatal(err)
			}
			if len(ours) != len(c.captured) {
				t.Fatalf("written %d bytes, captured %d", len(ours), len(c.captured))
			}
			// The fields C SIMPL leaves unset mean nothing: compare the
			// rest, and check that ours hold nothing but zeros or a
			// length (never stale memory).
			want, mine := append([]byte(nil), c.captured...), append([]byte(nil), ours...)
			for _, m := range c.mask {
				for i := m[0]; i < m[1]; i++ {
					if ours[i] > 0x0F && c.enc == Char {
						t.Errorf("byte %d of ours is %#x in an unused field", i, ours[i])
					}
					want[i], mine[i] = 0, 0
				}
			}
			if !bytes.Equal(mine, want) {
				t.Errorf("written\n% x\nwant (the capture, but for its unset fields)\n% x", ours, c.captured)
			}
		})
	}
}

func same(a, b Frame) bool {
	return a.Token == b.Token && a.RHost == b.RHost && a.RProgram == b.RProgram && a.SHost == b.SHost &&
		a.Result == b.Result && a.YBytes == b.YBytes && a.Proxy == b.Proxy && bytes.Equal(a.Data, b.Data)
}

// Lengths and fields from the wire are checked before anything is
// allocated or believed.
func TestBadFrames(t *testing.T) {
	le := func(vs ...uint32) []byte {
		var b []byte
		for _, v := range vs {
			b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
		return b
	}
	for _, c := range []struct {
		name string
		enc  Encoding
		in   []byte
		want error
		text string
	}{
		{"a SEND over the limit", Binary, le(3, 1<<30, 0, 0), ErrTooLarge, "1073741824 bytes, the limit is 1024"},
		{"a SEND of 2^31 or more (negative)", Binary, le(3, 0x80000000, 0, 0), ErrBadFrame, "of -2147483648 bytes"},
		{"a REPLY over the limit, char", Char, cat(nib(4), nib(2000), nib(0), nib(0)), ErrTooLarge, "2000 bytes"},
		{"a SEND taking a negative reply", Binary, le(3, 1, 0xffffffff, 0, 0), ErrBadFrame, "reply of -1 bytes"},
		{"a char token above a nibble", Char, cat([]byte{0, 0, 0, 0, 0, 0, 0, 0x13}, nib(0), nib(0), nib(0)), ErrBadFrame, "byte 0x13 at 7"},
		{"an unknown token", Binary, le(12, 0, 0, 0), ErrBadFrame, "token 12"},
		{"a short body", Binary, cat(le(3, 10, 0, 0), []byte("abc")), ErrBadFrame, "10-byte body"},
		{"a program name without a NUL", Binary, cat(le(2, 136, 0, 0), cfield("h", HostLen), bytes.Repeat([]byte{'x'}, ProgramLen), cfield("vm", HostLen)), ErrBadFrame, "rProgramName field of 32 bytes without a NUL"},
		{"a control byte in a host", Binary, cat(le(2, 136, 0, 0), cfield("h", HostLen), cfield("SRV", ProgramLen), cfield("v\x01m", HostLen)), ErrBadFrame, "sHostName: byte 0x1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(c.in), c.enc, false, 1024)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("ReadFrame = %v, want %v saying %q", err, c.want, c.text)
			}
		})
	}
	// A header cut short is the reader's EOF, as a connection closed.
	if _, err := ReadFrame(bytes.NewReader([]byte{3, 0}), Binary, false, 1024); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a short header: %v, want io.ErrUnexpectedEOF", err)
	}
	// Nothing of ours leaks or overflows: names that do not fit are
	// refused, not cut.
	if _, err := AppendFrame(nil, Char, &Frame{Token: TokenNameLocate, RProgram: strings.Repeat("n", ProgramLen), SHost: "vm"}, false); !errors.Is(err, ErrBadFrame) {
		t.Errorf("a 32-byte program name: %v, want ErrBadFrame", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, enc := range []Encoding{Char, Binary} {
		for _, fr := range []Frame{
			{Token: TokenSend, YBytes: 64, Data: []byte("hello")},
			{Token: TokenReply, Data: []byte("re")},
			{Token: TokenNameLocate, RHost: "b", RProgram: "SRV", SHost: "a"},
			{Token: TokenProxy, Proxy: 5},
			{Token: TokenAlive},
		} {
			b, _ := AppendFrame(nil, enc, &fr, false)
			f.Add(b, enc == Binary, false)
		}
		b, _ := AppendFrame(nil, enc, &Frame{Token: TokenNameLocate, Result: -1}, true)
		f.Add(b, enc == Binary, true)
	}
	f.Fuzz(func(t *testing.T, in []byte, binary, reply bool) {
		enc := Char
		if binary {
			enc = Binary
		}
		fr, err := ReadFrame(bytes.NewReader(in), enc, reply, 1<<16)
		if err != nil {
			return
		}
		if len(fr.Data) > 1<<16 {
			t.Fatalf("a body of %d bytes past the limit", len(fr.Data))
		}
		// What was read writes and reads back the same.
		out, err := AppendFrame(nil, enc, fr, reply)
		if err != nil {
			// A stale rHostName reads as "": anything read is writable.
			t.Fatalf("AppendFrame(%+v): %v", *fr, err)
		}
		again, err := ReadFrame(bytes.NewReader(out), enc, reply, 1<<16)
		if err != nil || !same(*again, *fr) {
			t.Fatalf("%+v written and read again: %+v, %v", *fr, again, err)
		}
	})
}
