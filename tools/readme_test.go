package tools_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readme is the module's README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goRunTimeout bounds the README's first command: with a cold build cache
// it compiles two tools and their dependencies.
const goRunTimeout = 5 * time.Minute

// The README's first command, run as it is written, from the module's
// root: a real exchange between two processes, each line of output
// labelled with the program that printed it, and nothing left behind in
// the temporary directory (go run removes what it builds there) or the
// FIFO directory (newEnv checks).
func TestReadmeFirstCommand(t *testing.T) {
	e := newEnv(t)
	_, rest, ok := strings.Cut(readme(t), "```sh\n")
	if !ok {
		t.Fatal("README has no sh block")
	}
	line, _, _ := strings.Cut(rest, "\n")
	t.Logf("README's first command: %s", line)

	ctx, cancel := context.WithTimeout(context.Background(), goRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = ".."
	tmp := t.TempDir()
	cmd.Env = append(e.environ(), "TMPDIR="+tmp, "GOTMPDIR=")
	r := e.runCmd(ctx, cmd, "")
	r.ok(t, "the README's first command")

	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	attached := regexp.MustCompile(`^fcrecv: attached SRV pid ([0-9]+)$`)
	message := regexp.MustCompile(`^fcrecv: message from fcsend_([0-9]+) pid ([0-9]+): hello$`)
	var recv []string
	replies := 0
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "fcrecv: "):
			recv = append(recv, l)
		case l == "fcsend: hello":
			replies++
		default:
			t.Errorf("the README's first command printed %q, which no program claims", l)
		}
	}
	if len(recv) != 2 || !attached.MatchString(recv[0]) || replies != 1 {
		t.Fatalf("the README's first command printed\n%s\nwant fcrecv's two lines and fcsend's reply", r.stdout)
	}
	m := message.FindStringSubmatch(recv[1])
	if m == nil || m[1] != m[2] {
		t.Errorf("fcrecv's second line: %q", recv[1])
	}
	for _, s := range []string{attached.FindStringSubmatch(recv[0])[1], m[2]} {
		if pid, err := strconv.Atoi(s); err == nil {
			e.addPID(pid) // for the segment check
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		var names []string
		for _, de := range left {
			names = append(names, de.Name())
		}
		t.Errorf("the README's first command left %v in its temporary directory", names)
	}
}

// The README's tool tables give each tool's usage as its -h does, and
// every flag -h shows is in that usage.
func TestReadmeTools(t *testing.T) {
	e := newEnv(t)
	row := regexp.MustCompile("(?m)^\\| `(fc[a-z]+)((?:[^`]|\\\\\\|)*)` \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(readme(t), -1) {
		documented[m[1]] = m[1] + strings.ReplaceAll(m[2], `\|`, "|")
	}
	des, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, de := range des {
		if de.IsDir() && strings.HasPrefix(de.Name(), "fc") {
			tools = append(tools, de.Name())
		}
	}
	for _, tool := range tools {
		r := e.run("", tool, "-h")
		r.ok(t, tool+" -h")
		usage, _, _ := strings.Cut(r.stdout, "\n")
		usage = strings.TrimPrefix(usage, "usage: ")
		if got, ok := documented[tool]; !ok {
			t.Errorf("README's tool tables have no row for %s (-h: %q)", tool, usage)
		} else if got != usage {
			t.Errorf("README says\n\t%s\n%s -h says\n\t%s", got, tool, usage)
		}
		flags := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(r.stdout, -1)
		for _, f := range flags {
			if !slices.Contains(strings.FieldsFunc(usage, func(r rune) bool { return strings.ContainsRune(" []()|=", r) }), f[1]) {
				t.Errorf("%s -h shows %s, which its usage line %q does not", tool, f[1], usage)
			}
		}
	}
	for tool := range documented {
		if !slices.Contains(tools, tool) {
			t.Errorf("README documents %s, which tools/ does not hold", tool)
		}
	}
}

// The module is licensed Apache-2.0: LICENSE holds the license's text,
// whole (its title, its nine sections, and the appendix on applying it),
// and the README says so, and how to install once the module is
// published.
func TestLicense(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	license := strings.Join(strings.Fields(string(b)), " ")
	for _, want := range []string{
		"Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"1. Definitions.", "2. Grant of Copyright License.", "3. Grant of Patent License.",
		"4. Redistribution.", "5. Submission of Contributions.", "6. Trademarks.",
		"7. Disclaimer of Warranty.", "8. Limitation of Liability.",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
		"APPENDIX: How to apply the Apache License to your work.",
	} {
		if !strings.Contains(license, want) {
			t.Errorf("LICENSE does not hold %q: it must be the Apache License 2.0", want)
		}
	}
	if strings.Contains(license, "MIT License") {
		t.Error("LICENSE still holds the MIT License")
	}
	r := readme(t)
	_, section, ok := strings.Cut(r, "\n## License\n")
	if !ok || !strings.Contains(section, "Apache-2.0") || !strings.Contains(section, "LICENSE") || strings.Contains(section, "MIT") {
		t.Errorf("README's License section %q, want Apache-2.0 and LICENSE named", section)
	}
	for _, want := range []string{
		"go install github.com/gosimpl/gosimpl/tools/...@VERSION",
		"go get github.com/gosimpl/gosimpl@VERSION",
	} {
		if !strings.Contains(r, "\n"+want+"\n") {
			t.Errorf("README has no line %q for when the module is published", want)
		}
	}
}
