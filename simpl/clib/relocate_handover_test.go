//go:build cgo

package main

import (
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// A Send whose request a relayer handed over whole (through FIFOs) and
// which waits for the receiver now holding it is not cut short by a
// name_locate of the relayer's name after the relayer has exited: that
// name_locate gets a new connection (the relayer is gone), and the old
// one is closed only once the Send under way on it has its answer.
// Before, name_locate closed it at once, and the Send failed.
func TestRelocateDuringHandOver(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	const size = 64
	dir := proctest.Dir(t)
	reapOnFailure(t, dir)
	env := []string{"GOSIMPL_TRANSPORT=fifo"}
	attachHere(t, dir, "fifo", "S")
	w := start(t, dir, env, "receiver", "-n", "W", "-h", "-t", "1")
	w.expectLine(t, "ready", wait)
	d := start(t, dir, env, "relay", "-n", "D", "-r", "W", "-t", "1")
	d.expectLine(t, "ready", wait)
	id := locateHere(t, "D")
	res := sendAsync(id, size)
	d.expectLine(t, fmt.Sprintf("relay S %d", size), wait)
	d.expectLine(t, "relayed", wait)
	w.expectLine(t, msgLine("S", os.Getpid(), size, size+16), wait)
	if err := d.Wait(wait); err != nil {
		t.Fatalf("the relayer: %v", err)
	}
	reap(t, dir, "D")

	// The relayer is gone: name_locate of its name finds no receiver now,
	// and must not take the Send's connection from under it.
	if id2 := gs_name_locate(cstring("D")); id2 != -1 {
		t.Errorf("name_locate of the gone relayer's name: %d, want -1", id2)
	}
	if c := lib.conn(id); c != nil {
		t.Errorf("the gone relayer's id still has its connection")
	}
	io.WriteString(w.stdin, "go\n")
	wantAnswered(t, "the Send W answered", resultWithin(t, "the handed-over Send", res, wait), size)
	w.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)
	if err := w.Wait(wait); err != nil {
		t.Errorf("W: %v", err)
	}
}
