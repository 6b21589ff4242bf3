package typed

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gosimpl/gosimpl/simpl"
)

func TestParseHeader(t *testing.T) {
	good := []struct {
		in      string
		kind    kind
		tag     string
		payload string
	}{
		{"GT\x01\x01\x08calc.Add\x80", kindRequest, "calc.Add", "\x80"},
		{"GT\x01\x02\x01x", kindReply, "x", ""},
		{"GT\x01\x03\x00\x80", kindError, "", "\x80"},
		{"GT\x01\x01\x40" + strings.Repeat("é", 32) + "\xc0", kindRequest, strings.Repeat("é", 32), "\xc0"},
	}
	for _, c := range good {
		h, p, err := parseHeader([]byte(c.in))
		if err != nil || h.kind != c.kind || string(h.tag) != c.tag || string(p) != c.payload || h.version != WireVersion {
			t.Errorf("parseHeader(%q) = %+v, %q, %v; want %v %q %q", c.in, h, p, err, c.kind, c.tag, c.payload)
		}
		if enc := append(appendHeader(nil, h.kind, string(h.tag)), p...); string(enc) != c.in {
			t.Errorf("parseHeader(%q) re-encodes as %q", c.in, enc)
		}
	}
	bad := []struct {
		in   string
		want error
	}{
		{"", simpl.ErrBadMessage},
		{"GT", simpl.ErrBadMessage},
		{"XT\x01\x01\x01x", simpl.ErrBadMessage},
		{"GT\x02", ErrVersion},
		{"GT\x00\x01\x01x", ErrVersion},
		{"GT\x01", simpl.ErrBadMessage},
		{"GT\x01\x01", simpl.ErrBadMessage},
		{"GT\x01\x00\x01x", simpl.ErrBadMessage},
		{"GT\x01\x04\x01x", simpl.ErrBadMessage},
		{"GT\x01\x01\x00\x80", simpl.ErrBadMessage},
		{"GT\x01\x01\x02\xff\xfe", simpl.ErrBadMessage},
		{"GT\x01\x01\x05abc", simpl.ErrBadMessage},
		{"GT\x01\x01\x41" + strings.Repeat("a", 65), simpl.ErrBadMessage},
		{"GT\x01\x03\x01x\x80", simpl.ErrBadMessage},
	}
	for _, c := range bad {
		if h, p, err := parseHeader([]byte(c.in)); !errors.Is(err, c.want) || p != nil {
			t.Errorf("parseHeader(%q) = %+v, %q, %v; want %v", c.in, h, p, err, c.want)
		}
	}
}

type inner struct {
	Name string            `msgpack:"name"`
	Tags map[string]string `msgpack:"tags"`
	Nums []float64         `msgpack:"nums"`
}

type rich struct {
	I    int            `msgpack:"i"`
	U    uint64         `msgpack:"u"`
	F    float32        `msgpack:"f"`
	B    []byte         `msgpack:"b"`
	S    string         `msgpack:"s"`
	T    time.Time      `msgpack:"t"`
	P    *inner         `msgpack:"p"`
	L    []inner        `msgpack:"l"`
	M    map[int]inner  `msgpack:"m"`
	A    [3]int8        `msgpack:"a"`
	Any  any            `msgpack:"any"`
	Anys []any          `msgpack:"anys"`
	D    time.Duration  `msgpack:"d"`
	Bool bool           `msgpack:"bool"`
	Ptrs []*inner       `msgpack:"ptrs"`
	Nest map[string]any `msgpack:"nest"`
}

func (rich) TypeTag() string { return "test.Rich" }

func sampleRich() rich {
	return rich{
		I: -5, U: 1 << 40, F: 1.5, B: []byte{0, 1, 2}, S: "héllo",
		T: time.Unix(1700000000, 5).UTC(),
		P: &inner{Name: "p", Tags: map[string]string{"a": "b"}, Nums: []float64{1, 2.5}},
		L: []inner{{Name: "x"}, {Name: "y"}},
		M: map[int]inner{3: {Name: "three"}},
		A: [3]int8{1, -1, 0}, Any: map[string]any{"k": []any{1, "two", nil}},
		Anys: []any{true, 1.25, []byte("x")}, D: time.Second, Bool: true,
		Ptrs: []*inner{nil, {Name: "q"}},
		Nest: map[string]any{"a": map[string]any{"b": []any{[]any{1}}}},
	}
}

func TestValidate(t *testing.T) {
	for _, v := range []any{nil, 0, -33, int64(1) << 62, "", strings.Repeat("s", 70000), []byte{}, make([]byte, 300),
		3.5, float32(2), true, []any{}, map[string]any{}, sampleRich(), time.Now(), []int{1, 2, 3},
		map[int][]string{1: {"a"}}, Error{Code: 7, Message: "m"}} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(b, DefaultMaxDepth, true); err != nil {
			t.Errorf("validate(%x) of %T: %v", b, v, err)
		}
	}
	deep := func(n int) []byte { return append(bytes.Repeat([]byte{0x91}, n), 0) }
	if err := validate(deep(32), 32, true); err != nil {
		t.Errorf("32 deep: %v", err)
	}
	if err := validate(deep(200), 256, true); err != nil {
		t.Errorf("200 deep with a 256 limit: %v", err)
	}
	for _, b := range [][]byte{
		nil, {0xc1}, {0x00, 0x00}, deep(33), deep(100000), {0x91}, {0x92, 0x00},
		{0x81, 0x00}, {0xa5, 'a'}, {0xd9}, {0xd9, 0x05, 'a'}, {0xda, 0x00}, {0xdb, 0xff, 0xff, 0xff, 0xff},
		{0xc4, 0x02, 0x00}, {0xc6, 0x7f, 0xff, 0xff, 0xff}, {0xc7, 0x01, 0x05}, {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xd4, 0x01}, {0xd8, 0x01, 0x00}, {0xcf, 0, 0, 0}, {0xcb}, {0xdc, 0x00}, {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00},
		{0xde, 0x00, 0x02, 0x00, 0x00, 0x00}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x9f},
		{0x90, 0x00}, // trailing
	} {
		if err := validate(b, DefaultMaxDepth, true); !errors.Is(err, simpl.ErrBadMessage) {
			t.Errorf("validate(%x) (%d bytes) = %v, want ErrBadMessage", b[:min(len(b), 40)], len(b), err)
		}
	}
}

