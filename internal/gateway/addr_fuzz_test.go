package gateway

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// FuzzSplitAddr: an address splitAddr accepts (-listen, -cluster, the
// hosts of -routes) has a port of 0 to 65535, and joined again splits
// back to the same host and port; a refused one is an error, with no
// host or port.
func FuzzSplitAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:4222", ":0", "[::1]:65535", "h:65536", "h:-1", "h:+80", "h:0080", "h", "h:", "[::1", "a:b:c", "h:99999999999999999999", "[fe80::1%eth0]:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		host, port, err := splitAddr(addr)
		if err != nil {
			if host != "" || port != 0 || err.Error() == "" {
				t.Fatalf("splitAddr(%q) = %q, %d with error %v", addr, host, port, err)
			}
			return
		}
		if port < 0 || port > 65535 {
			t.Fatalf("splitAddr(%q): port %d", addr, port)
		}
		if !strings.Contains(addr, host) {
			t.Fatalf("splitAddr(%q): host %q not in it", addr, host)
		}
		joined := net.JoinHostPort(host, strconv.Itoa(port))
		h2, p2, err := splitAddr(joined)
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("splitAddr(%q) = %q, %d, but splitAddr(%q) = %q, %d, %v", addr, host, port, joined, h2, p2, err)
		}
	})
}
