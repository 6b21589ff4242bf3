package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// DefaultListen is where the embedded NATS server takes clients unless
// told otherwise: loopback only, NATS's usual port.
const DefaultListen = "127.0.0.1:4222"

// ClusterName is the name of the NATS cluster the embedded servers of
// gosimpl gateways form (-cluster, -routes): routes between servers of
// other names are refused.
const ClusterName = "gosimpl"

// ErrInsecure is what Network.Check returns when a listener would be
// reachable beyond loopback without TLS and authentication, or a
// connection would leave the host without them, and Insecure is not set.
var ErrInsecure = errors.New("refusing to run insecurely")

// Network is how a gateway reaches NATS: an embedded server (the
// default, on loopback; with Cluster and Routes joined to other hosts'
// gateways), or an existing deployment (NATS). Its fields are fcgate's
// flags.
type Network struct {
	// Host is the host the gateway serves: its connection's answers come
	// under netwire.Inbox(Host), and the embedded server gives each client
	// one host's permissions (see auth).
	Host string

	Listen  string   // the embedded server's client listener, HOST:PORT (port 0: any free one)
	Cluster string   // its cluster listener, HOST:PORT; "" for none
	Routes  []string // other servers' cluster listeners, nats://HOST:PORT
	NATS    []string // an existing deployment's URLs: no embedded server

	TLSCert, TLSKey string // this side's certificate and key (PEM files)
	TLSCA           string // the CA that signs every peer's certificate (PEM file)
	Creds           string // a NATS credentials file, for NATS
	NKey            string // a file holding an nkey seed, for NATS
	Insecure        bool   // allow plain, unauthenticated traffic beyond loopback

	// Log, if not nil, is told the NATS connection's asynchronous errors
	// (a slow consumer, a lost connection) and, connected to a
	// deployment, its losing and regaining a server, each as one line. A
	// subscription refused by the server's permissions is not among
	// them: New returns it.
	Log func(msg string)
}

// loopback reports whether the host part of addr (HOST:PORT) is a
// loopback address or "localhost".
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// mutualTLS reports whether TLS with peer certificates checked against a
// CA is configured: what authenticates the embedded server's clients
// and routes.
func (n *Network) mutualTLS() bool { return n.TLSCert != "" && n.TLSKey != "" && n.TLSCA != "" }

// Check validates n. Listening beyond loopback (the client or the
// cluster listener) needs TLS with peer certificates checked against
// TLSCA (-tls-cert, -tls-key, -tls-ca: mutual TLS, which both encrypts
// and authenticates), and so do routes; connecting to a deployment
// beyond loopback needs TLS (a tls:// URL or TLSCA) and credentials
// (Creds, NKey or a client certificate). Without them Check returns
// ErrInsecure, saying what is missing, unless Insecure.
func (n *Network) Check() error {
	if len(n.NATS) > 0 && (n.Listen != "" || n.Cluster != "" || len(n.Routes) > 0) {
		return errors.New("-nats connects to an existing NATS deployment: -listen, -cluster and -routes are for the embedded server")
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	if n.Creds != "" && n.NKey != "" {
		return errors.New("-creds and -nkey exclude each other")
	}
	if len(n.NATS) == 0 && (n.Creds != "" || n.NKey != "") {
		return errors.New("-creds and -nkey authenticate to an existing NATS deployment (-nats)")
	}
	if len(n.Routes) > 0 && n.Cluster == "" {
		return errors.New("-routes needs -cluster: routes join this server's cluster listener to others")
	}
	for _, a := range []struct{ flag, addr string }{{"-listen", n.Listen}, {"-cluster", n.Cluster}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := splitAddr(a.addr); err != nil {
			return fmt.Errorf("%s %s: %w", a.flag, a.addr, err)
		}
	}
	var urls []string
	for _, r := range n.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats" || u.Host == "" {
			return fmt.Errorf("-routes %s: want nats://HOST:PORT", r)
		}
	}
	for _, r := range n.NATS {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			return fmt.Errorf("-nats %s: want nats://HOST:PORT or tls://HOST:PORT", r)
		}
		urls = append(urls, r)
	}
	if err := readable(n.TLSCert, n.TLSKey, n.TLSCA, n.Creds, n.NKey); err != nil {
		return err
	}
	if n.Insecure {
		return nil
	}
	if len(n.NATS) > 0 {
		for _, r := range urls {
			u, _ := url.Parse(r)
			h := u.Host
			if u.Port() == "" {
				h = net.JoinHostPort(u.Hostname(), "4222")
			}
			if loopback(h) {
				continue
			}
			if u.Scheme != "tls" && n.TLSCA == "" {
				return fmt.Errorf("%w: -nats %s leaves this host without TLS (give a tls:// URL or -tls-ca), or give -insecure", ErrInsecure, r)
			}
			if n.Creds == "" && n.NKey == "" && n.TLSCert == "" {
				return fmt.Errorf("%w: -nats %s leaves this host without authentication (give -creds, -nkey or -tls-cert), or give -insecure", ErrInsecure, r)
			}
		}
		return nil
	}
	listen := n.Listen
	if listen == "" {
		listen = DefaultListen
	}
	exposed := []string{}
	if !loopback(listen) {
		exposed = append(exposed, "-listen "+listen)
	}
	if n.Cluster != "" && !loopback(n.Cluster) {
		exposed = append(exposed, "-cluster "+n.Cluster)
	}
	for _, r := range n.Routes {
		u, _ := url.Parse(r)
		if !loopback(u.Host) {
			exposed = append(exposed, "-routes "+r)
		}
	}
	if len(exposed) > 0 && !n.mutualTLS() {
		return fmt.Errorf("%w: %s reaches beyond loopback without TLS and authentication (give -tls-cert, -tls-key and -tls-ca), or give -insecure", ErrInsecure, strings.Join(exposed, ", "))
	}
	return nil
}

