// The three-node NATS cluster test (issue 13, items 5 and 8): real NATS
// servers, one per host of a lab, gateways connected to them with -nats
// and every node's URL, and one node SIGKILLed (or frozen) under load.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/nats-io/nats-server/v2/server"
)

// clusterRole, set in a process's environment, makes this test binary run
// one of the helper programs below (clusterRoles) with its command-line
// arguments instead of the tests. fcgate's TestMain builds the tools
// before anything else, so the helpers are dispatched earlier, from init.
const clusterRole = "GOSIMPL_FCGATE_CLUSTER_ROLE"

// clusterRoles are the helper programs of the cluster test.
var clusterRoles = map[string]func(args []string) error{
	"load":    runLoad,
	"echo":    runEcho,
	"meshed":  runMeshed,
	"clients": runClients,
	"names":   runNames,
}

func init() {
	name := os.Getenv(clusterRole)
	if name == "" {
		return
	}
	role, ok := clusterRoles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "no cluster role %q\n", name)
		os.Exit(2)
	}
	if err := role(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "cluster role %s: %v\n", name, err)
		os.Exit(3)
	}
	os.Exit(0)
}

// Ports of every node, on its host's address.
const (
	clientPort  = 4222
	clusterPort = 6222
	monitorPort = 8222
)

// Time limits of the cluster test.
const (
	recovery     = 2 * time.Second        // new Sends succeed within this of the kill (the bound)
	window       = 3 * time.Second        // the load goes on this long after the kill
	hold         = time.Second            // how long the echo receiver holds the held workers' requests
	probeTimeout = 500 * time.Millisecond // the probes' deadline

	// A request in flight when a node dies may end in the gateway's
	// silence, so a Send takes at most the hold, the silence and some.
	silence = gateway.DefaultSilence
	sendMax = hold + silence + 500*time.Millisecond

	// A frozen node is left when the gateway's pings go unanswered: after
	// 2 to 3 s (nats.PingInterval 1 s, 2 outstanding), then it
	// reconnects.
	frozenRecovery = 4 * time.Second
	frozenWindow   = frozenRecovery + time.Second
)

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// natsServer builds the NATS server of the module's own dependency into
// binDir, once per test run. It is built without the race detector even
// when this test binary has it: it is not our code, and it would take
// minutes to build and run slower.
func natsServer(t *testing.T) string {
	t.Helper()
	natsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		mod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			natsErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		out := filepath.Join(binDir, "nats-server")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
		if b, err := cmd.CombinedOutput(); err != nil {
			natsErr = fmt.Errorf("%v: %v\n%s", cmd.Args, err, b)
			return
		}
		natsBin = out
	})
	if natsErr != nil {
		t.Fatal(natsErr)
	}
	return natsBin
}

// cluster is a lab of three hosts, a NATS node on each (n-a, n-b, n-c),
// joined as one cluster, and gateways on a and b connected to them.
type cluster struct {
	*twoHosts
	c     *netlab.Host
	nodes map[string]*proctest.Proc // by host

	// With TLS: the CA's certificate, and each host's certificate and
	// key (its node's, as server and route, and its gateway's, as
	// client), by host; the client URLs' scheme, nats or tls.
	ca     string
	certs  map[string][2]string
	scheme string
}

// nodeName is the NATS server name of host h's node.
func nodeName(h *netlab.Host) string { return "n-" + h.Name() }

