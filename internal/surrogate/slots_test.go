package surrogate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// Sends to ever new addresses leave nothing of them behind once their
// connections are gone. Before, every address dialled kept its entry in
// the client's map for the gateway's life, and any local program could
// grow it at will (_simplTCP:ADDR:NAME).
func TestSlotsForgotten(t *testing.T) {
	cl := NewClient(ClientOptions{})
	defer cl.Close()
	// Free ports on loopback: a dial there is refused at once.
	var addrs []string
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	for _, addr := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.Locate(ctx, addr, "SRV")
		cancel()
		if !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("Locate at %s, where nothing listens: %v, want ErrUnreachable", addr, err)
		}
	}
	cl.mu.Lock()
	n := len(cl.slots)
	cl.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d addresses kept after their connections failed, want none", n)
	}
}
