package show

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"strconv"
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
		// Text that ends as Cut's marker: hex.
		{"x… (3 more bytes)", "hex:" + hex.EncodeToString([]byte("x… (3 more bytes)"))},
		{"… (1 more byte)", "hex:" + hex.EncodeToString([]byte("… (1 more byte)"))},
		{"x… (3 more bytes) ", "x… (3 more bytes) "},
		{"x… (many more bytes)", "x… (many more bytes)"},
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
		if len(b) > 0 && utf8.Valid(b) && !bytes.HasPrefix(b, []byte(HexPrefix)) && string(b) != Empty && !marker.Match(b) &&
			!strings.ContainsFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) && r != '\t' }) && s != string(b) {
			t.Fatalf("printable text %q shown as %q", b, s)
		}
	})
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 0, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hell… (1 more byte)"},
		{"hello, world", 5, "hello… (7 more bytes)"},
		{"", 3, "(empty)"},
		{"日本語", 4, "日… (6 more bytes)"},        // cut where a character starts
		{"日本語", 2, "hex:e697… (7 more bytes)"}, // the first character does not fit
		{"\x00\x01\x02\x03", 2, "hex:0001… (2 more bytes)"},
		{"ab\ncd", 2, "ab… (3 more bytes)"}, // what is shown is text
		{"hex:41 and more", 6, "hex:6865783a3431… (9 more bytes)"},
	} {
		if got := Cut([]byte(tc.in), tc.max); got != tc.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// parseCut is the inverse of Cut: the bytes shown and how many were left
// out.
func parseCut(s string) (shown []byte, more int, ok bool) {
	if m := regexp.MustCompile(`… \((\d+) more bytes?\)$`).FindStringSubmatchIndex(s); m != nil {
		more, _ = strconv.Atoi(s[m[2]:m[3]])
		shown, ok = parse(s[:m[0]])
		return shown, more, ok && more > 0
	}
	shown, ok = parse(s)
	return shown, 0, ok
}

// FuzzCut checks that Cut shows at most max bytes of a message, the
// first ones, says how many it left out, and is Bytes when it leaves out
// nothing.
func FuzzCut(f *testing.F) {
	for _, s := range []string{"", "hello", "日本語", "\x00\x01\x02", "x… (3 more bytes)", "hex:41"} {
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		s := Cut(b, max)
		shown, more, ok := parseCut(s)
		switch {
		case !ok || !bytes.HasPrefix(b, shown) || len(shown)+more != len(b):
			t.Fatalf("Cut(%q, %d) = %q reads back as %q and %d more (ok %v)", b, max, s, shown, more, ok)
		case max > 0 && len(shown) > max:
			t.Fatalf("Cut(%q, %d) = %q shows %d bytes", b, max, s, len(shown))
		case (more == 0) != (s == Bytes(b)):
			t.Fatalf("Cut(%q, %d) = %q, Bytes %q", b, max, s, Bytes(b))
		}
	})
}

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SRV", "SRV"},
		{"fcsend_123", "fcsend_123"},
		{"日本", "日本"},
		{"a\u202eb", `"a\u202eb"`},
		{"a\u2028b", `"a\u2028b"`},
		{"\xff", `"\xff"`},
		{"a b", `"a b"`},
		{"\"SRV\"", `"\"SRV\""`}, // would read as a quoted name
		{"", `""`},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
