package netdirect

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/transport/remote"
	"github.com/gosimpl/gosimpl/simpl"
)

// silentServers are n TCP listeners on loopback that take connections
// and never speak: NATS servers a client waits on (nats.go for up to 2 s
// a URL). Each connection taken is sent on accepted; stop closes the
// listeners and the connections, and waits for the accepting goroutines.
func silentServers(t *testing.T, n int) (urls []string, accepted <-chan struct{}, stop func()) {
	t.Helper()
	acc := make(chan struct{}, 64)
	var (
		mu    sync.Mutex
		conns []net.Conn
		lns   []net.Listener
		wg    sync.WaitGroup
	)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		urls = append(urls, "nats://"+ln.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return // closed
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				select {
				case acc <- struct{}{}:
				default:
				}
			}
		}()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, ln := range lns {
				ln.Close()
			}
			wg.Wait()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
		})
	}
	t.Cleanup(stop)
	return urls, acc, stop
}

// natsConnect is nats.go's Connect as stack traces print it (the dot in
// the module's path escaped).
const natsConnect = "github.com/nats-io/nats%2ego.Connect("

// TestLocateNotBehindStart: while one Locate of a remote name starts the
// program's gateway and the start is slow (GOSIMPL_NATS lists servers
// that take the connection and say nothing), another Locate with a short
// deadline returns its own context's error at its deadline, instead of
// waiting behind a process-wide lock until the first start is done
// (which here is when this test lets it end, or nats.go's 2 s for each
// of the servers).
func TestLocateNotBehindStart(t *testing.T) {
	const servers = 5 // nats.go alone would take about 10 s
	urls, accepted, stopServers := silentServers(t, servers)
	t.Setenv("GOSIMPL_NATS", strings.Join(urls, ","))
	remote.SetStarter(start) // as init does when GOSIMPL_NATS is set at the start
	t.Cleanup(Close)

	ch, err := simpl.Attach("L", simpl.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	const name = "otherhost:X" // another host's: the remote transport, through the gateway start starts

	ctx1, cancel1 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel1()
	first := make(chan error, 1)
	go func() {
		conn, err := ch.Locate(ctx1, name)
		if conn != nil {
			conn.Close()
		}
		first <- err
	}()
	// The first Locate is starting the gateway: its NATS client has
	// connected to a silent server, and waits there.
	select {
	case <-accepted:
	case err := <-first:
		t.Fatalf("the first Locate ended before connecting to NATS: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the first Locate did not connect to the silent NATS server within 10s")
	}
	if len(proctest.GoroutinesWith(natsConnect)) == 0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("no goroutine in %s while the first Locate connects:\n%s", natsConnect, buf[:runtime.Stack(buf, true)])
	}

	const short = 200 * time.Millisecond
	const slack = 3 * time.Second // well under the first start's 2 s a server
	ctx2, cancel2 := context.WithTimeout(context.Background(), short)
	defer cancel2()
	t0 := time.Now()
	second := make(chan error, 1)
	go func() {
		conn, err := ch.Locate(ctx2, name)
		if conn != nil {
			conn.Close()
		}
		second <- err
	}()
	secondDone := false
	select {
	case err := <-second:
		secondDone = true
		took := time.Since(t0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the second Locate, with a %v deadline, while the first starts the gateway: %v after %v, want its deadline's error", short, err, took)
		}
		select {
		case err := <-first:
			t.Errorf("the first Locate ended (%v) before the second returned: the test shows nothing", err)
		default:
		}
		t.Logf("the second Locate returned after %v: %v", took, err)
	case err := <-first:
		t.Fatalf("the first Locate ended (%v) before the second returned: the test shows nothing", err)
	case <-time.After(short + slack):
		t.Errorf("the second Locate, with a %v deadline, had not returned %v later: it waits behind the first's start of the gateway", short, short+slack)
	}

	// The first start ends with its context; then the silent servers go,
	// and with them nats.go's attempts to connect.
	cancel1()
	for _, c := range []struct {
		what string
		ch   chan error
		done bool
	}{{"first", first, false}, {"second", second, secondDone}} {
		if c.done {
			continue
		}
		select {
		case err := <-c.ch:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the %s Locate: %v, want its context's error", c.what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s Locate did not end within 10s of its context", c.what)
		}
	}
	stopServers()
	deadline := time.Now().Add(10 * time.Second)
	for len(proctest.GoroutinesWith(natsConnect)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("nats.go still connecting 10s after the servers closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	n := len(gateways)
	mu.Unlock()
	if n != 0 {
		t.Errorf("%d gateways recorded after starts that ran out of time, want none (the next Locate tries again)", n)
	}
}
