//go:build !race

package shm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// bellMappings counts the receivers' bells mapped in this process.
func bellMappings(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "gosimpl-bell")
}

// A lane handshake that has read the receiver's answer when its Conn is
// closed (Close unmapping the bell with the last lane) maps no bell for
// it: mapBell, the handshake's next step, fails with ErrClosed and maps
// nothing, as nothing would unmap it. Before, it mapped the bell, which
// stayed mapped for the life of the process (helper-39, 537c004). The
// interleaving itself is a race between Close and the handshake; the
// test makes the handshake's step after a Close that has run.
func TestNoBellForClosedConn(t *testing.T) {
	e, addr := listen(t, "nobell", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, os.Getpid(), "nobell", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	mapped := c.bellMap != nil
	c.mu.Unlock()
	if !mapped {
		t.Fatal("Dial's lane mapped no bell")
	}
	c.Close()
	c.mu.Lock()
	mapped = c.bellMap != nil
	c.mu.Unlock()
	if mapped {
		t.Fatal("Close left the bell mapped (its lanes all released)")
	}
	before := bellMappings(t)
	// The bell's descriptor as the receiver passes it in its answer.
	err = c.mapBell(e.bellFD.Int())
	after := bellMappings(t)
	c.mu.Lock()
	m := c.bellMap
	c.bellMap, c.bell = nil, nil
	c.mu.Unlock()
	if m != nil {
		m.Unmap() // what nothing else would do
		t.Errorf("mapBell on a closed Conn mapped the bell")
	}
	if after != before {
		t.Errorf("bells mapped in this process: %d after mapBell on a closed Conn, %d before", after, before)
	}
	if !errors.Is(err, transport.ErrClosed) {
		t.Errorf("mapBell on a closed Conn: %v, want ErrClosed", err)
	}
}