// splitAddr splits HOST:PORT, the port a number from 0 to 65535.
func splitAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("port %q: want 0 to 65535", port)
	}
	return host, p, nil
}

// Connected is a gateway's connection to NATS, and the embedded server
// when there is one. Close is idempotent.
type Connected struct {
	Conn   *nats.Conn
	Server *server.Server // nil when connected to a deployment
	URL    string         // where the gateway serves: the embedded server's client URL, or the deployment's URL it connected to
	closed chan struct{}  // closed when Conn is
}

// serverTLS is the embedded server's TLS configuration: its certificate,
// and peers' certificates required and checked against the CA (for
// clients and, as RootCAs, for the routes it dials).
func (n *Network) serverTLS() (*tls.Config, error) {
	if n.TLSCert == "" {
		return nil, nil
	}
	opts := &server.TLSConfigOpts{CertFile: n.TLSCert, KeyFile: n.TLSKey, CaFile: n.TLSCA, Verify: n.TLSCA != ""}
	c, err := server.GenTLSConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("TLS: %w", err)
	}
	c.RootCAs = c.ClientCAs
	return c, nil
}

// Connect starts the embedded server (unless NATS names a deployment)
// and connects to it, within ctx. name is the connection's name as NATS
// monitoring shows it. Call Check first.
func (n *Network) Connect(ctx context.Context, name string) (*Connected, error) {
	if err := checkHost(n.Host); err != nil {
		return nil, err
	}
	c := &Connected{closed: make(chan struct{})}
	opts := []nats.Option{
		nats.Name(name),
		// Requests this connection makes (nc.Request) take their answers
		// where this host's user may subscribe.
		nats.CustomInboxPrefix(netwire.Inbox(n.Host)),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		// A gateway that loses its server fails what is in flight
		// (outcome unknown) and keeps trying to reconnect.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(2 * time.Second),
		nats.DrainTimeout(5 * time.Second),
		// Without a handler nats.go prints these on stderr itself.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if n.Log == nil || errors.Is(err, nats.ErrPermissionViolation) {
				return
			}
			if sub != nil {
				n.Log(fmt.Sprintf("NATS, subscription %s: %v", sub.Subject, err))
				return
			}
			n.Log(fmt.Sprintf("NATS: %v", err))
		}),
	}
	if len(n.NATS) > 0 {
		opts = append(opts,
			// The servers are tried in the order given, not shuffled:
			// list the host's own node first, then the one to fail
			// over to.
			nats.DontRandomize(),
			// A server that goes silent without closing the
			// connection (its host cut off) is left after two
			// unanswered pings, about 3 s, not nats.go's 4 minutes.
			nats.PingInterval(time.Second),
			nats.MaxPingsOutstanding(2),
			// Nothing is kept to be sent after a reconnection: a
			// request published while the connection is down fails at
			// once (unreachable: nothing was sent) rather than going
			// out later, after its sender's gateway may have told the
			// sender its outcome is unknown. Answers and heartbeats
			// published meanwhile are lost too: their requesters end
			// in silence, outcome unknown.
			nats.ReconnectBufSize(-1),
			// A failover shows: the connection lost, and the server
			// it is on again.
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if n.Log != nil && err != nil { // nil: closed, not lost
					n.Log(fmt.Sprintf("NATS: connection lost (%v), reconnecting", err))
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				if n.Log != nil {
					n.Log("NATS: reconnected to " + nc.ConnectedUrlRedacted())
				}
			}),
		)
		if n.TLSCA != "" {
			opts = append(opts, nats.RootCAs(n.TLSCA))
		}
		if n.TLSCert != "" {
			opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
		}
		if n.Creds != "" {
			opts = append(opts, nats.UserCredentials(n.Creds))
		}
		if n.NKey != "" {
			o, err := nats.NkeyOptionFromSeed(n.NKey)
			if err != nil {
				return nil, fmt.Errorf("-nkey %s: %w", n.NKey, err)
			}
			opts = append(opts, o)
		}
		nc, err := connect(ctx, strings.Join(n.NATS, ","), opts)
		if err != nil {
			return nil, err
		}
		c.Conn, c.URL = nc, nc.ConnectedUrlRedacted()
		return c, nil
	}

	listen := n.Listen
	if listen == "" {
		listen = DefaultListen
	}
	host, port, err := splitAddr(listen)
	if err != nil {
		return nil, fmt.Errorf("-listen %s: %w", listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	tc, err := n.serverTLS()
	if err != nil {
		return nil, err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(tok[:])
	so := &server.Options{
		ServerName: strings.Join(strings.Fields(name), "-"), // unique per host in a cluster; no spaces
		Host:       host,
		Port:       port,
		NoLog:      true,
		NoSigs:     true,
		// Every client gets one host's subject permissions.
		CustomClientAuthentication: &auth{host: n.Host, token: token},
		// No monitoring port, no JetStream: a gateway carries requests
		// only.
	}
	if tc != nil {
		so.TLS, so.TLSConfig, so.TLSVerify, so.TLSTimeout = true, tc, n.TLSCA != "", 2
	}
	if n.Cluster != "" {
		ch, cp, err := splitAddr(n.Cluster)
		if err != nil {
			return nil, fmt.Errorf("-cluster %s: %w", n.Cluster, err)
		}
		if cp == 0 {
			cp = server.RANDOM_PORT
		}
		so.Cluster = server.ClusterOpts{
			Name: ClusterName, Host: ch, Port: cp,
			// A route whose peer went silent (a host cut off) is
			// dropped within about two seconds.
			PingInterval: time.Second, MaxPingsOut: 2,
		}
		if tc != nil {
			so.Cluster.TLSConfig, so.Cluster.TLSTimeout = tc, 2
		}
		for _, r := range n.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("-routes %s: %w", r, err)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("NATS server: %w", err)
	}
	go ns.Start()
	wait := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("NATS server on %s: not ready within %v (is the port taken?)", listen, wait)
	}
	// The gateway's own connection is in-process: no socket, no TLS to
	// itself (nats.go would take a tls:// URL as asking for TLS).
	opts = append(opts, nats.InProcessServer(ns), nats.Token(token))
	nc, err := connect(ctx, strings.Replace(ns.ClientURL(), "tls://", "nats://", 1), opts)
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	c.Conn, c.Server, c.URL = nc, ns, ns.ClientURL()
	if tc != nil {
		c.URL = strings.Replace(c.URL, "nats://", "tls://", 1)
	}
	return c, nil
}

// connect connects to urls within ctx: nats.Connect takes no context,
// and tries each URL for up to its own timeout (2 s), so it runs on a
// goroutine of its own, which closes what it connected if ctx ended
// first.
func connect(ctx context.Context, urls string, opts []nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(urls, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connecting to NATS at %s: %w", urls, r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connecting to NATS at %s: %w", urls, ctx.Err())
	}
}

// Routes is how many routes the embedded server has to other servers
// (0 without one).
func (c *Connected) Routes() int {
	if c.Server == nil {
		return 0
	}
	return c.Server.NumRoutes()
}

// Close drains the connection (what was published goes out; answers
// still on their way in are handled) within d, then shuts the embedded
// server down.
func (c *Connected) Close(d time.Duration) error {
	var err error
	if c.Conn != nil && !c.Conn.IsClosed() {
		if derr := c.Conn.Drain(); derr != nil {
			c.Conn.Close()
		}
		select {
		case <-c.closed:
		case <-time.After(d):
			c.Conn.Close()
			<-c.closed
			err = fmt.Errorf("NATS connection not drained within %v", d)
		}
	}
	if c.Server != nil {
		c.Server.Shutdown()
		c.Server.WaitForShutdown()
		c.Server = nil
	}
	return err
}

// readable checks that each file can be read, for a clear error before
// anything starts.
func readable(files ...string) error {
	for _, f := range files {
		if f == "" {
			continue
		}
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		fh.Close()
	}
	return nil
}