// startNode starts host h's NATS node with routes to the others. Routes
// and clients are pinged every second and dropped after two missed
// pings, so a node that goes silent is noticed within about 3 s (a killed
// one at once: its kernel closes its connections).
func (c *cluster) startNode(t *testing.T, h *netlab.Host, others ...*netlab.Host) {
	t.Helper()
	var routes []string
	for _, o := range others {
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats://%s:%d", o.Addr(), clusterPort)))
	}
	// Mutual TLS, for clients and routes alike, when the cluster has
	// certificates.
	tls := ""
	if c.ca != "" {
		tls = fmt.Sprintf("tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 2 }", c.certs[h.Name()][0], c.certs[h.Name()][1], c.ca)
	}
	conf := fmt.Sprintf(`server_name: %q
listen: "%s:%d"
http: "%s:%d"
ping_interval: "1s"
ping_max: 2
%s
cluster {
  name: "gosimpl-test"
  listen: "%s:%d"
  routes: [%s]
  ping_interval: "1s"
  ping_max: 2
  %s
}
`, nodeName(h), h.Addr(), clientPort, h.Addr(), monitorPort, tls, h.Addr(), clusterPort, strings.Join(routes, ", "), tls)
	file := filepath.Join(t.TempDir(), nodeName(h)+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.nodes[h.Name()] = proctest.StartCmd(t, h.Command(context.Background(), natsServer(t), "-c", file))
}

// role runs one of clusterRoles on host h.
func role(t *testing.T, h *netlab.Host, name string, args ...string) *proctest.Proc {
	t.Helper()
	cmd := h.Command(context.Background(), os.Args[0], args...)
	cmd.Env = append(cmd.Env, clusterRole+"="+name)
	return proctest.StartCmd(t, cmd)
}

// monitors are the nodes' monitoring addresses, HOST:PORT.
func (c *cluster) monitors() []string {
	var m []string
	for _, h := range []*netlab.Host{c.a, c.b, c.c} {
		m = append(m, fmt.Sprintf("%s:%d", h.Addr(), monitorPort))
	}
	return m
}

// url is the client URL of host h's node.
func (c *cluster) url(h *netlab.Host) string {
	return fmt.Sprintf("%s://%s:%d", c.scheme, h.Addr(), clientPort)
}

// gate is the command of host h's gateway, -nats listing the nodes of
// hosts in that order: with TLS, its certificate authenticates it (no
// -insecure); else -insecure.
func (c *cluster) gate(h *netlab.Host, hosts ...*netlab.Host) *exec.Cmd {
	var u []string
	for _, o := range hosts {
		u = append(u, c.url(o))
	}
	args := []string{"-nats", strings.Join(u, ",")}
	if c.ca != "" {
		args = append(args, "-tls-cert", c.certs[h.Name()][0], "-tls-key", c.certs[h.Name()][1], "-tls-ca", c.ca)
	} else {
		args = append(args, "-insecure")
	}
	return h.Command(context.Background(), bin("fcgate"), args...)
}

// newCluster builds the lab, starts the nodes (with mutual TLS if tls)
// and waits until each has routes to both others, then starts a's gateway
// with -nats listing the nodes of a, c and b in that order, and b's with
// b, a, c: each prefers its own host's node, and each fails over to a node
// that is not the other gateway's, so that after a kill requests cross a
// route.
func newCluster(t *testing.T, tls bool) *cluster {
	lab := netlab.New(t, "a", "b", "c")
	a, b, hc := lab.Host("a"), lab.Host("b"), lab.Host("c")
	c := &cluster{twoHosts: &twoHosts{lab: lab, a: a, b: b}, c: hc, nodes: map[string]*proctest.Proc{}, scheme: "nats"}
	if tls {
		dir := t.TempDir()
		ca, caKey, caFile, _ := writeCert(t, dir, "ca", "", nil, nil)
		c.ca, c.certs, c.scheme = caFile, map[string][2]string{}, "tls"
		for _, h := range []*netlab.Host{a, b, hc} {
			_, _, cert, key := writeCert(t, dir, h.Name(), h.Addr(), ca, caKey)
			c.certs[h.Name()] = [2]string{cert, key}
		}
	}
	c.startNode(t, a, b, hc)
	c.startNode(t, b, a, hc)
	c.startNode(t, hc, a, b)
	m := role(t, hc, "meshed", c.monitors()...)
	m.Expect("meshed", routeTimeout)
	if err := m.Wait(runTimeout); err != nil {
		t.Fatalf("the nodes' routes: %v", err)
	}
	var line string
	c.gwA, line = startGate(t, c.gate(a, a, hc, b))
	if want := "serving through " + c.url(a); !strings.HasSuffix(line, want) {
		t.Errorf("a's gateway: %q, want it on its own host's node (%s)", line, want)
	}
	c.gwB, line = startGate(t, c.gate(b, b, a, hc))
	if want := "serving through " + c.url(b); !strings.HasSuffix(line, want) {
		t.Errorf("b's gateway: %q, want it on its own host's node (%s)", line, want)
	}
	c.waitRoute(t)
	return c
}

// where reports the node each gateway's connection is on, by its
// monitoring (connz), as "fcgate a" → "n-c".
func (c *cluster) where(t *testing.T) map[string]string {
	t.Helper()
	p := role(t, c.c, "clients", c.monitors()...)
	line := p.Expect("clients ", lineTimeout)
	if err := p.Wait(runTimeout); err != nil {
		t.Fatalf("the nodes' clients: %v", err)
	}
	got := map[string]string{}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "clients ")), &got); err != nil {
		t.Fatalf("the nodes' clients: %v in %q", err, line)
	}
	// Addresses to node names.
	for name, addr := range got {
		for _, h := range []*netlab.Host{c.a, c.b, c.c} {
			if strings.HasPrefix(addr, h.Addr()+":") {
				got[name] = nodeName(h)
			}
		}
	}
	return got
}

