package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
)

// C programs send and answer 4 MiB without copies through the extension
// (include/simplBuffer.h): through shared memory the sender's area from
// simplBufferGet and the receiver's request at whatsThisShmPtr both lie
// inside a mapping of a gosimpl lane (each process reads its own
// /proc/self/maps), the reply area is the request's own memory, and
// every byte of each reply is checked by the sender. The same programs
// forced onto FIFOs (the control) work as well, copying, and report no
// lane. The library's misuse answers are checked by the sender too.
func TestZeroCopyC(t *testing.T) {
	built(t)
	const size, rounds = 4 << 20, 3
	for _, tc := range []struct {
		transport string
		lane      int
	}{{"auto", 1}, {"fifo", 0}} {
		t.Run(tc.transport, func(t *testing.T) {
			dir := proctest.Dir(t)
			env := []string{"GOSIMPL_TRANSPORT=" + tc.transport}
			r := start(t, dir, env, "zerocopy", "recv", "ZR", strconv.Itoa(rounds))
			r.expectLine(t, "ready", 10*time.Second)
			s := start(t, dir, env, "zerocopy", "send", "ZS", "ZR", strconv.Itoa(size), strconv.Itoa(rounds))
			s.expectLine(t, fmt.Sprintf("buffer lane %d", tc.lane), 20*time.Second)
			for i := range rounds {
				r.expectLine(t, fmt.Sprintf("msg %d lane %d same %d", size, tc.lane, tc.lane), 20*time.Second)
				s.expectLine(t, fmt.Sprintf("round %d ok", i), 20*time.Second)
			}
			s.expectLine(t, "past area: cannot attach shmem created for message communication", 10*time.Second)
			s.expectLine(t, "done", 10*time.Second)
			s.exits(t, 0)
			r.exits(t, 0)
		})
	}
}
