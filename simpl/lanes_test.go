package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// lanesRoles are the helper roles of the lane-grab test.
var lanesRoles = map[string]simpltest.Role{"lanegrab": roleLaneGrab}

// roleLaneGrab CRED NAME: as user CRED, over shared memory only, reserve
// lanes to NAME (Buffers, each within 1 s) until one is not had, or 5000;
// print "grabbed N KIND" (KIND: what ended it). Then locate NAME again, a
// Conn holding no lane, and print "second KIND LIMIT" (LIMIT from a
// LaneLimitError, else -1). Hold everything until killed.
func roleLaneGrab(args []string) error {
	if err := becomeUser(args[0]); err != nil {
		return err
	}
	ch, err := simpl.Attach("", simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	defer ch.Close()
	c, err := ch.Locate(context.Background(), args[1])
	if err != nil {
		return err
	}
	var bufs []*simpl.Buffer
	var gerr error
	for len(bufs) < 5000 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		b, err := c.Buffer(ctx, 64)
		cancel()
		if err != nil {
			gerr = err
			break
		}
		bufs = append(bufs, b)
	}
	fmt.Println("grabbed", len(bufs), laneErrKind(gerr))
	_, err = ch.Locate(context.Background(), args[1])
	limit := -1
	var le *simpl.LaneLimitError
	if errors.As(err, &le) {
		limit = le.Limit
	}
	fmt.Println("second", laneErrKind(err), limit)
	select {}
}

func laneErrKind(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, simpl.ErrTooManyLanes):
		return "too-many-lanes"
	case errors.Is(err, simpl.ErrTooLarge):
		return "too-large"
	}
	return strings.ReplaceAll(err.Error(), " ", "_")
}

// Another user (nobody) may send to a 0666 receiver, and grabs as many
// shared-memory lanes as it can: it is held at the per-process limit (its
// next Buffer waits for one of its own lanes; a new Conn, holding none,
// fails with ErrTooManyLanes and the limit), and the receiver's own user
// still gets lanes and answers (issue 16, item 6). Before, the grabber
// took all 4096 lanes, 8,206 descriptors in the receiver, and senders
// needing a new lane were told "message too large".
func TestLaneGrabByOtherUser(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	srv := attach(t, dir, "LANES", simpl.WithTransport(simpl.SHM), simpl.WithPerm(0o666))
	ctx := simpltest.Context(t, 2*time.Minute)
	go serve(ctx, srv, nil)
	before := fdCount(t)
	g := simpltest.StartNoWait(t, "lanegrab", permEnv(dir), nobodyCred, "LANES")
	if got, want := g.Expect("grabbed", time.Minute), fmt.Sprintf("grabbed %d deadline", shm.DefaultLanesPerProcess); got != want {
		t.Fatalf("nobody's lane grab: %q, want %q", got, want)
	}
	if got, want := g.Expect("second", time.Minute), fmt.Sprintf("second too-many-lanes %d", shm.DefaultLanesPerProcess); got != want {
		t.Fatalf("nobody's second Conn: %q, want %q", got, want)
	}
	// A lane is a socket and a nudge pipe's write end here.
	if held := fdCount(t) - before; held > 2*shm.DefaultLanesPerProcess+8 {
		t.Errorf("the grab holds %d descriptors in the receiver, want at most %d", held, 2*shm.DefaultLanesPerProcess+8)
	}
	cli := attach(t, dir, "CLI", simpl.WithTransport(simpl.SHM))
	for i := range 4 {
		c := locate(t, cli, "LANES")
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		reply := make([]byte, 8)
		n, err := c.Send(sctx, []byte{opEcho, byte('a' + i)}, reply)
		cancel()
		if err != nil || n != 1 || reply[0] != byte('b'+i) {
			t.Fatalf("Send %d during the grab: %q, %v", i, reply[:n], err)
		}
	}
	g.Kill()
	reap(t, dir) // the grabber's FIFOs
}