// sendResult is how one Send of the load ended. Times are Unix
// nanoseconds (the test and its helpers share one clock).
type sendResult struct {
	Req        string // the request: "worker seq hold_ms", unique to it
	Probe      bool   // a probe's: its deadline is short
	Start, End int64
	Class      string // ok, crossed (a reply other than its request's echo), unknown, unreachable, error
	Err        string // the error, or the wrong reply
}

// echoReport is what the echo receiver saw: each request it received and
// how many times.
type echoReport struct {
	Seen map[string]int
}

// One of three NATS nodes SIGKILLed under load, each subtest in a lab of
// its own: the node a's gateway is connected to (the sending side's), the
// node b's gateway is connected to (the receiving side's), and a's node
// frozen (SIGSTOP) rather than killed. Workers on a send to an echo
// receiver on b, each request unique; two of them send requests the
// receiver holds for a second, so some are in flight at the kill (the
// test kills when the receiver holds one); two probes with a short
// deadline time the recovery. It checks that every Send ends within its
// bound, either with the echo of its own request or a clear failure
// (outcome unknown, unreachable, a probe's deadline), that new Sends
// succeed within 2 s of the kill (4 s of the freeze) and from then on,
// that no request is delivered twice, that nothing said unreachable was
// delivered and everything answered was delivered once, that the gateway
// failed over to the node it lists next and said so, and that the
// gateways then stop cleanly. After the first subtest's checks the other
// nodes are killed too: a Send from a then fails unreachable at once.
func TestCluster(t *testing.T) {
	for _, c := range []struct {
		name string
		kill string // the host whose node is killed
		gate string // the gateway that moves, and the node it moves to
		to   string
		// freeze the node (SIGSTOP) rather than kill it: its
		// connections stay open and silent, and only pings tell
		freeze bool
		// then kill the other nodes too
		thenAll bool
		// mutual TLS between nodes, and between nodes and gateways
		tls bool
	}{
		{"sender's node", "a", "fcgate a", "n-c", false, true, false},
		{"receiver's node", "b", "fcgate b", "n-a", false, false, false},
		{"sender's node frozen", "a", "fcgate a", "n-c", true, false, false},
		{"sender's node over TLS", "a", "fcgate a", "n-c", false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := newCluster(t, c.tls)
			echo := role(t, cl.b, "echo", "-n", "SRV")
			echo.Expect("ready", lineTimeout)
			load := role(t, cl.a, "load", "-to", "b:SRV", "-fast", "6", "-held", "2", "-probes", "2", "-probe-timeout", probeTimeout.String(), "-pause", "10ms", "-warm", "200", "-hold", hold.String(), "-timeout", "10s")
			load.Expect("ready", lineTimeout)
			// The held workers start once the others have had 200
			// answers; the receiver says when it first holds one.
			echo.Expect("holding", lineTimeout)
			killAt := time.Now()
			within, span := recovery, window
			if c.freeze {
				// From when every thread of it is stopped: a Send that
				// succeeds meanwhile is no recovery.
				cl.nodes[c.kill].Signal(syscall.SIGSTOP)
				waitStopped(t, cl.nodes[c.kill].PID())
				t.Logf("froze %s in %v", nodeName(cl.lab.Host(c.kill)), time.Since(killAt))
				killAt = time.Now()
				within, span = frozenRecovery, frozenWindow
			} else {
				cl.nodes[c.kill].Kill()
				t.Logf("killed %s in %v", nodeName(cl.lab.Host(c.kill)), time.Since(killAt))
			}
			// The load goes on for the window (a span to measure, not a
			// state to wait for).
			time.Sleep(span - time.Since(killAt))
			load.Signal(syscall.SIGTERM)
			line := load.Expect("results ", lineTimeout)
			if err := load.Wait(runTimeout); err != nil {
				t.Errorf("the load: %v", err)
			}
			var results []sendResult
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "results ")), &results); err != nil {
				t.Fatalf("the load's results: %v", err)
			}
			echo.Signal(syscall.SIGTERM)
			line = echo.Expect("seen ", lineTimeout)
			if err := echo.Wait(runTimeout); err != nil {
				t.Errorf("the echo receiver: %v", err)
			}
			var seen echoReport
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "seen ")), &seen); err != nil {
				t.Fatalf("the echo receiver's report: %v", err)
			}
			checkLoad(t, results, seen, killAt, within)

			if got := cl.where(t)[c.gate]; got != c.to {
				t.Errorf("%s is on %q after the kill, want %s (the next of its -nats)", c.gate, got, c.to)
			}
			gw := map[string]*proctest.Proc{"a": cl.gwA, "b": cl.gwB}[c.kill]
			next := "reconnected to " + cl.url(cl.lab.Host(strings.TrimPrefix(c.to, "n-")))
			if s := gw.Stderr(); !strings.Contains(s, "fcgate: NATS: connection lost (") || !strings.Contains(s, next) {
				t.Errorf("%s's stderr: %q, want it to say it lost the connection and %s", c.gate, s, next)
			}
			if c.thenAll {
				// No node left: a's gateway cannot publish. A Send
				// fails as unreachable at once, not kept to go out
				// when a node is back (its outcome unknown after the
				// silence meanwhile).
				for h, n := range cl.nodes {
					if h != c.kill {
						n.Kill()
					}
				}
				r := cl.send(t, "-r", "b:SRV", "-m", "x")
				if r.code != 1 || !strings.Contains(r.stderr, "this host's gateway is not connected to NATS") || r.elapsed >= silence {
					t.Errorf("fcsend -r b:SRV on a with every node killed: exit %d after %v, stderr %q; want unreachable within %v", r.code, r.elapsed, r.stderr, silence)
				}
				t.Logf("with every node killed, fcsend -r b:SRV on a (a whole process) failed after %v: %s", r.elapsed, strings.TrimSpace(r.stderr))
			}
			stopGate(t, cl.gwA)
			stopGate(t, cl.gwB)
			for h, g := range map[string]*proctest.Proc{"a": cl.gwA, "b": cl.gwB} {
				if s := g.Stderr(); s != "" {
					t.Logf("%s's gateway wrote on stderr: %s", h, s)
				}
			}
		})
	}
}

