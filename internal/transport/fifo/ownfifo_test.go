package fifo

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A FIFO this process made is opened only as what it made: a symbolic
// link put in its place (in a directory others may write), even to a
// FIFO, and a regular file are refused, and the file a link points at is
// left as it was (helper-47).
func TestOpenOwnFIFO(t *testing.T) {
	dir := t.TempDir()
	fifoPath := filepath.Join(dir, "real")
	if err := syscall.Mkfifo(fifoPath, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := openOwnFIFO(fifoPath)
	if err != nil {
		t.Fatalf("openOwnFIFO of a FIFO: %v", err)
	}
	f.Close()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, link := range map[string]string{"link to a file": target, "link to a FIFO": fifoPath} {
		path := filepath.Join(dir, "S.1")
		os.Remove(path)
		if err := os.Symlink(link, path); err != nil {
			t.Fatal(err)
		}
		if f, err := openOwnFIFO(path); err == nil {
			f.Close()
			t.Errorf("%s: opened", name)
		}
	}
	if f, err := openOwnFIFO(target); err == nil {
		f.Close()
		t.Error("a regular file: opened")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the target now holds %q", b)
	}
}
