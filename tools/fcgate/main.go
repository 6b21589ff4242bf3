// Command fcgate is a host's gateway to other hosts: programs on this host
// reach "host:NAME" through it, and it serves this host's names to the
// others, over NATS (see docs/network.md).
//
//	fcgate [-host NAME] [-listen HOST:PORT] [-cluster HOST:PORT] [-routes URL,...] [-nats URL,...]
//	       [-tls-cert FILE] [-tls-key FILE] [-tls-ca FILE] [-creds FILE] [-nkey FILE] [-insecure]
//	       [-perm MODE] [-max-inflight N] [-max-inbound N] [-max-bytes N] [-max-host-names N] [-policy FILE] [-csimpl=false]
//	       [-csimpl-tcp HOST:PORT [-csimpl-tcp-allow CIDR,...]] [-csimpl-hosts HOST[=ADDR:PORT],...] [-csimpl-tcp-port N] [-csimpl-tcp-k DURATION] [-csimpl-tcp-conns N] [-csimpl-tcp-binary] [-csimpl-tcp-max N] [-v]
//	fcgate -permissions [-host NAME]
//
// It attaches the name _gosimpl_gw (mode 0666 unless -perm says
// otherwise, so every local user's programs can use it). With no flags it
// runs an embedded NATS server on 127.0.0.1:4222 (-listen moves it;
// port 0 picks a free one); -cluster opens the embedded server's cluster
// listener and -routes joins other hosts' gateways to it, as a NATS
// cluster; -nats connects to an existing NATS deployment instead of
// embedding a server, authenticating with -creds, -nkey or a client
// certificate. -tls-cert, -tls-key and -tls-ca put TLS on the embedded
// server's listeners (peers must show a certificate signed by the CA:
// mutual TLS, which also authenticates them) or on the connection to a
// deployment. Listening beyond loopback without TLS and authentication
// is refused (exit status 2, one line) unless -insecure.
//
// Every client of the embedded server gets one host's NATS subject
// permissions: its gateway and clients whose certificate names that host
// may serve that host's names and send as it; other clients, as this
// host's programs, may only send. -permissions prints the permissions a
// deployment should give host NAME's gateway user (for -nats) and exits.
// -policy FILE says which senders on other hosts may reach which local
// names (deny by default once given; see docs/network.md); the file is
// read again whenever it changes ("fcgate: policy FILE read again: N
// rules" on stderr), and one it cannot take leaves the policy in force.
//
// Unless -csimpl=false, it also serves this host's C SIMPL programs'
// "host:NAME": as their protocol router _simplProtoRouter when none runs,
// else registered with the one that does (docs/network.md, "C SIMPL
// programs"); it prints "fcgate: C SIMPL programs: ROLE" before its ready
// line.
//
// It also publishes this host's names to the other gateways and follows
// theirs, for fclocator -hosts (docs/network.md, "Names across hosts"); if
// the deployment's permissions refuse it the names subjects it says so on
// stderr ("fcgate: names across hosts are off: ...") and carries Sends
// all the same. It follows at most -max-host-names names of one other
// host (100000); a host with more is followed without its names, and a
// line on stderr says so.
//
// -csimpl-tcp takes C SIMPL hosts' surrogateTcp connections (their
// senders' "thishost:NAME"), in C SIMPL's char encoding unless
// -csimpl-tcp-binary; beyond loopback only from -csimpl-tcp-allow's
// addresses, since that protocol authenticates nobody. It prints
// "fcgate: C SIMPL surrogates (ENCODING) on ADDR". The other way, this
// host's senders reach names on C SIMPL hosts through those hosts'
// surrogateTcp: any name written "_simplTCP:HOST:NAME" (at HOST's
// -csimpl-tcp-port, 8001 by default), and "HOST:NAME" for the hosts
// -csimpl-hosts lists, in the same encoding.
//
// Once serving it prints "fcgate: host NAME serving through URL". With
// -v it prints a line per request it handled, and when it stops, how many
// it carried each way and how many were bad, duplicates, refused as busy,
// of unknown outcome or unreachable, how many requests and replies in
// chunks it dropped before they were whole, the most bytes it held of
// -max-bytes, and how many its policy denied; then a line of
// names-across-hosts counts (gateway runs followed, snapshots asked, bad
// messages, snapshots that came in parts, refused over the cap); for C SIMPL programs, a line "csimpl: ..." per name located
// or failure, and their counts (requests to the router, registrations
// handed out, names located and not found, Sends carried and failed,
// proxies, bad messages, surrogates refused for the limit). SIGINT,
// SIGTERM and SIGHUP stop it: requests arriving are answered "shutting
// down", those in flight get 5 s to finish, then the NATS connection
// drains, the embedded server stops and the name is detached.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/surrogate"
	"github.com/gosimpl/gosimpl/internal/surwire"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

