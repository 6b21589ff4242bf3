package typed

import (
	"strings"
	"testing"
)

// typed's errors say "simpl: " once, however many layers they wrap.
func TestErrorOnePrefix(t *testing.T) {
	c := getCodec()
	defer putCodec(c)
	var v struct{ A int }
	for _, err := range []error{
		func() error { _, _, err := parseHeader([]byte("xx")); return err }(),
		func() error { _, _, err := parseHeader([]byte("GT\x09\x01")); return err }(),
		c.decode([]byte{0xc1}, 8, &v),
	} {
		if err == nil {
			t.Fatal("bad input decoded")
		}
		if n := strings.Count(err.Error(), "simpl: "); n != 1 {
			t.Errorf("%q says \"simpl: \" %d times", err, n)
		}
	}
}
