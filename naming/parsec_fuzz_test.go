package naming

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParseC: ParseC (the C library's name_locate) agrees with Parse on
// every name Parse accepts; what it accepts otherwise differs only by
// fields cut to C SIMPL's lengths, each field a prefix of the one given,
// and Parse reads its String back the same; its errors wrap ErrBadName.
func FuzzParseC(f *testing.F) {
	for _, s := range []string{"SRV", "h:SRV", "p:h:SRV", "a:b:c:d", "", strings.Repeat("x", 40), strings.Repeat("p", 30) + ":" + strings.Repeat("h", 60) + ":" + strings.Repeat("n", 40), "a/b", "Y#1", "::x", ":h:n", "_simplDefault:h:n", "h:" + strings.Repeat("n", 31) + "#", strings.Repeat("n", 31) + " "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseC(s)
		strict, serr := Parse(s)
		if serr == nil && (err != nil || n != strict) {
			t.Fatalf("Parse(%q) = %+v, but ParseC = %+v, %v", s, strict, n, err)
		}
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("ParseC(%q): error %v is not ErrBadName", s, err)
			}
			if n != (Name{}) {
				t.Fatalf("ParseC(%q) = %+v with error %v", s, n, err)
			}
			return
		}
		if len(n.Protocol) > MaxProtocolLen || len(n.Host) > MaxHostLen || n.Name == "" || len(n.Name) > MaxNameLen || (n.Host == "" && n.Protocol != "") {
			t.Fatalf("ParseC(%q) = %+v", s, n)
		}
		if err := CheckLocal(n.Name); err != nil {
			t.Fatalf("ParseC(%q) = %+v: %v", s, n, err)
		}
		parts := strings.Split(s, ":")
		given := []string{"", "", parts[len(parts)-1]}
		copy(given[3-len(parts):], parts)
		got := []string{n.Protocol, n.Host, n.Name}
		for i := range got {
			if !strings.HasPrefix(given[i], got[i]) {
				t.Fatalf("ParseC(%q) = %+v: field %q is no prefix of %q", s, n, got[i], given[i])
			}
		}
		again, err := Parse(n.String())
		if err != nil || again != n {
			t.Fatalf("ParseC(%q) = %+v, but Parse(%q) = %+v, %v", s, n, n.String(), again, err)
		}
	})
}

// FuzzLocalHost: HOSTNAME, when set, is this host's name as given, or an
// error wrapping ErrBadName when longer than C SIMPL's 51 bytes: never
// cut.
func FuzzLocalHost(f *testing.F) {
	for _, s := range []string{"vm", "", "plant-7.example.com", strings.Repeat("h", MaxHostLen), strings.Repeat("h", MaxHostLen+1), "a b", "a:b", "\xff"} {
		f.Add(s)
	}
	old, had := os.LookupEnv("HOSTNAME")
	f.Cleanup(func() {
		if had {
			os.Setenv("HOSTNAME", old)
		} else {
			os.Unsetenv("HOSTNAME")
		}
	})
	f.Fuzz(func(t *testing.T, h string) {
		if strings.ContainsRune(h, 0) {
			return // no environment holds a NUL
		}
		if err := os.Setenv("HOSTNAME", h); err != nil {
			t.Fatal(err)
		}
		got, err := LocalHost()
		switch {
		case len(h) > MaxHostLen && !errors.Is(err, ErrBadName):
			t.Fatalf("HOSTNAME of %d bytes: LocalHost() = %q, %v", len(h), got, err)
		case len(h) > MaxHostLen && got != "":
			t.Fatalf("HOSTNAME of %d bytes: LocalHost() = %q with error %v", len(h), got, err)
		case len(h) <= MaxHostLen && (err != nil || got != h):
			t.Fatalf("HOSTNAME=%q: LocalHost() = %q, %v", h, got, err)
		}
	})
}
