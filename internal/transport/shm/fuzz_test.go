//go:build !race

package shm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/transport"
)

// Seeds live in testdata/fuzz/FuzzDecodeHello, FuzzDecodeAck and
// FuzzDecodeProxy.

func FuzzDecodeHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		whom, err := decodeHello(b)
		if err != nil {
			if !errors.Is(err, transport.ErrBadMessage) {
				t.Fatalf("decodeHello error %v does not wrap ErrBadMessage", err)
			}
			if whom != "" {
				t.Fatalf("decodeHello failed but returned %q", whom)
			}
			return
		}
		if len(whom) >= 32 || strings.IndexByte(whom, 0) >= 0 {
			t.Fatalf("decodeHello returned a bad name %q", whom)
		}
		if enc := encodeHello(whom); !bytes.Equal(enc, b) {
			t.Fatalf("decodeHello accepted %q as %q, which encodes as %q", b, whom, enc)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		status, index, err := decodeAck(b)
		if err != nil {
			if !errors.Is(err, transport.ErrBadMessage) {
				t.Fatalf("decodeAck error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if status == ackOK && (index < 0 || index >= MaxLanes) {
			t.Fatalf("decodeAck accepted lane index %d", index)
		}
		if status != ackOK {
			// Every refusal is one of the errors a sender knows.
			aerr := ackErr(status, index)
			known := false
			for _, want := range []error{transport.ErrTooManyLanes, transport.ErrPermission, transport.ErrPeerGone, transport.ErrBadMessage} {
				known = known || errors.Is(aerr, want)
			}
			if !known {
				t.Fatalf("status %d, index %d: sender error %v", status, index, aerr)
			}
		}
		if enc := encodeAck(status, index); !bytes.Equal(enc, b) {
			t.Fatalf("decodeAck accepted %x as (%d, %d), which encodes as %x", b, status, index, enc)
		}
	})
}

func FuzzDecodeProxy(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		proxy, ok := decodeProxy(b)
		if !ok {
			return
		}
		if proxy < 1 {
			t.Fatalf("decodeProxy accepted proxy %d", proxy)
		}
		var enc [proxySize]byte
		if got := encodeProxy(&enc, int32(proxy)); !bytes.Equal(got, b) {
			t.Fatalf("decodeProxy accepted %x as %d, which encodes as %x", b, proxy, got)
		}
	})
}
