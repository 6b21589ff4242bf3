package fifo

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

func init() { roles["flood"] = runFlood }

// runFlood (DIR NAME ME K): as ME, K goroutines trigger NAME without pause, until
// NAME's FIFO loses its reader (ErrPeerGone), then it prints "gone" and
// exits. It says ready once proxies are going through.
func runFlood(args []string) error {
	ep, err := helperEndpoint(args[0], args[2])
	if err != nil {
		return err
	}
	defer ep.Close()
	c, err := ep.Locate(args[1])
	if err != nil {
		return err
	}
	defer c.Close()
	k, _ := strconv.Atoi(args[3])
	gone := make(chan error, k)
	for range k {
		go func() {
			for {
				if err := c.Trigger(1); errors.Is(err, transport.ErrPeerGone) {
					gone <- err
					return
				}
			}
		}()
	}
	if err := c.Trigger(1); err != nil && !errors.Is(err, errFIFOFull) {
		return err
	}
	proctest.Ready()
	<-gone
	fmt.Println("gone")
	return nil
}

// Close returns while other processes keep ringing the FIFO: it reads
// until the FIFO is empty, which a writer that keeps ringing never lets
// happen, for at most a second (closeDrainFor); the writers then find the
// FIFO without a reader (ErrPeerGone). Before, Close ran as long as the
// flood did (helper-58).
func TestCloseUnderFlood(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := attachT(t, reg, "SRV", 0o600)
	var floods []*proctest.Proc
	for i := range 2 {
		floods = append(floods, proctest.Start(t, "flood", nil, dir, "SRV", "FLOOD"+strconv.Itoa(i), "3"))
	}
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(helperTimeout):
		for _, f := range floods {
			f.Kill() // ends the flood, and so Close, so that the test ends
		}
		<-done
		t.Fatalf("Close still running %v into a flood of proxies", helperTimeout)
	}
	for _, f := range floods {
		f.Expect("gone", helperTimeout)
		if err := f.Wait(helperTimeout); err != nil {
			t.Errorf("flood helper: %v", err)
		}
	}
}
