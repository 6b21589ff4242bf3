package naming

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"time"
)

// LocalHost is this host's name as C SIMPL takes it, to tell a local
// "HOST:NAME" from a remote one: the environment variable HOSTNAME if it is
// set (more than 51 bytes is an error), else the first 51 bytes of the
// first line of /etc/hostname.
func LocalHost() (string, error) {
	if h, ok := os.LookupEnv("HOSTNAME"); ok {
		if len(h) > MaxHostLen {
			return "", fmt.Errorf("%w: HOSTNAME is %d bytes, at most %d", ErrBadName, len(h), MaxHostLen)
		}
		return h, nil
	}
	b, err := os.ReadFile("/etc/hostname")
	if err != nil {
		return "", fmt.Errorf("this host's name: %w", err)
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b[:min(len(b), MaxHostLen)]), nil
}

// resolveTimeout bounds the lookup of this host's addresses.
const resolveTimeout = time.Second

// IsLocalHost tells whether host names this host, by C SIMPL's rules:
// host is LocalHost, or a dotted IPv4 address among those this host's name
// resolves to (within ctx, and at most a second), but never "127.0.0.1",
// which C SIMPL always sends through the network. "localhost" is remote
// unless it is LocalHost (HOSTNAME=localhost).
func IsLocalHost(ctx context.Context, host string) (bool, error) {
	local, err := LocalHost()
	if err != nil {
		return false, err
	}
	if host == local {
		return true, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil || host == "127.0.0.1" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, local)
	if err != nil {
		// Unresolvable: no address is this host's by name.
		return false, nil
	}
	return slices.Contains(addrs, host), nil
}
