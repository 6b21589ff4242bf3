//go:build cgo

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// TestHandles: Receive's handles under reuse (exports.go gives the
// lifetime rule). This process, attached through the exported functions,
// holds three requests from three ported senders at once: three distinct
// handles, each an FCMSG_REC naming its own sender and size; answered in
// the reverse order, each sender gets its own reply. A handle answered
// already is refused (FIFO_OPEN_FAILURE) and changes nothing, and the
// next request's handle is one of the three, reused.
func TestHandles(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	dir := proctest.Dir(t)
	t.Setenv("FIFO_PATH", dir)
	if gs_name_attach(cstring("T")) != 0 {
		t.Fatalf("name_attach: code %d", lastCode())
	}
	attached := true
	defer func() {
		if attached {
			gs_name_detach()
		}
	}()
	req := make([]byte, 4096)
	rep := make([]byte, 4096+16)
	receive := func() (*cChar, int) {
		t.Helper()
		var h *cChar
		n := gs_Receive(&h, unsafe.Pointer(&req[0]), cUint(len(req)))
		if n < 0 {
			t.Fatalf("Receive: %d, code %d", n, lastCode())
		}
		return h, int(n)
	}
	reply := func(h *cChar, n int) cInt {
		for i := 0; i < n; i++ {
			rep[i] = pattern(n)[i] + 1
		}
		for j := 0; j < 16; j++ {
			rep[n+j] = byte(0xA0 + j)
		}
		return gs_Reply(h, unsafe.Pointer(&rep[0]), cUint(n+16))
	}
	// rec reads the FCMSG_REC a handle points at: whom and nbytes.
	rec := func(h *cChar) (string, int) {
		b := unsafe.Slice((*byte)(unsafe.Pointer(h)), hdrSize)
		whom, _, _ := bytes.Cut(b[:32], []byte{0})
		return string(whom), int(binary.NativeEndian.Uint32(b[offNbytes:]))
	}

	var senders []*prog
	handles := map[*cChar]int{}
	var order []*cChar
	for i := 1; i <= 3; i++ {
		size := 100 * i
		s := start(t, dir, nil, "sender", "-n", fmt.Sprintf("S%d", i), "-r", "T", "-s", fmt.Sprint(size))
		s.expectLine(t, "ready", wait)
		senders = append(senders, s)
		h, n := receive()
		if n != size {
			t.Fatalf("request %d: %d bytes, want %d", i, n, size)
		}
		handles[h] = n
		order = append(order, h)
	}
	if len(handles) != 3 {
		t.Fatalf("three requests held at once got %d distinct handles", len(handles))
	}
	for i, h := range order {
		if whom, n := rec(h); whom != fmt.Sprintf("S%d", i+1) || n != 100*(i+1) {
			t.Errorf("handle %d reads %q, %d bytes; want S%d, %d", i, whom, n, i+1, 100*(i+1))
		}
	}
	for i := 2; i >= 0; i-- {
		n := handles[order[i]]
		if m := reply(order[i], n); int(m) != n+16 {
			t.Fatalf("Reply to S%d: %d, code %d", i+1, m, lastCode())
		}
		senders[i].expectLine(t, fmt.Sprintf("ok 0 %d", n+16), wait)
		senders[i].expectLine(t, "sent 1", wait)
		senders[i].exits(t, 0)
	}
	// Answered: a second answer on any of the three is refused.
	for _, h := range order {
		if m := reply(h, 100); m != -1 || lastCode() != codeFIFOOpenFailure {
			t.Errorf("Reply on an answered handle: %d, code %d; want -1, %d", m, lastCode(), codeFIFOOpenFailure)
		}
		if gs_ReplyError(h) != -1 {
			t.Errorf("ReplyError on an answered handle succeeded")
		}
	}
	s := start(t, dir, nil, "sender", "-n", "S4", "-r", "T", "-s", "200")
	s.expectLine(t, "ready", wait)
	h, n := receive()
	if _, ok := handles[h]; !ok {
		t.Errorf("the fourth request's handle is new memory, not one of the three answered")
	}
	if whom, m := rec(h); whom != "S4" || m != 200 || n != 200 {
		t.Errorf("reused handle reads %q, %d bytes (Receive said %d); want S4, 200", whom, m, n)
	}
	if m := reply(h, n); int(m) != n+16 {
		t.Fatalf("Reply to S4: %d, code %d", m, lastCode())
	}
	s.expectLine(t, "ok 0 216", wait)
	s.exits(t, 0)
	attached = false
	if gs_name_detach() != 0 {
		t.Errorf("name_detach: code %d", lastCode())
	}
}

// TestReplyToGoneSender: a Reply to a sender that has gone fails with
// FIFO_OPEN_FAILURE (C SIMPL's code for a sender whose reply FIFO is
// gone), through shared memory and through FIFOs, whether the sender was
// killed (the transport may not have seen it yet: Reply checks the pid)
// or ended by SIGTERM (C SIMPL's handler detaches, and the transport
// sees the sender go).
func TestReplyToGoneSender(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	for _, tr := range []string{"auto", "fifo"} {
		for _, how := range []string{"kill", "term"} {
			t.Run(tr+"/"+how, func(t *testing.T) {
				dir := proctest.Dir(t)
				env := []string{"GOSIMPL_TRANSPORT=" + tr}
				r := start(t, dir, env, "receiver", "-n", "R", "-h", "-t", "1")
				r.expectLine(t, "ready", wait)
				s := start(t, dir, env, "sender", "-n", "S", "-r", "R", "-s", "100")
				r.expectLine(t, msgLine("S", s.PID(), 100, 116), wait)
				held := time.Now()
				if how == "kill" {
					s.Kill()
				} else {
					// Its status is not this test's: the Send the
					// detach ends may return first (exit 1).
					s.Signal(syscall.SIGTERM)
					if err := s.Wait(wait); err != nil {
						t.Logf("sender: %v", err)
					}
				}
				heldFor(held)
				io.WriteString(r.stdin, "go\n")
				r.expectLine(t, "reply err error in opening trigger fifo", deadBound)
				r.exits(t, 0)
				reap(t, dir, "S")
			})
		}
	}
}
