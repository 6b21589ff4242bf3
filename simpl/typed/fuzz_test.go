package typed

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gosimpl/gosimpl/simpl"
)

// Seeds live in testdata/fuzz/FuzzParseHeader, FuzzValidate and
// FuzzDecodeReply.

// FuzzParseHeader: the header decoder accepts exactly what appendHeader
// produces, and fails otherwise with ErrBadMessage or ErrVersion.
func FuzzParseHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := parseHeader(b)
		if err != nil {
			if !errors.Is(err, simpl.ErrBadMessage) && !errors.Is(err, ErrVersion) {
				t.Fatalf("parseHeader(%q): error %v wraps neither ErrBadMessage nor ErrVersion", b, err)
			}
			if errors.Is(err, ErrVersion) && (h.version == WireVersion || len(b) < 3 || b[2] != h.version) {
				t.Fatalf("parseHeader(%q): ErrVersion with version %d", b, h.version)
			}
			if payload != nil {
				t.Fatalf("parseHeader(%q) failed but returned a payload", b)
			}
			return
		}
		if h.kind == kindError && len(h.tag) != 0 || h.kind != kindError && !validTag(string(h.tag)) {
			t.Fatalf("parseHeader(%q) accepted tag %q for a %v", b, h.tag, h.kind)
		}
		if enc := append(appendHeader(nil, h.kind, string(h.tag)), payload...); !bytes.Equal(enc, b) {
			t.Fatalf("parseHeader(%q) accepted %+v, which encodes as %q", b, h, enc)
		}
	})
}

// FuzzValidate: the payload scanner never panics, fails with
// ErrBadMessage, and what it accepts is exactly one msgpack value as
// msgpack itself reads it.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := validate(b, DefaultMaxDepth, true); err != nil {
			if !errors.Is(err, simpl.ErrBadMessage) {
				t.Fatalf("validate(%x): error %v does not wrap ErrBadMessage", b, err)
			}
			return
		}
		r := bytes.NewReader(b)
		d := msgpack.NewDecoder(r)
		if err := d.Skip(); err != nil {
			t.Fatalf("validate accepted %x, which msgpack cannot skip: %v", b, err)
		}
		if r.Len() != 0 {
			t.Fatalf("validate accepted %x, whose value msgpack ends %d bytes early", b, r.Len())
		}
	})
}

// FuzzDecodeReply: Call's whole decoding path, into a type with every kind
// of field and into an Error, never crashes and fails only with this
// package's or simpl's sentinels. (msgpack v5.4.1 panics on some inputs,
// such as nil for a time.Time: decode recovers those as ErrBadMessage,
// see the seed nil-into-time. A panic that is not recovered, or an
// allocation or recursion without bound, crashes the fuzzer.)
func FuzzDecodeReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c := getCodec()
		defer putCodec(c)
		var v rich
		err := decodeReply(c, b, "test.Rich", DefaultMaxDepth, &v)
		var e *Error
		switch {
		case err == nil, errors.As(err, &e):
		case !errors.Is(err, simpl.ErrBadMessage) && !errors.Is(err, ErrVersion):
			t.Fatalf("decodeReply(%x): error %v wraps no sentinel", b, err)
		}
		// Untyped too: any value msgpack can hold.
		if _, payload, err := parseHeader(b); err == nil {
			var a any
			if err := c.decode(payload, DefaultMaxDepth, &a); err != nil && !errors.Is(err, simpl.ErrBadMessage) {
				t.Fatalf("decoding %x into any: error %v does not wrap ErrBadMessage", payload, err)
			}
		}
	})
}