const usage = "usage: fcgate [-host NAME] [-listen HOST:PORT] [-cluster HOST:PORT] [-routes URL,...] [-nats URL,...] [-tls-cert FILE] [-tls-key FILE] [-tls-ca FILE] [-creds FILE] [-nkey FILE] [-insecure] [-perm MODE] [-max-inflight N] [-max-inbound N] [-max-bytes N] [-max-host-names N] [-policy FILE] [-csimpl=false] [-csimpl-tcp HOST:PORT [-csimpl-tcp-allow CIDR,...]] [-csimpl-hosts HOST[=ADDR:PORT],...] [-csimpl-tcp-port N] [-csimpl-tcp-k DURATION] [-csimpl-tcp-conns N] [-csimpl-tcp-binary] [-csimpl-tcp-max N] [-v] | -permissions [-host NAME]"

// exitRefused is the exit status of a refusal to run insecurely.
const exitRefused = 2

// drainTime bounds the NATS connection's drain at exit.
const drainTime = 5 * time.Second

func main() {
	signal.Ignore(syscall.SIGPIPE)
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, gateway.ErrInsecure) {
		cli.Report(os.Stderr, "fcgate", err)
		os.Exit(exitRefused)
	}
	cli.Exit("fcgate", err)
}

// list splits a comma-separated flag value.
func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// surrogateOptions checks the -csimpl-tcp flags: listening beyond
// loopback needs an allow-list, as the protocol authenticates nobody.
func surrogateOptions(listen, allow string, binary bool, max int) (surrogate.Options, error) {
	o := surrogate.Options{MaxMessage: max}
	if binary {
		o.Encoding = surwire.Binary
	}
	if max < 1 || max > netwire.MaxPayload {
		return o, fmt.Errorf("-csimpl-tcp-max %d: want 1 to %d", max, netwire.MaxPayload)
	}
	for _, a := range list(allow) {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			addr, aerr := netip.ParseAddr(a)
			if aerr != nil {
				return o, fmt.Errorf("-csimpl-tcp-allow %q: want addresses or CIDR prefixes", a)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		o.Allow = append(o.Allow, p)
	}
	if listen != "" && len(o.Allow) == 0 {
		host, _, err := net.SplitHostPort(listen)
		ip, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || !ip.IsLoopback() {
			return o, fmt.Errorf("%w: -csimpl-tcp %s takes connections from the network, whose protocol authenticates nobody: give -csimpl-tcp-allow with the C SIMPL hosts' addresses", gateway.ErrInsecure, listen)
		}
	}
	return o, nil
}

// watchPolicy reads the policy file again whenever it is written or
// replaced (an edit in place, or a new file renamed over it) and hands
// it to set; a file it cannot read or parse leaves the policy as it was,
// and says why through logf, as it says each new one. stop ends the
// watch.
func watchPolicy(path string, set func(*gateway.Policy), logf func(string)) (stop func(), err error) {
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	f, err := sys.WatchWrites(dir)
	if err != nil {
		return nil, fmt.Errorf("-policy %s: watching for changes: %w", path, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return // closed by stop
			}
			changed := false
			for _, e := range sys.ParseDirEvents(buf[:n]) {
				changed = changed || e.Name == base
			}
			if !changed {
				continue
			}
			p, err := gateway.ReadPolicy(path)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) { // gone for a moment: a rename follows
					logf(fmt.Sprintf("%v; keeping the policy in force", err))
				}
				continue
			}
			set(p)
			logf(fmt.Sprintf("policy %s read again: %d rules", path, p.Rules()))
		}
	}()
	return func() {
		f.Close()
		<-done
	}, nil
}

