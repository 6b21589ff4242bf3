package gateway

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// protoBridge takes the names surrogate.Routes takes with no hosts of
// its own (_simplTCP:HOST:NAME), recording what it is asked to locate.
type protoBridge struct {
	mu      sync.Mutex
	located []string
}

func (b *protoBridge) Takes(n naming.Name) bool { return n.Host != "" && n.Protocol == tcpProtocol }

func (b *protoBridge) Send(ctx context.Context, n naming.Name, req, reply []byte) (int, error) {
	return copy(reply, "ok"), nil
}

func (b *protoBridge) Trigger(ctx context.Context, n naming.Name, proxy int) error { return nil }

func (b *protoBridge) Locate(ctx context.Context, n naming.Name) error {
	b.mu.Lock()
	b.located = append(b.located, n.String())
	b.mu.Unlock()
	return nil
}

// A C program's name_locate keeps the protocol it asked the router for:
// "_simplTCP:chost:SRV" goes to the gateway's bridge to C SIMPL hosts, as
// a gosimpl program's "_simplTCP:chost:SRV" does, and its Sends with it;
// "chost:SRV" (_simplDefault) does not. Before, the surrogate located
// "chost:SRV" whatever the protocol, and the bridge never saw it: it
// went over NATS (and here found no gateway for chost).
func TestCProgramProtocolKept(t *testing.T) {
	bridge := &protoBridge{}
	g, dir := setup(t, "me", WithBridge(bridge))
	cs, err := NewCSimpl(g)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	prog, err := simpl.Attach("CPROG", simpl.WithDir(dir), simpl.WithTransport(simpl.FIFO))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	router, err := prog.Locate(ctx, RouterName)
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	// locate is the C library's name_locate of protocol:chost:SRV: the
	// surrogate's name from the router, then SUR_NAME_LOCATE to it; it
	// returns the locate's result and the surrogate.
	locate := func(protocol string) (int32, *simpl.Conn) {
		t.Helper()
		reply := make([]byte, programField)
		if n, err := router.Send(ctx, requestProtocol(protocol), reply); err != nil || n != programField {
			t.Fatalf("SUR_REQUEST_PROTOCOL %s: %d bytes, %v", protocol, n, err)
		}
		name, err := cString(reply, "program")
		if err != nil || name == "" {
			t.Fatalf("SUR_REQUEST_PROTOCOL %s: surrogate %q, %v", protocol, name, err)
		}
		sur, err := prog.Locate(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		r := make([]byte, nameLocateReplySize)
		if n, err := sur.Send(ctx, nameLocate("chost", "SRV", "me"), r); err != nil || n != nameLocateReplySize {
			t.Fatalf("SUR_NAME_LOCATE through %s: %d bytes, %v", name, n, err)
		}
		return int32(binary.NativeEndian.Uint32(r[surHeaderSize:])), sur
	}

	result, sur := locate(tcpProtocol)
	defer sur.Close()
	if result != 0 {
		t.Fatalf("name_locate(_simplTCP:chost:SRV): result %d, want 0 (through the bridge)", result)
	}
	reply := make([]byte, 8)
	if n, err := sur.Send(ctx, []byte("hi"), reply); err != nil || string(reply[:n]) != "ok" {
		t.Errorf("Send through the _simplTCP surrogate: %q, %v; want the bridge's ok", reply[:n], err)
	}
	bridge.mu.Lock()
	got := append([]string(nil), bridge.located...)
	bridge.mu.Unlock()
	if len(got) != 1 || got[0] != "_simplTCP:chost:SRV" {
		t.Errorf("the bridge located %q, want [_simplTCP:chost:SRV]", got)
	}

	result, sur2 := locate(naming.DefaultProtocol)
	defer sur2.Close()
	if result != locateFailed {
		t.Errorf("name_locate(chost:SRV), no gateway for chost: result %d, want %d", result, locateFailed)
	}
	bridge.mu.Lock()
	got = append([]string(nil), bridge.located...)
	bridge.mu.Unlock()
	if len(got) != 1 {
		t.Errorf("the bridge located %q: chost:SRV (_simplDefault) went to it", got)
	}
}
