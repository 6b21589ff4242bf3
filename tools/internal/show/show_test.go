package show

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", "(empty)"},
		{"hello", "hello"},
		{"hello, world!", "hello, world!"},
		{"a\tb", "a\tb"},
		{"ünïcödé ✓ 日本語", "ünïcödé ✓ 日本語"},
		{"\ufffd", "\ufffd"}, // a real U+FFFD is text
		{" ", " "},
		{"hex", "hex"},
		{"HEX:41", "HEX:41"},
		{"x hex:41", "x hex:41"},
		{" (empty)", " (empty)"},
		{"(empty) ", "(empty) "},
		// Not printable: hex.
		{"\x00", "hex:00"},
		{"a\nb", "hex:610a62"},
		{"line\n", "hex:6c696e650a"},
		{"\r", "hex:0d"},
		{"\x1b[31mred", "hex:1b5b33316d726564"},
		{"\x7f", "hex:7f"},
		{"\xff", "hex:ff"},
		{"ok\xc3", "hex:6f6bc3"},                      // cut UTF-8
		{"\xed\xa0\x80", "hex:eda080"},                // a surrogate
		{"a\u2028b", "hex:61e280a862"},                // line separator
		{"\u202egnp.exe", "hex:e280ae676e702e657865"}, // right-to-left override
		{"\u00a0", "hex:c2a0"},                        // no-break space
		{"\u200b", "hex:e2808b"},                      // zero-width space
		// Text that would read as another form: hex.
		{"hex:41", "hex:6865783a3431"},
		{"hex:", "hex:6865783a"},
		{"(empty)", "hex:28656d70747929"},
	} {
		if got := Bytes([]byte(tc.in)); got != tc.want {
			t.Errorf("Bytes(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Bytes(nil); got != "(empty)" {
		t.Errorf("Bytes(nil) = %q", got)
	}
	long := bytes.Repeat([]byte{0, 1, 2, 0xfe}, 1000)
	if got := Bytes(long); got != "hex:"+strings.Repeat("000102fe", 1000) {
		t.Errorf("Bytes(4000 binary bytes) = %.40q...", got)
	}
}

// parse is the inverse of Bytes.
func parse(s string) ([]byte, bool) {
	if s == Empty {
		return []byte{}, true
	}
	if h, ok := strings.CutPrefix(s, HexPrefix); ok {
		b, err := hex.DecodeString(h)
		return b, err == nil && len(b) > 0 && hex.EncodeToString(b) == h
	}
	return []byte(s), true
}

// FuzzBytes checks that Bytes is one printable line, that it never shows
// two messages alike (parse recovers the message), and that printable text
// is shown as it is.
func FuzzBytes(f *testing.F) {
	for _, s := range []string{"", "hello", "a\tb", "\x00\x01", "hex:41", "(empty)", "\xff", "a\u2028b", "日本語"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Bytes(b)
		if !utf8.ValidString(s) {
			t.Fatalf("Bytes(%q) = %q: not UTF-8", b, s)
		}
		for _, r := range s {
			if !unicode.IsPrint(r) && r != '\t' {
				t.Fatalf("Bytes(%q) = %q holds %U", b, s, r)
			}
		}
		got, ok := parse(s)
		if !ok || !bytes.Equal(got, b) {
			t.Fatalf("Bytes(%q) = %q reads back as %q (ok %v)", b, s, got, ok)
		}
		text := len(b) > 0 && !strings.HasPrefix(s, HexPrefix) && s != Empty
		if text != (s == string(b)) {
			t.Fatalf("Bytes(%q) = %q", b, s)
		}
		if len(b) > 0 && utf8.Valid(b) && !bytes.HasPrefix(b, []byte(HexPrefix)) && string(b) != Empty &&
			!strings.ContainsFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) && r != '\t' }) && s != string(b) {
			t.Fatalf("printable text %q shown as %q", b, s)
		}
	})
}
