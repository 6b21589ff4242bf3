//go:build cgo

package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// A program that only Triggers (or relays, or sends from a
// simplBufferGet area) learns of its receiver's death from name_locate
// too: once the receiver's process is gone, name_locate of the name gives
// an id on a new connection, to the receiver attached since, whether or
// not a call found the old one gone. Before, only a failed Send marked a
// connection gone, and such a program got every later id on the dead
// connection (helper-42).
func TestRelocateWithoutSend(t *testing.T) {
	built(t)
	const wait = 10 * time.Second
	const size = 64
	for _, tr := range []string{"auto", "fifo"} {
		t.Run(tr, func(t *testing.T) {
			dir := proctest.Dir(t)
			reapOnFailure(t, dir)
			env := []string{"GOSIMPL_TRANSPORT=" + tr}
			attachHere(t, dir, tr, "S")
			r1 := start(t, dir, env, "receiver", "-n", "R")
			r1.expectLine(t, "ready", wait)
			id1 := locateHere(t, "R")
			var pace cLonglong
			if gs_Trigger(&pace, id1, 5) != 0 {
				t.Fatalf("Trigger: code %d", lastCode())
			}
			conn1 := lib.conn(id1)
			r1.Kill()
			reap(t, dir, "R")

			r2 := start(t, dir, env, "receiver", "-n", "R")
			r2.expectLine(t, "ready", wait)
			id2 := locateHere(t, "R")
			if c := lib.conn(id2); c == conn1 {
				t.Fatal("name_locate after the receiver's death, no Send between, gave an id on the dead receiver's connection")
			}
			wantAnswered(t, "Send on the id located after the new receiver attached", sendWithin(t, id2, size, wait), size)
			r2.expectLine(t, msgLine("S", os.Getpid(), size, size+16), wait)
			r2.expectLine(t, fmt.Sprintf("reply %d", size+16), wait)
			r2.Kill()
			reap(t, dir, "R")
		})
	}
}
