package netdirect

import (
	"context"
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

// direct is one started gateway, or why it could not start.
type direct struct {
	name string
	err  error
	stop func() // closes the gateway, its Channel and its connection
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
		if d.stop != nil {
			d.stop()
		}
	}
}

// start runs (once per dir) a gateway of this process's own in dir,
// connected to the NATS servers of the environment, and returns its name.
func start(ctx context.Context, dir string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if d := gateways[dir]; d != nil {
		return d.name, d.err
	}
	name, stop, err := startIn(ctx, dir)
	if err == nil || ctx.Err() == nil {
		// A failure for want of time is tried again by the next Locate;
		// any other is the environment's and stays.
		gateways[dir] = &direct{name: name, err: err, stop: stop}
	}
	return name, err
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