// waitStopped waits until every thread of process pid is stopped (state T
// in /proc), failing the test after lineTimeout.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(lineTimeout)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("the threads of process %d: %v", pid, err)
		}
		stopped := true
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue // a thread that exited
			}
			if err != nil {
				t.Fatal(err)
			}
			// pid (comm) state ...: comm may hold spaces, not ')'.
			st := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			if len(st) == 0 || st[0] != "T" {
				stopped = false
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped within %v of SIGSTOP", pid, lineTimeout)
		}
		time.Sleep(time.Millisecond) // polling the threads' state
	}
}

// checkLoad checks the load's results and what the receiver saw, the
// node having been killed at killAt.
func checkLoad(t *testing.T, results []sendResult, seen echoReport, killAt time.Time, within time.Duration) {
	t.Helper()
	kill := killAt.UnixNano()
	classes := map[string]int{}
	var inFlight, before, after []sendResult
	for _, r := range results {
		classes[r.Class]++
		switch {
		case r.End < kill:
			before = append(before, r)
		case r.Start > kill:
			after = append(after, r)
		default:
			inFlight = append(inFlight, r)
		}
		if el := time.Duration(r.End - r.Start); el > sendMax {
			t.Errorf("Send %q took %v (%s %s), more than %v", r.Req, el, r.Class, r.Err, sendMax)
		}
		switch r.Class {
		case "ok":
			if n := seen.Seen[r.Req]; n != 1 {
				t.Errorf("Send %q was answered but the receiver saw it %d times", r.Req, n)
			}
		case "unreachable":
			if n := seen.Seen[r.Req]; n != 0 {
				t.Errorf("Send %q failed as unreachable (%s) but the receiver saw it %d times", r.Req, r.Err, n)
			}
		case "unknown":
		case "deadline":
			if !r.Probe {
				t.Errorf("Send %q passed its deadline: %s", r.Req, r.Err)
			}
		case "crossed":
			t.Errorf("Send %q got the reply %q: another request's", r.Req, r.Err)
		default:
			t.Errorf("Send %q failed unclearly: %s", r.Req, r.Err)
		}
	}
	dups := 0
	for req, n := range seen.Seen {
		if n > 1 {
			dups++
			t.Errorf("the receiver saw %q %d times", req, n)
		}
	}
	t.Logf("%d Sends: %v; %d requests at the receiver, %d of them more than once", len(results), classes, len(seen.Seen), dups)

	for _, r := range before {
		if r.Class != "ok" {
			t.Errorf("Send %q failed before the kill: %s %s", r.Req, r.Class, r.Err)
		}
	}
	if len(before) < 200 {
		t.Errorf("%d Sends ended before the kill: not under load", len(before))
	}
	if len(inFlight) == 0 {
		t.Errorf("no Send was in flight at the kill")
	}
	var desc []string
	for _, r := range inFlight {
		desc = append(desc, fmt.Sprintf("%s after %v", r.Class, time.Duration(r.End-kill).Round(time.Millisecond)))
	}
	t.Logf("in flight at the kill: %d: %s", len(inFlight), strings.Join(desc, ", "))

	// Recovery: the first Send begun after the kill that succeeded, and
	// every Send begun after it succeeding too.
	slices.SortFunc(after, func(x, y sendResult) int { return int(x.Start - y.Start) })
	first := int64(-1)
	for _, r := range after {
		if r.Class == "ok" && (first < 0 || r.End < first) {
			first = r.End
		}
	}
	if first < 0 {
		t.Fatalf("no Send begun after the kill succeeded (%d begun)", len(after))
	}
	rec := time.Duration(first - kill)
	failed, lastFail := 0, time.Duration(0)
	for _, r := range after {
		if r.Class != "ok" {
			failed++
			lastFail = time.Duration(r.Start - kill)
		}
	}
	last := ""
	if failed > 0 {
		last = fmt.Sprintf(", the last of them begun %v after the kill", lastFail.Round(time.Millisecond))
	}
	t.Logf("after the kill: %d Sends begun, %d failed%s; the first success %v after the kill", len(after), failed, last, rec.Round(time.Millisecond))
	if rec > within {
		t.Errorf("the first Send begun after the kill to succeed ended %v after it, want within %v", rec, within)
	}
	oks := 0
	for _, r := range after {
		if r.Start <= first {
			continue
		}
		if r.Class != "ok" {
			t.Errorf("Send %q, begun %v after the kill (after the first success), failed: %s %s", r.Req, time.Duration(r.Start-kill), r.Class, r.Err)
		}
		oks++
	}
	if oks < 50 {
		t.Errorf("only %d Sends begun after the first success after the kill", oks)
	}
}

