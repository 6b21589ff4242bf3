package gateway

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/netwire"
)

// FuzzCertHost: certHost reads the host a client certificate names (its
// first DNS name, else its common name: text the certificate's issuer
// chose), and the embedded server then lets that client publish and
// subscribe as that host (hostUser). Whatever the names hold, certHost
// never crashes and returns "" or the name it read, a host checkHost
// takes; and the permissions such a host gets hold no more wildcards than
// a plain host's: the host goes into each subject as one token, which
// reads back as the host.
func FuzzCertHost(f *testing.F) {
	f.Add("gw1.example", "", false)
	f.Add("ignored", "host-b", true)
	f.Add("*", ">", true)
	f.Add("a.b.*", "", false)
	f.Add("h>", "x y", true)
	f.Add("", "", true)
	f.Add(strings.Repeat("h", 300), "", false)
	f.Add("tab\there", "nl\nhere", true)
	plain := func() (pub, sub []string) { return netwire.Permissions("H") }
	wild := func(s string) int { return strings.Count(s, "*") + strings.Count(s, ">") }
	f.Fuzz(func(t *testing.T, cn, dns string, withDNS bool) {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		want := cn
		if withDNS {
			c.DNSNames = []string{dns, "second.example"}
			want = dns
		}
		h := certHost(c)
		if h == "" {
			return
		}
		if h != want {
			t.Fatalf("cn %q, dns %q (%v): host %q", cn, dns, withDNS, h)
		}
		if err := checkHost(h); err != nil {
			t.Fatalf("host %q taken, but %v", h, err)
		}
		tok := netwire.Token(h)
		if tok == "" || strings.ContainsAny(tok, ".*> \t\r\n") {
			t.Fatalf("host %q: token %q is not one plain subject token", h, tok)
		}
		if back, err := netwire.Untoken(tok); err != nil || back != h {
			t.Fatalf("host %q: token %q reads back as %q, %v", h, tok, back, err)
		}
		u := hostUser(h, "certificate")
		ppub, psub := plain()
		for _, side := range []struct {
			got, plain []string
		}{{u.Permissions.Publish.Allow, ppub}, {u.Permissions.Subscribe.Allow, psub}} {
			if len(side.got) != len(side.plain) {
				t.Fatalf("host %q: %d subjects, a plain host %d", h, len(side.got), len(side.plain))
			}
			for i, s := range side.got {
				if wild(s) != wild(side.plain[i]) {
					t.Fatalf("host %q: subject %q has wildcards a plain host's %q has not", h, s, side.plain[i])
				}
			}
		}
	})
}
