package naming

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in, str string // str: String() of the result, when not in
		want    Name
	}{
		{"SRV", "", Name{Name: "SRV"}},
		{"host:SRV", "", Name{Host: "host", Name: "SRV"}},
		{"_simplTCP:host:SRV", "", Name{Protocol: "_simplTCP", Host: "host", Name: "SRV"}},
		{strings.Repeat("a", 31), "", Name{Name: strings.Repeat("a", 31)}},
		{"dots.are.ok", "", Name{Name: "dots.are.ok"}},
		// C SIMPL's rules: an empty protocol is the default one, an empty
		// host a local lookup.
		{":host:SRV", "host:SRV", Name{Host: "host", Name: "SRV"}},
		{"_simplDefault:host:SRV", "host:SRV", Name{Host: "host", Name: "SRV"}},
		{"::x", "x", Name{Name: "x"}},
		{":x", "x", Name{Name: "x"}},
		{"_simplTCP::x", "x", Name{Name: "x"}},
		{"TCP:h:n", "", Name{Protocol: "TCP", Host: "h", Name: "n"}}, // the router says no, not the parser
		{"127.0.0.1:n", "", Name{Host: "127.0.0.1", Name: "n"}},
		{strings.Repeat("p", 23) + ":" + strings.Repeat("h", 51) + ":n", "", Name{Protocol: strings.Repeat("p", 23), Host: strings.Repeat("h", 51), Name: "n"}},
	}
	for _, c := range good {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		str := c.str
		if str == "" {
			str = c.in
		}
		if got.String() != str {
			t.Errorf("Parse(%q).String() = %q, want %q", c.in, got.String(), str)
		}
		if got.Local() != (c.want.Host == "") {
			t.Errorf("Parse(%q).Local() = %v", c.in, got.Local())
		}
	}
	bad := []string{"", strings.Repeat("a", 32), "a:b:c:d", "::", "h:", "localhost:", "a/b", "a b", "a\x00", "a#2", ".", "..", "h/x:n", "\x7f",
		strings.Repeat("p", 24) + ":h:n", strings.Repeat("h", 52) + ":n", "h:" + strings.Repeat("n", 32), "h h:n", "p\n:h:n"}
	for _, in := range bad {
		if n, err := Parse(in); !errors.Is(err, ErrBadName) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrBadName", in, n, err)
		}
	}
}

// ParseC cuts long fields as C SIMPL does; everything else is Parse's.
func TestParseC(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Name
	}{
		{strings.Repeat("a", 40), Name{Name: strings.Repeat("a", 31)}},
		{strings.Repeat("p", 30) + ":" + strings.Repeat("h", 60) + ":" + strings.Repeat("n", 35),
			Name{Protocol: strings.Repeat("p", 23), Host: strings.Repeat("h", 51), Name: strings.Repeat("n", 31)}},
		{"h:SRV", Name{Host: "h", Name: "SRV"}},
	} {
		if got, err := ParseC(c.in); err != nil || got != c.want {
			t.Errorf("ParseC(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"a:b:c:d", "localhost:", "h:a/b"} {
		if n, err := ParseC(in); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseC(%q) = %+v, %v; want ErrBadName", in, n, err)
		}
	}
}

func TestAuxWhom(t *testing.T) {
	for _, c := range []struct {
		name string
		k    int
		want string
	}{
		{"CLI", 1, "CLI#1"},
		{strings.Repeat("n", 31), 12, strings.Repeat("n", 28) + "#12"},
	} {
		got := AuxWhom(c.name, c.k)
		if got != c.want || len(got) > MaxNameLen {
			t.Errorf("AuxWhom(%q, %d) = %q, want %q", c.name, c.k, got, c.want)
		}
		if !IsAuxOf(got, c.name) || IsAuxOf(got, "OTHER") || IsAuxOf(c.name, c.name) {
			t.Errorf("IsAuxOf(%q, %q) is wrong", got, c.name)
		}
	}
}

// IsAuxOf accepts exactly what AuxWhom makes, and allocates nothing.
func TestIsAuxOf(t *testing.T) {
	for _, name := range []string{"A", "CLI", strings.Repeat("n", 30), strings.Repeat("m", MaxNameLen)} {
		for _, k := range []int{1, 2, 9, 10, 99, 100, 12345, 1 << 30} {
			if w := AuxWhom(name, k); !IsAuxOf(w, name) {
				t.Errorf("IsAuxOf(AuxWhom(%q, %d) = %q) = false", name, k, w)
			}
		}
	}
	for _, whom := range []string{"A", "A#", "A#0", "A#01", "A#+1", "A#-1", "A#1x", "A# 1", "B#1", "AA#1", "#1", "A#1#2", "A#1234567890123456789"} {
		if IsAuxOf(whom, "A") {
			t.Errorf("IsAuxOf(%q, \"A\") = true", whom)
		}
	}
	if n := testing.AllocsPerRun(100, func() { IsAuxOf("CLIENT#12", "CLIENT") }); n != 0 {
		t.Errorf("IsAuxOf allocates %v times a call", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"SRV", "h:SRV", "p:h:SRV", "a:b:c:d", "", strings.Repeat("x", 40), "a/b", "Y#1", "::x", ":h:n", "_simplDefault:h:n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("Parse(%q): error %v is not ErrBadName", s, err)
			}
			return
		}
		again, err := Parse(n.String())
		if err != nil || again != n {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v, %v", s, n, n.String(), again, err)
		}
		if len(n.Protocol) > MaxProtocolLen || len(n.Host) > MaxHostLen || (n.Host == "" && n.Protocol != "") {
			t.Fatalf("Parse(%q) = %+v", s, n)
		}
		if len(n.Name) == 0 || len(n.Name) > MaxNameLen || strings.ContainsAny(n.Name, "/:#") {
			t.Fatalf("Parse(%q) accepted name %q", s, n.Name)
		}
	})
}

func FuzzSplitFIFO(f *testing.F) {
	for _, s := range []string{"SRV.123", "YSRV.1", "a.b.99", ".5", "x.", "x.99999999999", "x.-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fi, ok := splitFIFO(s)
		if !ok {
			return
		}
		if fi.pid <= 0 || fi.stem == "" || !strings.HasPrefix(s, fi.stem+".") {
			t.Fatalf("splitFIFO(%q) = %+v", s, fi)
		}
	})
}

func TestCheckSender(t *testing.T) {
	for _, ok := range []string{"A", "fcsend_12", AuxWhom("CLI", 3), AuxWhom(strings.Repeat("n", 31), 12)} {
		if err := CheckSender(ok); err != nil {
			t.Errorf("CheckSender(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "x\nmessage from root pid 1: OK", "\x1b[31mred", "../../etc/passwd", "a/b", "A#", "A#0", "A#x", "A#1#2", "#1", "sp ace", strings.Repeat("n", 32)} {
		if err := CheckSender(bad); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckSender(%q) = %v, want ErrBadName", bad, err)
		}
	}
}
