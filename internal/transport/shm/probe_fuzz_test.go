package shm

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzParseListeners: parseListeners reads the kernel's table of Unix
// sockets (/proc/net/unix), in which any local user names sockets as it
// likes (an abstract name may hold any byte, newlines included). Whatever
// the table holds it never crashes, fails only on a line longer than a
// scanner takes (bufio.ErrTooLong), and returns only addresses under
// addrPrefix with no newline in them; and a listening socket's line in
// the kernel's form, after whatever came before it, is found.
func FuzzParseListeners(f *testing.F) {
	real := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000075526456: 00000003 00000000 00000000 0001 03  1343\n" +
		"00000000667d507f: 00000002 00000000 00010000 0005 01 23456 @gosimpl/00f3a1b2c3d4e5f6/RECV.4242\n" +
		"0000000012345678: 00000002 00000000 00010000 0001 01 23457 /run/systemd/notify\n" +
		"00000000abcdef01: 00000003 00000000 00000000 0001 03 23458 @gosimpl/00f3a1b2c3d4e5f6/SEND.77\n"
	f.Add(real, "00f3a1b2c3d4e5f6/OTHER.1")
	f.Add("", "0000000000000000/A.1")
	f.Add("garbage with no fields", "x")
	f.Add("00000000667d507f: 00000002 00000000 0001000 0005 01 1 @gosimpl/y\n0: 1 2 zz 4 5 6 @gosimpl/z", "a b")
	f.Add("0: 1 2 ffffffffff 4 5 6 @gosimpl/big\n", "a\x00b")
	f.Fuzz(func(t *testing.T, table, addr string) {
		if len(table) > 32<<10 || len(addr) > 4<<10 {
			return
		}
		got, err := parseListeners(strings.NewReader(table))
		if err != nil && !errors.Is(err, bufio.ErrTooLong) {
			t.Fatalf("table %q: error %v", table, err)
		}
		check := func(got map[string]struct{}) {
			for a := range got {
				if !strings.HasPrefix(a, addrPrefix) || strings.ContainsRune(a, '\n') {
					t.Fatalf("table %q: address %q", table, a)
				}
			}
		}
		check(got)

		// One listening socket of ours, in the kernel's form, after the table.
		if strings.ContainsAny(addr, "\r\n") || len(table) > 60<<10 {
			return
		}
		sep := ""
		if table != "" && !strings.HasSuffix(table, "\n") {
			sep = "\n"
		}
		want := addrPrefix + addr
		line := fmt.Sprintf("00000000667d507f: 00000002 00000000 00010000 0005 01 %5d %s\n", 99, want)
		got, err = parseListeners(strings.NewReader(table + sep + line))
		if err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return
			}
			t.Fatalf("table %q then %q: error %v", table, line, err)
		}
		check(got)
		if _, ok := got[want]; !ok {
			t.Fatalf("table %q then %q: %q not found in %v", table, line, want, got)
		}
	})
}
