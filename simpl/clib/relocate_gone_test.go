//go:build cgo

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
)

// The programs these tests build besides buildAll's, from testdata, into
// binDir, against the library buildAll built.
var extraPrograms = []string{"relayfirst", "replycheck"}

var (
	extraOnce sync.Once
	extraErr  error
)

// builtExtra is built and, once per test binary, extraPrograms.
func builtExtra(t *testing.T) {
	t.Helper()
	built(t)
	extraOnce.Do(func() {
		for _, p := range extraPrograms {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			args := []string{"-Wall", "-Werror", "-I", "include", filepath.Join("testdata", p+".c"), "-L", binDir, "-lsimpl", "-o", filepath.Join(binDir, p)}
			out, err := exec.CommandContext(ctx, "cc", args...).CombinedOutput()
			cancel()
			if err != nil {
				extraErr = fmt.Errorf("cc %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if extraErr != nil {
		t.Fatal(extraErr)
	}
}

// reapOnFailure removes, once the test's programs are killed and before
// proctest.Dir checks dir is empty, the FIFOs that programs killed by a
// failed test left there (a passing test's programs leave none: that
// check stays).
func reapOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if t.Failed() {
			reap(t, dir, "")
		}
	})
}

// sendResult is what a Send from this process returned: n (or -1), the
// reply, and the library's error code right after it.
type sendResult struct {
	n     int
	reply []byte
	code  int
}

// sendAsync sends size bytes of the pattern on id, accepting size+16
// back, as a C thread would (gs_Send), from a goroutine of its own; the
// result comes on the channel.
func sendAsync(id cInt, size int) <-chan sendResult {
	done := make(chan sendResult, 1)
	go func() {
		var pace cLonglong
		out, in := pattern(size), make([]byte, size+16)
		n := gs_Send(&pace, id, unsafe.Pointer(&out[0]), unsafe.Pointer(&in[0]), cUint(size), cUint(size+16))
		r := sendResult{n: int(n), code: lastCode()}
		if n >= 0 {
			r.reply = in[:n]
		}
		done <- r
	}()
	return done
}

// resultWithin is the Send's result, failing the test if it has not
// returned within d (the library's Send has no deadline of its own).
func resultWithin(t *testing.T, what string, done <-chan sendResult, d time.Duration) sendResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("%s: Send not returned within %v", what, d)
		return sendResult{}
	}
}

// sendWithin is sendAsync's result, within d.
func sendWithin(t *testing.T, id cInt, size int, d time.Duration) sendResult {
	t.Helper()
	return resultWithin(t, fmt.Sprintf("id %d", id), sendAsync(id, size), d)
}

// ruleReply is the sample receivers' reply to pattern(size) (common.h).
func ruleReply(size int) []byte {
	b := pattern(size)
	for i := range b {
		b[i]++
	}
	for j := range 16 {
		b = append(b, byte(0xA0+j))
	}
	return b
}

// wantAnswered fails the test unless r is the rule's reply to a request
// of size bytes.
func wantAnswered(t *testing.T, what string, r sendResult, size int) {
	t.Helper()
	if r.n < 0 {
		t.Fatalf("%s: Send failed, code %d", what, r.code)
	}
	if !bytes.Equal(r.reply, ruleReply(size)) {
		t.Fatalf("%s: reply of %d bytes is not the rule's to %d bytes", what, r.n, size)
	}
}

// wantFailed fails the test unless r is a failed Send with code.
func wantFailed(t *testing.T, what string, r sendResult, code int) {
	t.Helper()
	if r.n != -1 || r.code != code {
		t.Fatalf("%s: Send returned %d, code %d; want -1, code %d", what, r.n, r.code, code)
	}
}

