package cli

import (
	"io"
	"strings"
	"sync"
)

// Tail keeps the end of what a child process writes on its stderr, to
// say in one line why it failed. Safe for concurrent use.
type Tail struct {
	mu  sync.Mutex
	buf []byte
}

// tailMax is how much of a child's stderr a Tail keeps.
const tailMax = 4096

func (t *Tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(b), nil
}

// LastLine is the last non-empty line written, or for a Go panic or race
// report (many lines) its first line in the kept tail, its spaces
// squeezed to one.
func (t *Tail) LastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "WARNING: DATA RACE") || strings.HasPrefix(l, "fatal error:") {
			return oneLine(l)
		}
	}
	return oneLine(lines[len(lines)-1])
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Forward writes what the child wrote, if anything, to w: for a child
// that succeeded, nothing it said is hidden.
func (t *Tail) Forward(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) > 0 {
		w.Write(t.buf)
	}
}
