package simpl_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// floodRoles are the helper roles of the connection-flood test.
var floodRoles = map[string]simpltest.Role{"flood": roleFlood}

// roleFlood CRED ADDR N: as user CRED, keep N connections open to the
// shared-memory socket ADDR, never saying hello, opening a new one as soon
// as the receiver closes one, a few milliseconds apart; "flooding" once N
// were open at the same time, or the receiver had closed N (it refuses
// them), then on until killed.
func roleFlood(args []string) error {
	if err := becomeUser(args[0]); err != nil {
		return err
	}
	n, _ := strconv.Atoi(args[2])
	var opened, closed atomic.Int64
	said := make(chan struct{})
	var once atomic.Bool
	say := func() {
		if once.CompareAndSwap(false, true) {
			close(said)
		}
	}
	for range n {
		go func() {
			for {
				c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: args[1], Net: "unixpacket"})
				if err == nil {
					if opened.Add(1) >= int64(n) {
						say()
					}
					var b [64]byte
					c.Read(b[:]) // until the receiver answers or closes
					c.Close()
					if closed.Add(1) >= int64(n) {
						say()
					}
				}
				time.Sleep(20 * time.Millisecond) // a flood, not a busy loop on two cores
			}
		}()
	}
	<-said
	fmt.Println("flooding")
	select {}
}

// fdCount is how many descriptors this process has open.
func fdCount(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// A user the channel's mode does not admit (nobody, at 0600) floods its
// shared-memory socket with connections that never say hello: the
// receiver checks who connected before it reads anything, refuses at once,
// and holds neither descriptors nor goroutines for them, while its own
// user's Sends go through (issue 16, item 1). Before, each such connection
// held a descriptor and a goroutine for the 2 s the handshake waits.
func TestRefusedFlood(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	srv := attach(t, dir, "FLOOD", simpl.WithTransport(simpl.SHM))
	ctx := simpltest.Context(t, time.Minute)
	go serve(ctx, srv, nil)
	cli := attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM))
	warm := locate(t, cli, "FLOOD") // its lane is set up before the flood
	before := fdCount(t)

	const conns = 300
	f := simpltest.StartNoWait(t, "flood", permEnv(dir), nobodyCred, shm.Address(dir, "FLOOD", os.Getpid()), strconv.Itoa(conns))
	f.Expect("flooding", time.Minute)
	// The flood goes on: N connections open at once, or N refused. Held,
	// they would be N descriptors here; refused, a handful at most.
	if held := fdCount(t) - before; held > maxRefusingFDs {
		t.Errorf("%d more descriptors open during a flood by a refused user, want at most %d", held, maxRefusingFDs)
	}
	// Sends of the receiver's own user go through meanwhile, on the lane
	// set up before and on new ones.
	sendDuringFlood(t, ctx, cli, warm, "FLOOD", func() {})
	f.Kill()
}

// sendDuringFlood makes 20 echo Sends to name, on the Conn warm (set up
// before the flood) and, every other one, on a Conn located anew, each
// within 10 s; between each Locate and its Send it calls between.
func sendDuringFlood(t *testing.T, ctx context.Context, cli *simpl.Channel, warm *simpl.Conn, name string, between func()) {
	t.Helper()
	for i := range 20 {
		c := warm
		if i%2 == 1 {
			var err error
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err = cli.Locate(sctx, name)
			cancel()
			if err != nil {
				t.Fatalf("Locate %d during the flood: %v", i, err)
			}
		}
		between()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		reply := make([]byte, 8)
		n, err := c.Send(sctx, []byte{opEcho, byte('a' + i)}, reply)
		cancel()
		if err != nil || n != 1 || reply[0] != byte('b'+i) {
			t.Fatalf("Send %d during the flood: %q, %v", i, reply[:n], err)
		}
		if c != warm {
			c.Close()
		}
	}
}

// maxRefusingFDs bounds the descriptors a refused flood may hold in the
// receiver at a moment: the few being answered (8) and those just
// accepted, with room for the test's own.
const maxRefusingFDs = 32

// A user the channel's mode admits (nobody, at 0666) floods its
// shared-memory socket with connections that never say hello: the
// receiver sets up at most a few handshakes per user at a time, for a
// short while each, and closes the rest at once, so its descriptors and
// goroutines stay bounded, and another user's Locates and Sends go through
// meanwhile (issue 16, item 1). Before, each such connection held a
// descriptor and a goroutine for 2 s.
func TestAdmittedFlood(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	srv := attach(t, dir, "OPEN", simpl.WithTransport(simpl.SHM), simpl.WithPerm(0o666))
	ctx := simpltest.Context(t, time.Minute)
	go serve(ctx, srv, nil)
	cli := attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM))
	warm := locate(t, cli, "OPEN")
	fds, goroutines := fdCount(t), runtime.NumGoroutine()
	maxFDs, maxGoroutines := 0, 0
	measure := func() {
		maxFDs = max(maxFDs, fdCount(t)-fds)
		maxGoroutines = max(maxGoroutines, runtime.NumGoroutine()-goroutines)
	}

	const conns = 300
	f := simpltest.StartNoWait(t, "flood", permEnv(dir), nobodyCred, shm.Address(dir, "OPEN", os.Getpid()), strconv.Itoa(conns))
	f.Expect("flooding", time.Minute)
	measure()
	sendDuringFlood(t, ctx, cli, warm, "OPEN", measure)
	measure()
	f.Kill()
	t.Logf("during the flood: up to %d more descriptors, %d more goroutines", maxFDs, maxGoroutines)
	if maxFDs > maxAdmittedFDs {
		t.Errorf("up to %d more descriptors open during a flood by an admitted user, want at most %d", maxFDs, maxAdmittedFDs)
	}
	if maxGoroutines > maxAdmittedFDs {
		t.Errorf("up to %d more goroutines during a flood by an admitted user, want at most %d", maxGoroutines, maxAdmittedFDs)
	}
}

// maxAdmittedFDs bounds the descriptors (and goroutines) an admitted
// user's flood may hold in the receiver at a moment: its handshakes in
// progress (shm.MaxHandshakesPerUser, 16) and those just accepted, with
// room for the test's own Locates.
const maxAdmittedFDs = 48
