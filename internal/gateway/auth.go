package gateway

import (
	"crypto/subtle"
	"crypto/x509"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/nats-io/nats-server/v2/server"
)

// auth is the embedded server's client authentication: every client gets
// the subject permissions of exactly one host (netwire.Permissions), so
// that no client of any host's server can answer for another host, send
// as another, or read another's answers.
//
//   - The gateway's own in-process connection presents token, a random
//     secret it alone knows: it is this host's gateway.
//   - A client that showed a certificate the CA signed (-tls-ca: the
//     server requires one of every client) is the host its certificate
//     names (the first DNS name, else the common name): another host's
//     gateway connecting as a client, or one of that host's programs.
//   - Any other client reached a listener that is loopback, or that the
//     operator opened without TLS (-insecure): it is one of this host's
//     programs, and may send as this host to other hosts' names (and a
//     request's later chunks) but serve nothing and read no gateway's
//     answers: it may subscribe only to answers under its own host's
//     inbox prefix for programs. It may not send to this host's own
//     names: the gateway would deliver those as itself, whatever their
//     FIFOs' modes or its own -perm allow the program's user.
//
// Routes between servers are not clients: the cluster's TLS admits them
// (a server is trusted with every host's traffic that crosses it).
type auth struct {
	host  string // this gateway's host
	token string // what the gateway's own connection presents
}

// Check admits a client and registers its permissions.
func (a *auth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false // leaf nodes and the like: not offered
	}
	if o := c.GetOpts(); o != nil && o.Token != "" {
		if subtle.ConstantTimeCompare([]byte(o.Token), []byte(a.token)) != 1 {
			return false
		}
		c.RegisterUser(hostUser(a.host, "gateway"))
		return true
	}
	if cs := c.GetTLSConnectionState(); cs != nil && len(cs.PeerCertificates) > 0 {
		host := certHost(cs.PeerCertificates[0])
		if host == "" {
			return false
		}
		c.RegisterUser(hostUser(host, "certificate"))
		return true
	}
	c.RegisterUser(&server.User{
		Username: "program@" + a.host,
		Permissions: &server.Permissions{
			// Requests as this host, and their later chunks (to the
			// receiving gateway's inbox, whose subject only a request's
			// receiver learns).
			// Never to this host's own names: those a program reaches
			// through the local transports, as their FIFOs' modes
			// allow, not as the gateway (whose user it may not be).
			Publish: &server.SubjectPermission{
				Allow: []string{netwire.FromSubjects(a.host), netwire.InboxPrefix + ">", netwire.RawPrefix + ">"},
				Deny:  []string{netwire.HostSubjects(a.host)},
			},
			Subscribe: &server.SubjectPermission{Allow: []string{ProgramInbox(a.host) + ".>", netwire.RawPrefix + ">"}},
		},
	})
	return true
}

// ProgramInbox is the inbox prefix of a host's programs that connect to
// its gateway's embedded server without a certificate
// (nats.CustomInboxPrefix): within netwire.Inbox(host), apart from the
// gateway's.
func ProgramInbox(host string) string { return netwire.Inbox(host) + ".p" }

func hostUser(host, how string) *server.User {
	pub, sub := netwire.Permissions(host)
	return &server.User{
		Username: how + "@" + host,
		Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: sub},
		},
	}
}

// certHost is the host a client certificate names: its first DNS name,
// else its common name ("" if it is not a host name gosimpl takes).
func certHost(c *x509.Certificate) string {
	h := c.Subject.CommonName
	if len(c.DNSNames) > 0 {
		h = c.DNSNames[0]
	}
	if checkHost(h) != nil {
		return ""
	}
	return h
}
