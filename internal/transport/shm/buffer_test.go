//go:build !race

package shm

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// A Buffer builds requests in place and reads replies in place, across
// two processes, at every size, and keeps its lane from one Send to the
// next.
func TestBufferRoundTrip(t *testing.T) {
	p := startRecv(t, "buffer", 0, holdForever)
	c := dial(t, p, Options{})
	ctx := testCtx(t, 60*time.Second)
	for _, size := range []int{1, 64, 4096, 1 << 20, 16 << 20} {
		b, err := c.Buffer(context.Background(), size)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Bytes()) != size {
			t.Fatalf("Buffer(%d).Bytes() has %d bytes", size, len(b.Bytes()))
		}
		lane := &b.Bytes()[0]
		for round, op := range []byte{opEcho, opInPlace, opEcho} {
			n := max(0, size-round) // varied lengths within the buffer
			want := patternSeed(n, n+round)
			if n > 0 {
				want[0] = op
			}
			copy(b.Bytes(), want)
			reply, err := b.Send(ctx, n, size)
			if err != nil {
				t.Fatalf("%d-byte buffer, round %d: %v", size, round, err)
			}
			if &b.Bytes()[0] != lane {
				t.Fatalf("%d-byte buffer moved between Sends", size)
			}
			if len(reply) != n {
				t.Fatalf("%d-byte buffer, round %d: reply of %d bytes, want %d", size, round, len(reply), n)
			}
			if n > 0 && &reply[0] != lane {
				t.Fatalf("%d-byte buffer: the reply is not in place", size)
			}
			if i := firstDiff(reply, complement(want)); i >= 0 {
				t.Fatalf("%d-byte buffer, round %d: reply byte %d wrong", size, round, i)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if b.Bytes() != nil {
			t.Fatal("a closed Buffer still shows its lane")
		}
		if _, err := b.Send(ctx, 0, 0); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Send from a closed Buffer: %v, want ErrClosed", err)
		}
	}
	echo(t, c, "plain Sends still work")
}

// Misuse of a Buffer is an error, never a write past its lane.
func TestBufferMisuse(t *testing.T) {
	p := startRecv(t, "bufmisuse", 0, holdForever)
	c := dial(t, p, Options{MaxMessage: 1 << 20})
	ctx := testCtx(t, 30*time.Second)
	if _, err := c.Buffer(context.Background(), 2<<20); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Buffer over MaxMessage: %v, want ErrTooLarge", err)
	}
	if _, err := c.Buffer(context.Background(), -1); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("Buffer(-1): %v, want ErrTooLarge", err)
	}
	b, err := c.Buffer(context.Background(), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct{ n, max int }{{65, 8}, {-1, 8}, {8, 65}, {8, -1}} {
		if _, err := b.Send(ctx, tc.n, tc.max); !errors.Is(err, transport.ErrTooLarge) {
			t.Errorf("Send(%d, %d) from a 64-byte buffer: %v, want ErrTooLarge", tc.n, tc.max, err)
		}
	}
	// A reply larger than allowed comes back as an error, the buffer
	// goes on.
	copy(b.Bytes(), sizedReq(opSized, 32, 5))
	if _, err := b.Send(ctx, 5, 16); !errors.Is(err, transport.ErrReplyTooLarge) {
		t.Fatalf("a 32-byte reply into 16: %v, want ErrReplyTooLarge", err)
	}
	copy(b.Bytes(), []byte{opEcho, 1, 2})
	if reply, err := b.Send(ctx, 3, 64); err != nil || string(reply) != string(complement([]byte{opEcho, 1, 2})) {
		t.Fatalf("after a refused reply: %q, %v", reply, err)
	}

	// Cancelled after the receiver took it: the buffer is spent, since the
	// late answer may still land in it.
	cctx, cancel := context.WithCancel(ctx)
	copy(b.Bytes(), "Wspent")
	res := make(chan error, 1)
	go func() {
		_, err := b.Send(cctx, 6, 64)
		res <- err
	}()
	p.Expect("took spent", 10*time.Second)
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Send: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled Buffer Send did not return within 5s")
	}
	p.command("answer")
	p.Expect("answered spent", 10*time.Second)
	if _, err := b.Send(ctx, 1, 1); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send from a spent buffer: %v, want ErrClosed", err)
	}
	b.Close()
	echo(t, c, fmt.Sprintf("after %d buffers", 2))
}
