package gateway

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`
# the controllers on plant may reach the actuators; nobody else
deny  plant:ROGUE  *          # one program of plant is not trusted
allow plant        ACT_* LOG
allow ops:CONSOLE  *
allow *            PUBLIC
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host, program, name string
		allow               bool
		line                int
	}{
		{"plant", "CTL", "ACT_1", true, 4},
		{"plant", "CTL#3", "ACT_2", true, 4}, // a concurrent Send of CTL
		{"plant", "CTL", "LOG", true, 4},
		{"plant", "CTL", "ACT", false, 0}, // the prefix is "ACT_"
		{"plant", "CTL", "LOGGER", false, 0},
		{"plant", "ROGUE", "ACT_1", false, 3},
		{"plant", "ROGUE#1", "PUBLIC", false, 3},
		{"ops", "CONSOLE", "ANYTHING", true, 5},
		{"ops", "SHELL", "ACT_1", false, 0},
		{"elsewhere", "X", "PUBLIC", true, 6},
		{"elsewhere", "X", "ACT_1", false, 0},
		{"plant2", "CTL", "ACT_1", false, 0}, // hosts are whole names
	} {
		allow, line := p.Allows(c.host, c.program, c.name)
		if allow != c.allow || line != c.line {
			t.Errorf("%s:%s to %s: allowed %v by line %d, want %v by line %d", c.host, c.program, c.name, allow, line, c.allow, c.line)
		}
	}
	// Nothing allowed by an empty policy; everything by none.
	empty, err := ParsePolicy([]byte("# nobody\n"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := empty.Allows("a", "B", "C"); ok {
		t.Error("an empty policy allowed a request")
	}
	if ok, _ := (*Policy)(nil).Allows("a", "B", "C"); !ok {
		t.Error("no policy denied a request")
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"permit a X", `line 1: "permit": want allow or deny`},
		{"\n\nallow a", "line 3: allow: want allow HOST[:PROGRAM] NAME..."},
		{"allow :P X", `line 1: sender ":P": no host`},
		{"allow a*b X", `line 1: host "a*b"`},
		{"allow " + strings.Repeat("h", 52) + " X", "at most 51 bytes"},
		{"allow a:P* X", `line 1: program "P*"`},
		{"allow a:P/Q X", `line 1: program "P/Q"`},
		{"allow a X*Y", `line 1: name "X*Y": a "*" may only end it`},
		{"allow a " + strings.Repeat("N", 32), "32 bytes, at most 31"},
		{"allow a X/Y", `line 1: name "X/Y"`},
		{"allow a **", `name "**"`},
		{strings.Repeat("#", maxPolicy+1), "bytes, more than"},
	} {
		_, err := ParsePolicy([]byte(c.text))
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePolicy(%.40q) = %v, want ErrPolicy saying %q", c.text, err, c.want)
		}
	}
	dir := t.TempDir()
	if _, err := ReadPolicy(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadPolicy of a missing file: %v", err)
	}
	f := filepath.Join(dir, "p")
	if err := os.WriteFile(f, []byte("allow a X\nallow b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPolicy(f); err == nil || !strings.Contains(err.Error(), f+": bad policy: line 2") {
		t.Errorf("ReadPolicy of a bad file: %v, want its name and line", err)
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"allow a X", "deny *:P * # c\nallow b:Q A_*", "allow a", "allow :x y", "allow a X*Y", "\x00allow a\tX\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v is not ErrPolicy", err)
			}
			return
		}
		// Whatever it took decides without panicking, and a rule's line
		// is one of the text's.
		lines := strings.Count(string(b), "\n") + 1
		for _, r := range p.rules {
			if r.line < 1 || r.line > lines || len(r.names) == 0 {
				t.Fatalf("rule %+v of a %d-line text", r, lines)
			}
			for _, pat := range r.names {
				p.Allows(r.host, r.program, pat.s)
			}
		}
	})
}