// runLoad is the load on host a: workers each on a connection of its own
// to -to, each Send's request "worker seq hold_ms", unique; the receiver
// holds a request hold_ms. The -fast workers send one request after
// another, -pause apart; the -held ones send requests to be held -hold,
// starting once the fast ones have had -warm answers; the -probes begin
// a Send with the deadline -probe-timeout at fixed times, each every
// -probe-timeout plus -pause, spread over that: while requests are being
// lost (the others then wait out the gateway's silence) they time the
// recovery more finely. On SIGTERM the workers
// stop after the Send they are in, and it prints "results " and the
// sendResults as JSON, one line.
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	to := fs.String("to", "", "host:NAME")
	fast := fs.Int("fast", 6, "workers without hold")
	held := fs.Int("held", 2, "workers whose requests are held")
	probes := fs.Int("probes", 2, "workers whose Sends have the deadline -probe-timeout")
	probeTimeout := fs.Duration("probe-timeout", 500*time.Millisecond, "the probes' Sends' deadline")
	pause := fs.Duration("pause", 10*time.Millisecond, "between a fast worker's Sends")
	warm := fs.Int("warm", 50, "answers the fast workers have before the held ones start")
	holdFor := fs.Duration("hold", time.Second, "how long held requests are held")
	timeout := fs.Duration("timeout", 10*time.Second, "each Send's deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ch, err := simpl.Attach("LOAD")
	if err != nil {
		return err
	}
	defer ch.Close()
	n := *fast + *held + *probes
	conns := make([]*simpl.Conn, n)
	for i := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		conns[i], err = ch.Locate(ctx, *to)
		cancel()
		if err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("ready")

	flowing := make(chan struct{})
	var oks atomic.Int64
	var mu sync.Mutex
	var results []sendResult
	var wg sync.WaitGroup
	for w := range n {
		holdMS, probe := 0, w >= *fast+*held
		if w >= *fast && !probe {
			holdMS = int(holdFor.Milliseconds())
		}
		deadline := *timeout
		if probe {
			deadline = *probeTimeout
		}
		wg.Go(func() {
			if holdMS > 0 {
				select {
				case <-flowing:
				case <-ctx.Done():
					return
				}
			}
			// A probe begins a Send on each tick of a period a little
			// longer than its deadline, the probes' ticks spread over
			// it: one begins every period/probes whatever the outcomes.
			var tick <-chan time.Time
			if probe {
				period := deadline + *pause
				t := time.NewTimer(period * time.Duration(w-*fast-*held) / time.Duration(*probes))
				select {
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
				tk := time.NewTicker(period)
				defer tk.Stop()
				tick = tk.C
			}
			buf := make([]byte, 64)
			for seq := 0; ctx.Err() == nil; seq++ {
				req := fmt.Sprintf("%d %d %d", w, seq, holdMS)
				sctx, cancel := context.WithTimeout(context.Background(), deadline)
				r := sendResult{Req: req, Probe: probe, Start: time.Now().UnixNano()}
				got, err := conns[w].Send(sctx, []byte(req), buf)
				r.End = time.Now().UnixNano()
				cancel()
				switch {
				case err == nil && string(buf[:got]) == req:
					r.Class = "ok"
					if oks.Add(1) == int64(*warm) {
						close(flowing)
					}
				case err == nil:
					r.Class, r.Err = "crossed", string(buf[:got])
				case errors.Is(err, simpl.ErrOutcomeUnknown):
					r.Class, r.Err = "unknown", err.Error()
				case errors.Is(err, simpl.ErrUnreachable):
					r.Class, r.Err = "unreachable", err.Error()
				case errors.Is(err, context.DeadlineExceeded):
					r.Class, r.Err = "deadline", err.Error()
				default:
					r.Class, r.Err = "error", err.Error()
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				switch {
				case probe:
					select {
					case <-tick:
					case <-ctx.Done():
					}
				case holdMS == 0:
					t := time.NewTimer(*pause)
					select {
					case <-t.C:
					case <-ctx.Done():
					}
					t.Stop()
				}
			}
		})
	}
	wg.Wait()
	b, err := json.Marshal(results)
	if err != nil {
		return err
	}
	fmt.Printf("results %s\n", b)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// runEcho is the receiver on host b: it attaches -n and answers every
// request with its own bytes, at once or, for a request whose third word
// (hold_ms) is not 0, that long later (in a goroutine: it takes the next
// request meanwhile). It prints "holding" when it first holds one. On
// SIGTERM it waits for the held ones to be answered and prints "seen "
// and an echoReport as JSON, one line.
func runEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	name := fs.String("n", "SRV", "the name to attach")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("ready")
	report := echoReport{Seen: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var holding sync.Once
	var replyErr atomic.Value
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if msg.Proxy() > 0 {
			continue
		}
		req := string(msg.Data())
		mu.Lock()
		report.Seen[req]++
		mu.Unlock()
		f := strings.Fields(req)
		ms := 0
		if len(f) == 3 {
			ms, _ = strconv.Atoi(f[2])
		}
		if ms == 0 {
			if err := msg.Reply([]byte(req)); err != nil {
				replyErr.Store(err)
			}
			continue
		}
		holding.Do(func() { fmt.Println("holding " + req) })
		wg.Go(func() {
			t := time.NewTimer(time.Duration(ms) * time.Millisecond) // the receiver's work
			<-t.C
			if err := msg.Reply([]byte(req)); err != nil {
				replyErr.Store(err)
			}
		})
	}
	wg.Wait()
	if err, ok := replyErr.Load().(error); ok {
		// A sender that gave up is not this receiver's failure, but
		// say so.
		fmt.Fprintf(os.Stderr, "echo: a reply failed: %v\n", err)
	}
	b, err := json.Marshal(report)
	if err != nil {
		return err
	}
	fmt.Printf("seen %s\n", b)
	return nil
}

// get decodes the JSON at a node's monitoring endpoint url into v.
func get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.Unmarshal(b, v)
}

// runMeshed waits until each node whose monitoring address (HOST:PORT)
// is an argument has a route to every other one, then prints "meshed".
func runMeshed(args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), routeTimeout)
	defer cancel()
	var last string
	for {
		names := map[string]bool{}
		peers := map[string]map[string]bool{}
		var errs []error
		for _, m := range args {
			var rz server.Routez
			if err := get(ctx, "http://"+m+"/routez", &rz); err != nil {
				errs = append(errs, err)
				continue
			}
			names[rz.Name] = true
			peers[rz.Name] = map[string]bool{}
			for _, r := range rz.Routes {
				peers[rz.Name][r.RemoteName] = true
			}
		}
		meshed := len(errs) == 0 && len(names) == len(args)
		for n := range names {
			for o := range names {
				if o != n && !peers[n][o] {
					meshed = false
				}
			}
		}
		if meshed {
			fmt.Println("meshed")
			return nil
		}
		last = fmt.Sprintf("routes %v, errors %v", peers, errors.Join(errs...))
		t := time.NewTimer(50 * time.Millisecond) // polling the nodes' state
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("not meshed within %v: %s", routeTimeout, last)
		}
	}
}

// runClients prints "clients " and, as JSON, the named client
// connections of the nodes whose monitoring addresses are the arguments,
// each name to the node's address (HOST:PORT of its monitoring). A node
// that does not answer (a killed or frozen one) is skipped.
func runClients(args []string) error {
	out := map[string]string{}
	for _, m := range args {
		// A frozen node never answers.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var cz server.Connz
		err := get(ctx, "http://"+m+"/connz", &cz)
		cancel()
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Name != "" {
				out[c.Name] = m
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	fmt.Printf("clients %s\n", b)
	return nil
}
