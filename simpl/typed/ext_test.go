package typed

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
)

// msgpack, decoding into a map, skips an extension's header and reads a
// map from its payload on, past the checks validate made of the value's
// structure: a peer could hide there a 2^31-entry array (an allocation
// of 32 GiB: the process died) or nesting a million deep (its stack).
// For a type that holds a map, such a payload is now refused as a bad
// message; a timestamp whose payload merely starts with a map code, and
// the same bytes for a type without maps, still decode (helper-51).
func TestExtensionHidingMap(t *testing.T) {
	hidden := map[string][]byte{
		// {"nest": ext32(type 1, {"": array32 of 2^31-1})}
		"huge array": []byte("\x81\xa4nest\xc9\x00\x00\x00\x07\x01\x81\xa0\xdd\x7f\xff\xff\xff"),
		// {"nest": ext32(type 1, {"": map32 of 2^28-1 pairs})}
		"huge map": []byte("\x81\xa4nest\xc9\x00\x00\x00\x07\x01\x81\xa0\xdf\x0f\xff\xff\xff"),
		// the same, hidden in a timestamp's fixext8 payload
		"huge array in a timestamp": []byte("\x81\xa4nest\xd7\xff\x81\xa0\xdd\x7f\xff\xff\xff\x00"),
	}
	deep := []byte("\x81\xa4nest\xc9\x00\x01\x00\x03\x01\x81\xa0")
	deep = append(deep, bytes.Repeat([]byte{0x91}, 1<<16)...)
	deep = append(deep, 0xc0)
	hidden["deep nesting"] = deep
	for name, payload := range hidden {
		c := getCodec()
		var v rich
		err := c.decode(payload, DefaultMaxDepth, &v)
		putCodec(c)
		if !errors.Is(err, simpl.ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
	// A type without maps: msgpack never reads past an extension's
	// header, and the strict walk's verdict stands.
	type flat struct {
		T time.Time `msgpack:"t"`
		N []int     `msgpack:"n"`
	}
	for _, at := range []time.Time{time.Unix(1765000000, 935400000), time.Unix(1765000000, 600000000), time.Unix(1765000000, 1)} {
		for _, v := range []any{&flat{T: at, N: []int{1, 2}}, &rich{T: at, Nest: map[string]any{"k": int8(1)}}} {
			c := getCodec()
			if err := c.encode(kindRequest, "x", v); err != nil {
				t.Fatal(err)
			}
			_, payload, err := parseHeader(c.out.b)
			if err != nil {
				t.Fatal(err)
			}
			payload = bytes.Clone(payload)
			err = c.decode(payload, DefaultMaxDepth, v)
			putCodec(c)
			_, isRich := v.(*rich)
			// A rich value's timestamp 935,400,000 ns past its second
			// starts 0xdf: refused, as docs/typed.md says.
			if refused := at.Nanosecond() == 935400000 && isRich; refused != (err != nil) {
				t.Errorf("%T with a timestamp %d ns past its second: %v", v, at.Nanosecond(), err)
			}
		}
	}
}

// ReplyError with a nil error answers with CodeFailed rather than panic
// in the deferring goroutine and leave the client waiting (helper-51).
func TestReplyErrorNil(t *testing.T) {
	if e := toError(nil); e == nil || e.Code != CodeFailed {
		t.Errorf("toError(nil) = %+v, want CodeFailed", e)
	}
}