// attachHere attaches name in this process through the exported
// functions, FIFO directory dir and transport tr, and detaches it when
// the test ends (unless the test did).
func attachHere(t *testing.T, dir, tr, name string) (detach func()) {
	t.Helper()
	t.Setenv("FIFO_PATH", dir)
	t.Setenv("GOSIMPL_TRANSPORT", tr)
	if gs_name_attach(cstring(name)) != 0 {
		t.Fatalf("name_attach %s: code %d", name, lastCode())
	}
	detached := false
	detach = func() {
		if !detached {
			detached = true
			if gs_name_detach() != 0 {
				t.Errorf("name_detach: code %d", lastCode())
			}
		}
	}
	t.Cleanup(detach)
	return detach
}

// locateHere is name_locate from this process; it fails the test unless
// it gives an id.
func locateHere(t *testing.T, name string) cInt {
	t.Helper()
	id := gs_name_locate(cstring(name))
	if id < 3 {
		t.Fatalf("name_locate %s: %d, code %d", name, id, lastCode())
	}
	return id
}

// wantTransport fails the test unless id's connection goes through the
// transport GOSIMPL_TRANSPORT=tr picks between two ported programs.
func wantTransport(t *testing.T, id cInt, tr string) {
	t.Helper()
	want := simpl.SHM
	if tr == "fifo" {
		want = simpl.FIFO
	}
	if c := lib.conn(id); c == nil || c.Transport() != want {
		t.Fatalf("id %d: connection %v, want one through %s", id, c, want)
	}
}

// TestRelocateAfterGone: the path TestRelocate does not take. A
// receiver is SIGKILLed; a Send on the id located before fails; another
// receiver attaches the name; name_locate of the name then gives an id on
// a new connection, which works, not one more id on the dead connection
// (which would fail every Send). The old id, dropped, keeps failing as
// on a closed descriptor (FIFO_WRITE_FAILURE), its simplBufferGet area
// released; and the next name_locate reuses the new connection.
func TestRelocateAfterGone(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	const size = 64
	for _, tr := range []string{"auto", "fifo"} {
		t.Run(tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			reapOnFailure(t, dir)
			env := []string{"GOSIMPL_TRANSPORT=" + tr}
			detach := attachHere(t, dir, tr, "S")
			pid := os.Getpid()

			r1 := start(t, dir, env, "receiver", "-n", "R")
			r1.expectLine(t, "ready", wait)
			id1 := locateHere(t, "R")
			wantAnswered(t, "Send to the first receiver", sendWithin(t, id1, size, wait), size)
			r1.expectLine(t, msgLine("S", pid, size, size+16), wait)
			r1.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)
			wantTransport(t, id1, tr)
			conn1 := lib.conn(id1)
			// A send area on the id, which dropping the id must release.
			if p := gs_simplBufferGet(id1, 256); p == nil {
				t.Fatalf("simplBufferGet: code %d", lastCode())
			}
			lib.mu.Lock()
			area := lib.bufs[id1]
			lib.mu.Unlock()
			if area == nil {
				t.Fatal("simplBufferGet made no send area for the id")
			}

			r1.Kill()
			reap(t, dir, "R")
			wantFailed(t, "Send to the receiver killed", sendWithin(t, id1, size, wait), codeCommunicationError)

			r2 := start(t, dir, env, "receiver", "-n", "R")
			r2.expectLine(t, "ready", wait)
			id2 := locateHere(t, "R")
			if id2 == id1 {
				t.Fatalf("name_locate after the receiver's death gave the old id %d", id1)
			}
			wantTransport(t, id2, tr)
			conn2 := lib.conn(id2)
			if conn2 == conn1 {
				t.Errorf("name_locate after the receiver's death gave an id on the dead receiver's connection")
			}
			wantAnswered(t, "Send on the id located after the new receiver attached", sendWithin(t, id2, size, wait), size)
			r2.expectLine(t, msgLine("S", pid, size, size+16), wait)
			r2.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)

			// The old id is dropped: it fails as on a closed descriptor,
			// every time, and nothing reaches the new receiver.
			for i := range 2 {
				wantFailed(t, fmt.Sprintf("Send %d on the dropped id", i), sendWithin(t, id1, size, wait), codeFIFOWriteFailure)
			}
			if c := lib.conn(id1); c != nil {
				t.Errorf("the dropped id still has a connection")
			}
			if p := gs_simplBufferGet(id1, 256); p != nil || lastCode() != codeFIFOWriteFailure {
				t.Errorf("simplBufferGet on the dropped id: %p, code %d; want NULL, code %d", p, lastCode(), codeFIFOWriteFailure)
			}
			lib.mu.Lock()
			_, kept := lib.bufs[id1]
			lib.mu.Unlock()
			area.mu.Lock()
			dead, ptr := area.dead, area.ptr
			area.mu.Unlock()
			if kept || !dead || ptr != nil {
				t.Errorf("the dropped id's send area: still the id's %v, released %v, memory %p; want gone, released, none", kept, dead, ptr)
			}

			// The live receiver's connection is the name's now.
			id3 := locateHere(t, "R")
			if lib.conn(id3) != conn2 {
				t.Errorf("name_locate of the live receiver's name gave a new connection")
			}
			wantAnswered(t, "Send on the id located again", sendWithin(t, id3, size, wait), size)
			r2.expectLine(t, msgLine("S", pid, size, size+16), wait)

			detach()
			r2.Signal(syscall.SIGTERM)
			r2.exits(t, 0)
		})
	}
}

