package shm

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The table is read as the kernel writes it: only listening sockets count,
// only gosimpl's, whatever the padding; other lines are skipped.
func TestParseListeners(t *testing.T) {
	dir := "/var/tmp"
	a := Address(dir, "ALPHA", 100)    // listening
	b := Address(dir, "BETA", 101)     // only a connection accepted under its address
	c := Address(dir, "GAMMA", 102)    // listening, a short inode padded
	d := Address(dir, "DELTA", 103)    // flags unreadable
	e := Address("/tmp", "ALPHA", 100) // another directory's, listening
	table := strings.Join([]string{
		"Num       RefCount Protocol Flags    Type St Inode Path",
		"0000000000000000: 00000002 00000000 00010000 0005 01 12345 " + a,
		"0000000000000000: 00000003 00000000 00000000 0005 03 12346 " + a,
		"0000000000000000: 00000003 00000000 00000000 0005 03 12347 " + b,
		"0000000000000000: 00000002 00000000 00010000 0005 01   777 " + c,
		"0000000000000000: 00000002 00000000 0001000z 0005 01 12348 " + d,
		"0000000000000000: 00000002 00000000 00010000 0005 01 12349 " + e,
		"0000000000000000: 00000002 00000000 00010000 0001 01 12350 /run/other.sock",
		"0000000000000000: 00000002 00000000 00010000 0001 01 12351 @other/ALPHA.100",
		"0000000000000000: 00000003 00000000 00000000 0001 03  1077",
		"00010000 0005 01 12352 " + d, // no Num: column
		"",
		"garbage",
	}, "\n") + "\n"
	got, err := parseListeners(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a, c, e}
	slices.Sort(want)
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
		t.Fatalf("listening: %q, want %q", keys, want)
	}
	l := &Listeners{addrs: got}
	for _, tc := range []struct {
		dir, name string
		pid       int
		want      bool
	}{
		{dir, "ALPHA", 100, true}, {dir, "GAMMA", 102, true}, {"/tmp", "ALPHA", 100, true},
		{dir, "BETA", 101, false}, {dir, "DELTA", 103, false}, {dir, "ALPHA", 101, false},
		{dir, "ALPH", 100, false}, {"/var/tmp/", "ALPHA", 100, true}, // one directory, any spelling
	} {
		if l.Has(tc.dir, tc.name, tc.pid) != tc.want {
			t.Errorf("Has(%q, %q, %d) = %v", tc.dir, tc.name, tc.pid, !tc.want)
		}
	}
	if (*Listeners)(nil).Has(dir, "ALPHA", 100) {
		t.Error("a nil Listeners has a receiver")
	}
}

// Against the kernel's own table: a socket at Address is seen while it
// listens, and no longer once its listener is closed, though a connection
// it accepted, listed under the same address, is still open.
func TestListening(t *testing.T) {
	dir, name, pid := t.TempDir(), "PROBE", os.Getpid()
	listening := func(what string, want bool) {
		t.Helper()
		got, err := Listening(dir, name, pid)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: Listening = %v, want %v", what, got, want)
		}
	}
	listening("before listening", false)
	addr := &net.UnixAddr{Name: Address(dir, name, pid), Net: "unixpacket"}
	ln, err := net.ListenUnix("unixpacket", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	listening("listening", true)
	l, err := ReadListeners()
	if err != nil {
		t.Fatal(err)
	}
	if !l.Has(dir, name, pid) || l.Has(dir, name, pid+1) || l.Has(dir+"x", name, pid) || l.Has(dir, name+"X", pid) {
		t.Fatalf("ReadListeners: Has(%q, %q, %d) must be true, and false for another pid, directory or name", dir, name, pid)
	}

	dialed, err := net.DialUnix("unixpacket", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	accepted, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	listening("listener closed, a connection it accepted open", false)
}

// One directory, however spelled, has one address; another has another.
func TestAddressDirIdentity(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	want := Address(dir, "SRV", 42)
	for _, spelling := range []string{dir + "/", "/" + dir, dir + "/.", link, link + "/"} {
		if got := Address(spelling, "SRV", 42); got != want {
			t.Errorf("Address(%q) = %q, want %q (as for %q)", spelling, got, want, dir)
		}
	}
	if Address(t.TempDir(), "SRV", 42) == want {
		t.Error("two directories share an address")
	}
}
