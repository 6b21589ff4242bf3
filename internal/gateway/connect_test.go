package gateway

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// Connecting to a server that takes the connection and says nothing ends
// with the caller's context, not nats.go's own timeout (2 s for each
// URL). Before, a Locate with a 100 ms deadline that started a
// program's gateway (GOSIMPL_NATS) waited the whole 2 s.
func TestConnectHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the kernel takes connections; nobody speaks
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	nc, err := connect(ctx, "nats://"+ln.Addr().String(), nil)
	if nc != nil {
		nc.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect to a silent server with a 100ms deadline: %v, want the deadline's error", err)
	}
}
