//go:build !race

package shm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// Seeds live in testdata/fuzz/FuzzDecodeHello, FuzzDecodeAck and
// FuzzProxyRing.

func FuzzDecodeHello(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		whom, kind, err := decodeHello(b)
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
		if kind != laneMessages && kind != laneProxies {
			t.Fatalf("decodeHello accepted lane kind %d", kind)
		}
		if enc := encodeHello(whom, kind); !bytes.Equal(enc, b) {
			t.Fatalf("decodeHello accepted %q as %q (kind %d), which encodes as %q", b, whom, kind, enc)
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

// FuzzProxyRing: whatever a sender leaves in its proxy lane's ring words
// and entries, the receiver takes a good proxy, finds nothing, or drops
// the lane with codeBadRing; it never reads past the ring or takes more
// than was written.
func FuzzProxyRing(f *testing.F) {
	m, err := sys.NewPrivate(proxyLaneSize)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Unmap() })
	f.Fuzz(func(t *testing.T, tail, taken uint32, entry uint64, gone bool) {
		l := &rlane{proxies: true, r: ringOf(m), ptaken: taken, gone: gone, goneTail: tail}
		l.r.code.Store(0)
		l.r.tail.Store(tail)
		l.r.entry(taken).Store(entry)
		proxy, ticket, n, drop := l.proxyLocked(true)
		switch {
		case proxy > 0:
			wp, wt, ok := decodeEntry(entry)
			if !ok || proxy != wp || ticket != wt || n != tail-taken || n < 1 || n > proxyRing {
				t.Fatalf("tail %d, taken %d, entry %#x: took proxy %d (ticket %d, %d waiting)", tail, taken, entry, proxy, ticket, n)
			}
			if l.ptaken != taken+1 || l.r.head.Load() != taken+1 {
				t.Fatalf("after taking proxy %d of %d: taken %d, head %d", taken, tail, l.ptaken, l.r.head.Load())
			}
			if drop != (gone && n == 1) {
				t.Fatalf("gone %v, %d waiting: drop %v", gone, n, drop)
			}
		case tail == taken:
			if drop != gone || l.r.code.Load() != 0 {
				t.Fatalf("empty ring, gone %v: drop %v, code %d", gone, drop, l.r.code.Load())
			}
		default:
			if !drop || l.r.code.Load() != codeBadRing || !l.gone || l.ptaken != taken {
				t.Fatalf("tail %d, taken %d, entry %#x: nothing taken, drop %v, code %d", tail, taken, entry, drop, l.r.code.Load())
			}
		}
	})
}
