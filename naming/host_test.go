package naming

import (
	"context"
	"os"
	"strings"
	"testing"
)

// Which host is this one, as C SIMPL decides it: HOSTNAME if set, else
// /etc/hostname; "localhost" and 127.0.0.1 are other hosts.
func TestIsLocalHost(t *testing.T) {
	ctx := context.Background()
	t.Setenv("HOSTNAME", "vm")
	for host, want := range map[string]bool{"vm": true, "VM": false, "localhost": false, "127.0.0.1": false, "other": false, "": false} {
		if got, err := IsLocalHost(ctx, host); err != nil || got != want {
			t.Errorf("HOSTNAME=vm: IsLocalHost(%q) = %v, %v; want %v", host, got, err, want)
		}
	}
	t.Setenv("HOSTNAME", "localhost")
	if got, _ := IsLocalHost(ctx, "localhost"); !got {
		t.Error("HOSTNAME=localhost: localhost is not local")
	}
	t.Setenv("HOSTNAME", strings.Repeat("h", MaxHostLen+1))
	if _, err := IsLocalHost(ctx, "h"); err == nil {
		t.Error("a 52-byte HOSTNAME is accepted")
	}
	os.Unsetenv("HOSTNAME") // t.Setenv restores it after the test
	b, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Skipf("no /etc/hostname: %v", err)
	}
	want, _, _ := strings.Cut(string(b), "\n")
	want = want[:min(len(want), MaxHostLen)]
	if got, err := LocalHost(); err != nil || got != want {
		t.Errorf("LocalHost() = %q, %v; want %q from /etc/hostname", got, err, want)
	}
}