func TestValidateAllocs(t *testing.T) {
	b, _ := msgpack.Marshal(sampleRich())
	if n := testing.AllocsPerRun(100, func() { validate(b, DefaultMaxDepth, true) }); n != 0 {
		t.Errorf("validate allocates %v times", n)
	}
}

func TestRoundTrip(t *testing.T) {
	c := getCodec()
	defer putCodec(c)
	want := sampleRich()
	if err := c.encode(kindReply, want.TypeTag(), want); err != nil {
		t.Fatal(err)
	}
	var got rich
	if err := decodeReply(c, append([]byte(nil), c.out.b...), "test.Rich", DefaultMaxDepth, &got); err != nil {
		t.Fatal(err)
	}
	if got.S != want.S || !got.T.Equal(want.T) || got.P.Tags["a"] != "b" || got.M[3].Name != "three" || got.Ptrs[1].Name != "q" {
		t.Errorf("round trip: got %+v, want %+v", got, want)
	}
	// An error reply comes back as an *Error.
	if err := c.encode(kindError, "", &Error{Code: 101, Message: "no"}); err != nil {
		t.Fatal(err)
	}
	err := decodeReply(c, append([]byte(nil), c.out.b...), "test.Rich", DefaultMaxDepth, &got)
	var e *Error
	if !errors.As(err, &e) || e.Code != 101 || e.Message != "no" || !errors.Is(err, ErrRemote) || !errors.Is(err, simpl.ErrRejected) || errors.Is(err, ErrUnknownType) {
		t.Errorf("error reply decoded as %#v", err)
	}
}

func TestErrorIs(t *testing.T) {
	for code, want := range map[Code]error{
		CodeBadMessage: simpl.ErrBadMessage, CodeVersion: ErrVersion, CodeUnknownType: ErrUnknownType,
		CodeTooLarge: simpl.ErrTooLarge, CodeInternal: ErrInternal,
	} {
		err := error(&Error{Code: code, Message: "x"})
		if !errors.Is(err, want) || !errors.Is(err, ErrRemote) || !errors.Is(err, simpl.ErrRejected) {
			t.Errorf("code %v does not match %v", code, want)
		}
		if errors.Is(err, ErrDeferred) || errors.Is(err, simpl.ErrPeerGone) {
			t.Errorf("code %v matches too much", code)
		}
		if !strings.HasPrefix(err.Error(), "simpl: ") {
			t.Errorf("error text %q", err)
		}
	}
	if errors.Is(&Error{Code: 100}, ErrUnknownType) || errors.Is(&Error{Code: CodeFailed}, simpl.ErrBadMessage) {
		t.Error("application and CodeFailed errors match a code sentinel")
	}
}

func TestToError(t *testing.T) {
	if e := toError(errors.New("plain")); e.Code != CodeFailed || e.Message != "plain" {
		t.Errorf("plain error sent as %+v", e)
	}
	var nilErr *Error
	if e := toError(nilErr); e == nil || e.Code != CodeFailed {
		t.Errorf("a nil *Error sent as %+v", e)
	}
	c := getCodec()
	defer putCodec(c)
	for _, limit := range []int{10, 40, 100, 2000} {
		if err := c.encodeError(&Error{Code: 200, Message: strings.Repeat("x", 500)}, limit); err != nil {
			t.Fatal(err)
		}
		var got Error
		if err := decodeReply(c, append([]byte(nil), c.out.b...), "x", DefaultMaxDepth, &got); !errors.As(err, new(*Error)) {
			t.Fatalf("max reply %d: %v", limit, err)
		}
		if limit >= 22 && len(c.out.b) > limit || limit < 22 && len(c.out.b) != 22 { // 22: the reply with an empty text
			t.Errorf("error reply of %d bytes for a %d-byte reply buffer", len(c.out.b), limit)
		}
	}
	long := strings.Repeat("é", 1000) // 2000 bytes
	e := toError(&Error{Code: 200, Message: long})
	if e.Code != 200 || len(e.Message) > maxErrorText || !strings.HasPrefix(long, e.Message) || len(e.Message) < maxErrorText-1 {
		t.Errorf("long message cut to %d bytes", len(e.Message))
	}
}

// A panic inside msgpack (v5.4.1 panics decoding nil into a time.Time)
// comes back as ErrBadMessage.
func TestDecodeRecovers(t *testing.T) {
	c := getCodec()
	defer putCodec(c)
	var v struct {
		T time.Time `msgpack:"t"`
	}
	err := c.decode([]byte("\x81\xa1t\xc0"), DefaultMaxDepth, &v)
	if !errors.Is(err, simpl.ErrBadMessage) {
		t.Errorf("nil into a time.Time: %v", err)
	}
	if err := c.decode([]byte("\x81\xa1t\xd6\xff\x00\x00\x00\x01"), DefaultMaxDepth, &v); err != nil || v.T.Unix() != 1 {
		t.Errorf("the decoder after a recovered panic: %v, %v", v.T, err)
	}
}
