package shm

import (
	"bufio"
	"github.com/gosimpl/gosimpl/internal/errs"
	"io"
	"os"
	"strconv"
	"strings"
)

// Probing for receivers from outside. Whether a receiver listens on shared
// memory is whether its socket (Address) is in the kernel's table of Unix
// sockets, /proc/net/unix, marked as listening: the table also lists the
// connections a listener accepted under the listener's address, and those
// outlive a listener that was closed.

// procNetUnix is the kernel's table of the Unix sockets of this network
// namespace: a header line, then one socket per line,
//
//	Num: RefCount Protocol Flags Type St Inode [Path]
//
// numbers in hex but the inode, the path ('@' first for an abstract one)
// after a single space, absent for an unnamed socket.
const procNetUnix = "/proc/net/unix"

// soAcceptCon is the Flags bit of a listening socket (__SO_ACCEPTCON).
const soAcceptCon = 1 << 16

// Listeners is the set of shm receivers that were listening when it was
// read (ReadListeners). It never changes once read, so it is safe for
// concurrent use; a nil *Listeners holds no receiver.
type Listeners struct {
	addrs map[string]struct{}
}

// ReadListeners reads the kernel's table of Unix sockets once and returns
// the shm receivers listening in this network namespace: one read for
// asking about many receivers.
func ReadListeners() (*Listeners, error) {
	f, err := os.Open(procNetUnix)
	if err != nil {
		return nil, errs.Errorf("shm listeners: %w", err)
	}
	defer f.Close()
	addrs, err := parseListeners(f)
	if err != nil {
		return nil, errs.Errorf("shm listeners: reading %s: %w", procNetUnix, err)
	}
	return &Listeners{addrs: addrs}, nil
}

// Has tells whether the receiver with this FIFO directory, name and pid
// was listening on its socket (Address) when l was read.
func (l *Listeners) Has(dir, name string, pid int) bool {
	if l == nil {
		return false
	}
	_, ok := l.addrs[Address(dir, name, pid)]
	return ok
}

// Listening tells whether the receiver with this FIFO directory, name and
// pid listens on its socket (Address) now. It reads the kernel's table of
// Unix sockets; to ask about many receivers, ReadListeners reads it once.
func Listening(dir, name string, pid int) (bool, error) {
	l, err := ReadListeners()
	if err != nil {
		return false, err
	}
	return l.Has(dir, name, pid), nil
}

// parseListeners returns the addresses of the listening sockets in r, a
// table in the form of procNetUnix, that begin with addrPrefix. Lines not
// in that form are skipped.
func parseListeners(r io.Reader) (map[string]struct{}, error) {
	out := make(map[string]struct{})
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest := sc.Text()
		var f [7]string // Num: RefCount Protocol Flags Type St Inode
		complete := true
		for i := range f {
			var found bool
			f[i], rest, found = strings.Cut(strings.TrimLeft(rest, " "), " ")
			if !found {
				complete = false // no path: an unnamed socket, or not a socket line
				break
			}
		}
		if !complete || !strings.HasSuffix(f[0], ":") || !strings.HasPrefix(rest, addrPrefix) {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&soAcceptCon == 0 {
			continue
		}
		out[rest] = struct{}{}
	}
	return out, sc.Err()
}
