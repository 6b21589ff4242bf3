package netdirect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/transport/remote"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

func init() {
	if os.Getenv("GOSIMPL_NATS") != "" {
		remote.SetStarter(start)
	}
}

// gateways are this process's own, one per FIFO directory.
var (
	mu       sync.Mutex
	gateways = map[string]*direct{}
)

// direct is one gateway, starting or started, or why it could not
// start. Its fields are set before ready is closed.
type direct struct {
	ready chan struct{}
	name  string
	err   error
	stop  func() // closes the gateway, its Channel and its connection
}

// Close stops the gateways this process started (a program calls it as
// it exits, so that their names leave the FIFO directories with it;
// without it they are reaped as any dead process's are). Remote Sends in
// progress through them end as their gateway's Close ends them (outcome
// unknown); a remote name located later starts a gateway again. Safe to
// call more than once, and with none started.
func Close() {
	mu.Lock()
	ds := gateways
	gateways = map[string]*direct{}
	mu.Unlock()
	for _, d := range ds {
		<-d.ready // one starting: bounded by its Locate's context
		if d.stop != nil {
			d.stop()
		}
	}
}

// start runs (once per dir) a gateway of this process's own in dir,
// connected to the NATS servers of the environment, and returns its name.
// The first Locate starts it, within its context; others wait for that,
// within theirs (no lock is held meanwhile: Locates of other
// directories go on).
func start(ctx context.Context, dir string) (string, error) {
	for {
		mu.Lock()
		d := gateways[dir]
		if d == nil {
			d = &direct{ready: make(chan struct{})}
			gateways[dir] = d
			mu.Unlock()
			d.name, d.stop, d.err = startIn(ctx, dir)
			if d.err != nil && ctx.Err() != nil {
				// A failure for want of time is tried again by the
				// next Locate; any other is the environment's and
				// stays.
				mu.Lock()
				if gateways[dir] == d {
					delete(gateways, dir)
				}
				mu.Unlock()
			}
			close(d.ready)
			return d.name, d.err
		}
		mu.Unlock()
		select {
		case <-d.ready:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		mu.Lock()
		dropped := gateways[dir] != d
		mu.Unlock()
		if d.err != nil && dropped {
			continue // the Locate that started it ran out of time: this one tries
		}
		return d.name, d.err
	}
}

func startIn(ctx context.Context, dir string) (string, func(), error) {
	host, err := naming.LocalHost()
	if err != nil {
		return "", nil, err
	}
	env := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }
	var urls []string
	for _, u := range strings.Split(env("GOSIMPL_NATS"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	netw := &gateway.Network{
		Host: host, NATS: urls,
		TLSCert: env("GOSIMPL_NATS_CERT"), TLSKey: env("GOSIMPL_NATS_KEY"), TLSCA: env("GOSIMPL_NATS_CA"),
		Creds: env("GOSIMPL_NATS_CREDS"), NKey: env("GOSIMPL_NATS_NKEY"),
		Insecure: env("GOSIMPL_NATS_INSECURE") == "1",
	}
	if err := netw.Check(); err != nil {
		if errors.Is(err, gateway.ErrInsecure) {
			// Check speaks of fcgate's flags; a program has these.
			return "", nil, fmt.Errorf("GOSIMPL_NATS: %w: the connection has no TLS or no authentication: set GOSIMPL_NATS_CA (or a tls:// URL) and GOSIMPL_NATS_CREDS, GOSIMPL_NATS_NKEY or GOSIMPL_NATS_CERT with GOSIMPL_NATS_KEY, or GOSIMPL_NATS_INSECURE=1 (%v)", gateway.ErrInsecure, err)
		}
		return "", nil, fmt.Errorf("GOSIMPL_NATS: %w", err)
	}
	conn, err := netw.Connect(ctx, "gosimpl program "+strconv.Itoa(os.Getpid())+" on "+host)
	if err != nil {
		return "", nil, fmt.Errorf("GOSIMPL_NATS: %w", err)
	}
	name := "_gosimpl_gw" + strconv.Itoa(os.Getpid())
	ch, err := simpl.Attach(name, simpl.WithDir(dir), simpl.WithPerm(0o600), simpl.WithMaxMessage(netwire.MaxEnvelope))
	if err != nil {
		conn.Close(0)
		return "", nil, err
	}
	g, err := gateway.New(ch, conn.Conn, host, gateway.WithoutServing(), gateway.WithDrain(closeDrain))
	if err != nil {
		ch.Close()
		conn.Close(0)
		return "", nil, fmt.Errorf("GOSIMPL_NATS: %w", err)
	}
	// It stays until Close, or the process's end: the program's Conns
	// use it.
	return name, func() {
		g.Close()
		conn.Close(closeDrain)
		ch.Close()
	}, nil
}

// closeDrain bounds how long Close waits for Sends in progress.
const closeDrain = time.Second
