//go:build cgo

package main

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// TestRecycledHandleCleared: Reply(sender, NULL, n) sends the first n
// bytes of the handle's data area, where Receive put the request. When
// the handle is recycled memory (an earlier sender's request was there),
// the room past the new request must hold nothing of the earlier one: a
// reply larger than the request then carries the new request and zeros,
// as C SIMPL's does (there the room is the new sender's own segment).
// This process receives; a sender (a ported program) sends a large
// request, answered; a second one (replycheck) sends a small one and
// accepts a large reply, which this process sends with a NULL buffer.
func TestRecycledHandleCleared(t *testing.T) {
	builtExtra(t)
	const wait = 10 * time.Second
	const (
		big   = 1000 // the first sender's request
		small = 10   // the second's
		reply = 1000 // what the second accepts, and is sent
	)
	for _, tr := range []string{"auto", "fifo"} {
		t.Run(tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			reapOnFailure(t, dir)
			env := []string{"GOSIMPL_TRANSPORT=" + tr}
			detach := attachHere(t, dir, tr, "T")
			req := make([]byte, 4096)
			receive := func(from string) (*cChar, int) {
				t.Helper()
				var h *cChar
				n := gs_Receive(&h, unsafe.Pointer(&req[0]), cUint(len(req)))
				if n < 0 {
					t.Fatalf("Receive from %s: %d, code %d", from, n, lastCode())
				}
				return h, int(n)
			}

			s1 := start(t, dir, env, "sender", "-n", "S1", "-r", "T", "-s", fmt.Sprint(big))
			s1.expectLine(t, "ready", wait)
			h1, n := receive("S1")
			if n != big {
				t.Fatalf("S1's request: %d bytes, want %d", n, big)
			}
			rep := ruleReply(big)
			if m := gs_Reply(h1, unsafe.Pointer(&rep[0]), cUint(len(rep))); int(m) != len(rep) {
				t.Fatalf("Reply to S1: %d, code %d", m, lastCode())
			}
			s1.expectLine(t, fmt.Sprintf("ok 0 %d", big+16), wait)
			s1.expectLine(t, "sent 1", wait)
			s1.exits(t, 0)

			s2 := start(t, dir, env, "replycheck", "-n", "S2", "-r", "T", "-s", fmt.Sprint(small), "-y", fmt.Sprint(reply))
			s2.expectLine(t, "ready", wait)
			h2, n := receive("S2")
			if n != small {
				t.Fatalf("S2's request: %d bytes, want %d", n, small)
			}
			if h2 != h1 {
				// Nothing to show: the memory is not S1's.
				t.Fatalf("S2's request got new memory, not S1's handle recycled")
			}
			if m := gs_Reply(h2, nil, reply); m != reply {
				t.Fatalf("Reply(NULL, %d) to S2: %d, code %d", reply, m, lastCode())
			}
			// The request where Receive put it, then zeros.
			want := append(pattern(small), make([]byte, reply-small)...)
			s2.expectLine(t, fmt.Sprintf("reply %d %s 0", reply, fnv32a(want)), wait)
			s2.exits(t, 0)
			detach()
		})
	}
}