// TestRelocateRelayerAlive: a Send whose request a relayer forwarded,
// and whose final receiver was then SIGKILLed, fails as one to a receiver
// gone (the relayer's forwarding aborts it: the sender hears "peer
// gone"), but the relayer lives: name_locate of the relayer's name must
// keep the connection to it, not drop it, so that a later Send on the
// same id, which the relayer answers itself, works (and the new id is on
// the same connection). The relayer reaches the final receiver through
// shared memory (so it forwards); the sender reaches the relayer through
// shared memory, or through FIFOs. (A request that comes through FIFOs
// and goes on through FIFOs is handed over whole: the sender then waits
// while the relayer lives, so no Send fails.)
func TestRelocateRelayerAlive(t *testing.T) {
	builtExtra(t)
	const wait = 10 * time.Second
	const size = 64
	for _, tr := range []string{"auto", "fifo"} {
		t.Run("sender "+tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			reapOnFailure(t, dir)
			env := []string{"GOSIMPL_TRANSPORT=auto"}
			detach := attachHere(t, dir, tr, "S")

			r := start(t, dir, env, "receiver", "-n", "R", "-h", "-t", "1")
			r.expectLine(t, "ready", wait)
			rl := start(t, dir, env, "relayfirst", "-n", "RL", "-r", "R", "-t", "3")
			rl.expectLine(t, "ready", wait)
			id1 := locateHere(t, "RL")
			wantTransport(t, id1, tr)
			conn1 := lib.conn(id1)

			sent := sendAsync(id1, size)
			rl.expectLine(t, fmt.Sprintf("relay S %d", size), wait)
			rl.expectLine(t, "relayed", wait)
			// Forwarded: R holds it, from RL; its death fails it.
			r.expectLine(t, msgLine("RL", rl.PID(), size, size+16), wait)
			r.Kill()
			reap(t, dir, "R")
			res := resultWithin(t, "the Send relayed to a receiver killed", sent, wait)
			wantFailed(t, "Send relayed to a receiver killed", res, codeCommunicationError)
			if err := syscall.Kill(rl.PID(), 0); err != nil {
				t.Fatalf("the relayer: %v, want it alive", err)
			}

			id2 := locateHere(t, "RL")
			if lib.conn(id2) != conn1 {
				t.Errorf("name_locate of the live relayer's name gave a new connection: the old one was dropped")
			}
			wantAnswered(t, "Send on the first id, to the relayer alive", sendWithin(t, id1, size, wait), size)
			rl.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)
			wantAnswered(t, "Send on the id located again", sendWithin(t, id2, size, wait), size)
			rl.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)
			rl.exits(t, 0)
			detach()
		})
	}
}
