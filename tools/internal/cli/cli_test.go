package cli

import (
	"flag"
	"io"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

// TestMain checks, once the tests are done, that they left nothing behind.
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// IsOwnName knows every name OwnName gives and the ones simpl.Attach("")
// picks, by their pid, and nothing else.
func TestIsOwnName(t *testing.T) {
	pid := os.Getpid()
	p := strconv.Itoa(pid)
	for _, prefix := range ownPrefixes {
		if name := OwnName(prefix); name != prefix+p || !IsOwnName(name, pid) {
			t.Errorf("OwnName(%q) = %q, IsOwnName %v", prefix, name, IsOwnName(name, pid))
		}
	}
	for _, c := range []struct {
		name string
		pid  int
		want bool
	}{
		{"fcsend_42", 42, true},
		{"fcpub_42", 42, true},
		{"fcsub_42", 42, true},
		{"FCLOC_42", 42, true},
		{"_42_1", 42, true},
		{"_42_1234", 42, true},
		{"fcsend_42", 43, false}, // another process's choice
		{"_42_1", 43, false},
		{"fcsend_", 42, false},
		{"fcsend_042", 42, false},
		{"FCSEND_42", 42, false},
		{"fclocator_42", 42, false},
		{"_42_", 42, false},
		{"_42_x", 42, false},
		{"_42_1_2", 42, false},
		{"_421", 42, false},
		{"SRV", 42, false},
	} {
		if got := IsOwnName(c.name, c.pid); got != c.want {
			t.Errorf("IsOwnName(%q, %d) = %v, want %v", c.name, c.pid, got, c.want)
		}
	}
}

// ParseOperands finds flags before, between and after the operands, and
// takes everything after "--" as operands.
func TestParseOperands(t *testing.T) {
	for _, c := range []struct {
		args     []string
		operands []string
		n        int
		b        bool
	}{
		{nil, nil, 0, false},
		{[]string{"A"}, []string{"A"}, 0, false},
		{[]string{"-n", "3", "A"}, []string{"A"}, 3, false},
		{[]string{"A", "-n", "3"}, []string{"A"}, 3, false},
		{[]string{"A", "-b", "B", "-n", "3"}, []string{"A", "B"}, 3, true},
		{[]string{"-b", "--", "-n", "3"}, []string{"-n", "3"}, 0, true},
		{[]string{"A", "--", "-b"}, []string{"A", "-b"}, 0, false},
		{[]string{"-", "-b"}, []string{"-"}, 0, true},
	} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		n := fs.Int("n", 0, "")
		b := fs.Bool("b", false, "")
		ops, help, err := ParseOperands(fs, c.args, "usage: x", io.Discard)
		if help || err != nil || !slices.Equal(ops, c.operands) || *n != c.n || *b != c.b {
			t.Errorf("ParseOperands(%q) = %q, -n %d, -b %v, help %v, err %v; want %q, %d, %v",
				c.args, ops, *n, *b, help, err, c.operands, c.n, c.b)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	if _, _, err := ParseOperands(fs, []string{"A", "-bogus"}, "usage: x", io.Discard); err == nil {
		t.Error("ParseOperands accepted an unknown flag after an operand")
	}
}
