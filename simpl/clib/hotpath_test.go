//go:build cgo

package main

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// cstring is s as a NUL-terminated C string in Go memory (the exported
// functions copy what they keep).
func cstring(s string) *cChar {
	b := append([]byte(s), 0)
	return (*cChar)(unsafe.Pointer(&b[0]))
}

// TestHotPathAllocs calls the C API's Send, Receive, Reply and Trigger
// (the Go functions the C wrappers call, in this process) against ported
// C programs in other processes, through shared memory and through FIFOs,
// and fails on any Go allocation per call once warm: testing.AllocsPerRun
// counts every goroutine's, the transports' and the inbox's included. The
// handles Receive returns are reused, which the test sees as the same
// pointer coming back (no malloc per message).
func TestHotPathAllocs(t *testing.T) {
	if proctest.RaceEnabled() {
		// sync.Pool drops what it is given at random under the race
		// detector: the count would be the detector's. CI runs this
		// package without it too.
		t.Skip("allocation counts mean nothing under the race detector")
	}
	built(t)
	const runs = 100
	var pace cLonglong // this goroutine's thread's pacer, as a C thread's
	for _, tr := range []string{"auto", "fifo"} {
		t.Run(tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			t.Setenv("FIFO_PATH", dir)
			t.Setenv("GOSIMPL_TRANSPORT", tr)
			env := []string{"GOSIMPL_TRANSPORT=" + tr}
			if gs_name_attach(cstring("T")) != 0 {
				t.Fatalf("name_attach: code %d", lastCode())
			}
			detached := false
			detach := func() {
				if !detached {
					detached = true
					if gs_name_detach() != 0 {
						t.Errorf("name_detach: code %d", lastCode())
					}
				}
			}
			defer detach()

			// Send and Trigger, to a ported receiver.
			r := start(t, dir, env, "receiver", "-n", "R")
			r.expectLine(t, "ready", 10*time.Second)
			id := gs_name_locate(cstring("R"))
			if id < 3 {
				t.Fatalf("name_locate: %d, code %d", id, lastCode())
			}
			const size = 64
			out, in := pattern(size), make([]byte, size+16)
			send := func() {
				if n := gs_Send(&pace, id, unsafe.Pointer(&out[0]), unsafe.Pointer(&in[0]), size, size+16); n != size+16 {
					t.Fatalf("Send: %d, code %d", n, lastCode())
				}
			}
			if a := testing.AllocsPerRun(runs, send); a != 0 {
				t.Errorf("Send: %v allocations per call, want 0", a)
			}
			for i, b := range pattern(size) {
				if in[i] != b+1 {
					t.Fatalf("reply byte %d is %#x, want %#x", i, in[i], b+1)
				}
			}
			trigger := func() {
				if gs_Trigger(&pace, id, 5) != 0 {
					t.Fatalf("Trigger: code %d", lastCode())
				}
			}
			if a := testing.AllocsPerRun(runs, trigger); a != 0 {
				t.Errorf("Trigger: %v allocations per call, want 0", a)
			}
			// The receiver has answered every Send and taken every proxy.
			for i := 0; i < runs+1; i++ {
				r.Expect("reply", 10*time.Second)
			}
			for i := 0; i < runs+1; i++ {
				r.expectLine(t, "proxy 5", 10*time.Second)
			}

			// Receive and Reply, from a ported sender.
			s := start(t, dir, env, "sender", "-n", "S", "-r", "T", "-s", fmt.Sprint(size), "-t", fmt.Sprint(runs+1))
			s.expectLine(t, "ready", 10*time.Second)
			req := make([]byte, 4096)
			rep := make([]byte, 4096+16)
			var first *cChar
			handles := map[*cChar]bool{}
			serve := func() {
				var h *cChar
				n := gs_Receive(&h, unsafe.Pointer(&req[0]), cUint(len(req)))
				if n != size {
					t.Fatalf("Receive: %d, code %d", n, lastCode())
				}
				if first == nil {
					first = h
				}
				handles[h] = true // the same key every time: no growth
				for i := 0; i < int(n); i++ {
					rep[i] = req[i] + 1
				}
				for j := 0; j < 16; j++ {
					rep[int(n)+j] = byte(0xA0 + j)
				}
				if m := gs_Reply(h, unsafe.Pointer(&rep[0]), cUint(n+16)); m != n+16 {
					t.Fatalf("Reply: %d, code %d", m, lastCode())
				}
			}
			if a := testing.AllocsPerRun(runs, serve); a != 0 {
				t.Errorf("Receive and Reply: %v allocations per round trip, want 0", a)
			}
			if len(handles) != 1 {
				t.Errorf("Receive returned %d handles one at a time, want the one reused", len(handles))
			}
			s.Expect(fmt.Sprintf("sent %d", runs+1), 10*time.Second)
			s.exits(t, 0)
			detach()
			r.Kill()
			reap(t, dir, "R")
		})
	}
}

// lastCode is the C library's sticky error code.
func lastCode() int { return codeNow() }