// surrogateRoutes reads -csimpl-hosts: HOST (its surrogateTcp at port)
// or HOST=ADDR:PORT, comma-separated.
func surrogateRoutes(hosts string, port int, o surrogate.Options) (*surrogate.Routes, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("-csimpl-tcp-port %d: want 1 to 65535", port)
	}
	r := &surrogate.Routes{Hosts: map[string]string{}, Port: port}
	for _, h := range list(hosts) {
		name, addr, ok := strings.Cut(h, "=")
		if !ok {
			addr = net.JoinHostPort(name, strconv.Itoa(port))
		}
		if _, p, err := net.SplitHostPort(addr); err != nil || name == "" || len(name) > naming.MaxHostLen || strings.ContainsAny(name, ": ") {
			return nil, fmt.Errorf("-csimpl-hosts %q: want HOST or HOST=ADDR:PORT", h)
		} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("-csimpl-hosts %q: port %q", h, p)
		}
		r.Hosts[name] = addr
	}
	return r, nil
}

// quoted lists subjects as a NATS configuration writes them.
func quoted(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcgate", flag.ContinueOnError)
	host := fs.String("host", "", "this host's name, as other hosts' programs write it in host:NAME (default: $HOSTNAME, else /etc/hostname)")
	listen := fs.String("listen", "", "the embedded NATS server's client listener, HOST:PORT (default "+gateway.DefaultListen+"; port 0 picks one)")
	cluster := fs.String("cluster", "", "the embedded server's cluster listener, HOST:PORT, for other hosts' gateways (-routes)")
	routes := fs.String("routes", "", "other hosts' gateways' cluster listeners to join, nats://HOST:PORT,...")
	natsURLs := fs.String("nats", "", "connect to an existing NATS deployment, nats://HOST:PORT,... or tls://..., instead of embedding a server")
	tlsCert := fs.String("tls-cert", "", "this gateway's TLS certificate (PEM): for the embedded server's listeners, or as a client certificate with -nats")
	tlsKey := fs.String("tls-key", "", "the key of -tls-cert (PEM)")
	tlsCA := fs.String("tls-ca", "", "the CA (PEM) that signs every peer's certificate: peers without one are refused")
	creds := fs.String("creds", "", "a NATS credentials file to authenticate to -nats with")
	nkey := fs.String("nkey", "", "a file holding an nkey seed to authenticate to -nats with")
	insecure := fs.Bool("insecure", false, "allow listening and connecting beyond loopback without TLS and authentication")
	perm := fs.String("perm", "0666", "mode of the gateway's name: which local users' programs may use it (octal)")
	maxInflight := fs.Int("max-inflight", gateway.DefaultMaxInflight, "most requests from local programs carried at once; more are answered busy, unsent")
	maxInbound := fs.Int("max-inbound", gateway.DefaultMaxInbound, "most requests from other hosts delivered at once; more are answered busy, undelivered")
	maxBytes := fs.Int64("max-bytes", gateway.DefaultMaxBytes, "most bytes held for messages larger than one NATS message (in chunks), both ways; more are answered full, unsent")
	maxHostNames := fs.Int("max-host-names", gateway.DefaultMaxHostNames, "most names followed of one other host (names across hosts); a host with more is listed without names, and said so")
	policy := fs.String("policy", "", "a policy file: which senders on other hosts may reach which local names (deny by default once given)")
	permissions := fs.Bool("permissions", false, "print the NATS permissions a deployment should give this host's gateway user, and exit")
	csimpl := fs.Bool("csimpl", true, "serve C SIMPL programs' host:NAME: be their protocol router, or register with theirs")
	surListen := fs.String("csimpl-tcp", "", "take C SIMPL hosts' surrogateTcp connections at HOST:PORT (their port is 8001): their senders reach this host's names; no authentication in that protocol")
	surAllow := fs.String("csimpl-tcp-allow", "", "addresses (CIDR,...) whose surrogates -csimpl-tcp takes besides loopback ones: required beyond loopback")
	surBinary := fs.Bool("csimpl-tcp-binary", false, "-csimpl-tcp speaks the binary encoding (default: char, as C SIMPL ships)")
	surMax := fs.Int("csimpl-tcp-max", surrogate.DefaultMaxMessage, "largest message or reply, bytes, through C SIMPL hosts' surrogates, both ways")
	surHosts := fs.String("csimpl-hosts", "", "hosts running C SIMPL (HOST or HOST=ADDR:PORT,...): this host's senders reach their host:NAME through their surrogateTcp, as _simplTCP:HOST:NAME always does")
	surConns := fs.Int("csimpl-tcp-conns", surrogate.DefaultPerPeer, "connections at once to one C SIMPL host, and from one (a Send beyond waits for one)")
	surK := fs.Duration("csimpl-tcp-k", surrogate.DefaultKeepAlive, "keep-alive period with C SIMPL hosts' surrogates (their -k), both ways: a peer silent for four is gone")
	surPort := fs.Int("csimpl-tcp-port", surrogate.DefaultPort, "the port of C SIMPL hosts' surrogateTcp (their -a), for -csimpl-hosts without one and _simplTCP:HOST:NAME")
	verbose := fs.Bool("v", false, "print a line per request handled, and counts when stopping")
	if help, err := cli.ParseMore(fs, args, usage, stdout, "exit status:\n  2 when refusing to listen or connect beyond loopback without TLS and authentication (see -insecure)\n"); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; %s", fs.Args(), usage)
	}
	mode, err := strconv.ParseUint(*perm, 8, 32)
	if err != nil || mode > 0o777 {
		return fmt.Errorf("-perm %s: want an octal mode such as 0666 or 0600", *perm)
	}
	var opts []gateway.Option
	for _, o := range []struct {
		flag string
		n    int
		opt  func(int) gateway.Option
	}{{"-max-inflight", *maxInflight, gateway.WithMaxInflight}, {"-max-inbound", *maxInbound, gateway.WithMaxInbound}} {
		if o.n < 1 {
			return fmt.Errorf("%s %d: must be 1 or more", o.flag, o.n)
		}
		opts = append(opts, o.opt(o.n))
	}
	if *maxBytes < 1 {
		return fmt.Errorf("-max-bytes %d: must be 1 or more", *maxBytes)
	}
	opts = append(opts, gateway.WithMaxBytes(*maxBytes))
	if *maxHostNames < 1 {
		return fmt.Errorf("-max-host-names %d: must be 1 or more", *maxHostNames)
	}
	opts = append(opts, gateway.WithMaxHostNames(*maxHostNames))
	if *host == "" {
		if *host, err = naming.LocalHost(); err != nil {
			return err
		}
	}
	if n, err := naming.Parse(*host + ":X"); err != nil || n.Host != *host {
		return fmt.Errorf("-host %q: not a host name C SIMPL takes (1 to %d bytes, no colon, no space)", *host, naming.MaxHostLen)
	}
	sur, err := surrogateOptions(*surListen, *surAllow, *surBinary, *surMax)
	if err != nil {
		return err
	}
	bridge, err := surrogateRoutes(*surHosts, *surPort, sur)
	if err != nil {
		return err
	}
	if *surK <= 0 {
		return fmt.Errorf("-csimpl-tcp-k %v: want a positive period", *surK)
	}
	sur.KeepAlive = *surK
	if *surConns < 1 {
		return fmt.Errorf("-csimpl-tcp-conns %d: want 1 or more", *surConns)
	}
	sur.PerPeer = *surConns
	if *permissions {
		pub, sub := netwire.Permissions(*host)
		_, err := fmt.Fprintf(stdout, "permissions: {\n  publish: { allow: [%s] }\n  subscribe: { allow: [%s] }\n}\n", quoted(pub), quoted(sub))
		return err
	}
	if *policy != "" {
		p, err := gateway.ReadPolicy(*policy)
		if err != nil {
			return err
		}
		opts = append(opts, gateway.WithPolicy(p))
	}
	network := &gateway.Network{
		Host:   *host,
		Listen: *listen, Cluster: *cluster, Routes: list(*routes), NATS: list(*natsURLs),
		TLSCert: *tlsCert, TLSKey: *tlsKey, TLSCA: *tlsCA, Creds: *creds, NKey: *nkey, Insecure: *insecure,
		Log: func(msg string) { fmt.Fprintf(os.Stderr, "fcgate: %s\n", strings.Join(strings.Fields(msg), " ")) },
	}
	if err := network.Check(); err != nil {
		return err
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	// Envelopes carry requests of up to netwire.MaxPayload, and a little more.
	ch, err := simpl.Attach(netwire.GatewayName, simpl.WithPerm(os.FileMode(mode)), simpl.WithMaxMessage(netwire.MaxEnvelope))
	if err != nil {
		return err
	}
	defer ch.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := network.Connect(cctx, "fcgate "+*host)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(drainTime)

	var outMu sync.Mutex
	var werr error
	hooks := gateway.Hooks{Note: func(msg string) { fmt.Fprintf(os.Stderr, "fcgate: %s\n", msg) }}
	if *verbose {
		hooks.Done = func(e gateway.Event) {
			dir := "out"
			if e.Inbound {
				dir = "in"
			}
			detail := ""
			if e.Detail != 0 {
				detail = fmt.Sprintf(" (%d)", e.Detail)
			}
			outMu.Lock()
			defer outMu.Unlock()
			if _, err := fmt.Fprintf(stdout, "%s %v from %s to %s: %v%s in %v\n", dir, e.Kind, e.From, e.Target, e.Status, detail, e.Elapsed.Round(time.Microsecond)); err != nil && werr == nil {
				werr = err
			}
		}
	}
	opts = append(opts, gateway.WithHooks(hooks))
	bridge.Client = surrogate.NewClient(surrogate.ClientOptions{Encoding: sur.Encoding, MaxMessage: sur.MaxMessage, KeepAlive: sur.KeepAlive, PerHost: sur.PerPeer, Host: *host})
	defer bridge.Client.Close()
	opts = append(opts, gateway.WithBridge(bridge))
	g, err := gateway.New(ch, conn.Conn, *host, opts...)
	if err != nil {
		return err
	}
	var cs *gateway.CSimpl
	if *csimpl {
		var copts []gateway.CSimplOption
		if *verbose {
			copts = append(copts, gateway.WithCLog(func(msg string) {
				outMu.Lock()
				defer outMu.Unlock()
				if _, err := fmt.Fprintf(stdout, "csimpl: %s\n", msg); err != nil && werr == nil {
					werr = err
				}
			}))
		}
		if cs, err = gateway.NewCSimpl(g, append(copts, gateway.WithCPerm(os.FileMode(mode)))...); err != nil {
			g.Close()
			return err
		}
		outMu.Lock()
		_, err = fmt.Fprintf(stdout, "fcgate: C SIMPL programs: %s\n", cs.Role())
		outMu.Unlock()
	}
	outMu.Lock()
	if err == nil {
		_, err = fmt.Fprintf(stdout, "fcgate: host %s serving through %s\n", *host, conn.URL)
	}
	outMu.Unlock()
	if err != nil {
		cs.Close()
		g.Close()
		return fmt.Errorf("writing output: %w", err)
	}
	if *policy != "" {
		stopWatch, err := watchPolicy(*policy, g.SetPolicy, func(msg string) {
			outMu.Lock()
			defer outMu.Unlock()
			fmt.Fprintf(os.Stderr, "fcgate: %s\n", msg)
		})
		if err != nil {
			cs.Close() // before g's, as below: its router and surrogates go too
			g.Close()
			return err
		}
		defer stopWatch()
	}
	if err := g.NamesOff(); err != nil {
		fmt.Fprintf(os.Stderr, "fcgate: %v\n", err)
	}
	var ss *surrogate.Server
	if *surListen != "" {
		ln, err := net.Listen("tcp", *surListen)
		if err != nil {
			cs.Close()
			g.Close()
			return fmt.Errorf("-csimpl-tcp %s: %w", *surListen, err)
		}
		if *verbose {
			sur.Log = func(msg string) {
				outMu.Lock()
				defer outMu.Unlock()
				if _, err := fmt.Fprintf(stdout, "csimpl-tcp: %s\n", msg); err != nil && werr == nil {
					werr = err
				}
			}
		}
		// A C SIMPL host is its address to the policy file: nothing
		// vouches for a name it gives itself.
		sur.Admit = func(addr netip.Addr, name string) error {
			if ok, _ := g.Policy().Allows(addr.String(), "", name); !ok {
				return fmt.Errorf("the policy file does not let %s reach it", addr)
			}
			return nil
		}
		ss = surrogate.Serve(ch, ln, sur)
		outMu.Lock()
		fmt.Fprintf(stdout, "fcgate: C SIMPL surrogates (%v) on %s\n", sur.Encoding, ss.Addr())
		outMu.Unlock()
	}
	<-ctx.Done()
	if ss != nil {
		ss.Close()
	}
	cs.Close() // before g's: its surrogates carry through g
	g.Close()
	if *verbose {
		st := g.Stats()
		outMu.Lock()
		_, err := fmt.Fprintf(stdout, "fcgate: stopped: out %d, in %d, bad envelopes %d, bad requests %d, bad answers %d, duplicates %d, busy %d, outcome unknown %d, unreachable %d, partial %d, partial replies %d, most held %d bytes, denied %d, batches out %d of %d requests, answer batches %d of %d, dropped unread %d\n",
			st.Out, st.In, st.BadEnvelopes, st.BadRequests, st.BadAnswers, st.Duplicates, st.Busy, st.Unknown, st.Unreachable, st.Partial, st.PartialReplies, st.MostHeld, st.Denied,
			st.Batches, st.Batched, st.AnswerBatches, st.BatchedAnswers, st.Dropped)
		if err == nil && cs != nil {
			c := cs.Stats()
			_, err = fmt.Fprintf(stdout, "fcgate: C SIMPL: requests %d, registrations %d, located %d, not found %d, sends %d, failed %d, triggers %d, bad %d, busy %d\n",
				c.Requests, c.Registrations, c.Located, c.NotFound, c.Sends, c.Failed, c.Triggers, c.Bad, c.Busy)
		}
		if err != nil && werr == nil {
			werr = err
		}
		ns := g.NamesStats()
		_, err = fmt.Fprintf(stdout, "fcgate: names across hosts: runs followed %d, snapshots asked %d, bad %d, in parts %d, over the cap %d\n", ns.Runs, ns.Snapshots, ns.Bad, ns.InParts, ns.OverCap)
		if err != nil && werr == nil {
			werr = err
		}
		outMu.Unlock()
	}
	if err := conn.Close(drainTime); err != nil {
		return err
	}
	if err := ch.Close(); err != nil {
		return err
	}
	outMu.Lock()
	defer outMu.Unlock()
	if werr != nil {
		return fmt.Errorf("writing output: %w", werr)
	}
	return nil
}
