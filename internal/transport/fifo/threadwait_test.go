package fifo

import (
	"testing"

	"github.com/gosimpl/gosimpl/transport/transporttest"
)

// threadWait is the Options.ThreadWait of the endpoint attachCLI makes:
// the sending side of the tests that wait for replies. TestThreadWait
// sets it; the tests run one at a time (none is parallel).
var threadWait bool

// TestThreadWait runs the tests of a Send's wait again with its wait on
// the calling thread (Options.ThreadWait, as the C library asks): every
// way a wait ends early (the Send's deadline, the receiver's death, a
// relay's hand-over and the holder's death, Conn.Close) must end the
// ppoll as it ends the poller's read, and the contract's suite must hold.
func TestThreadWait(t *testing.T) {
	threadWait = true
	t.Cleanup(func() { threadWait = false })
	for _, c := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"ReceiverKilled", TestReceiverKilled},
		{"ReplyThenKilled", TestReplyThenKilled},
		{"ConnCloseEndsSends", TestConnCloseEndsSends},
		{"GaveUpThenKilled", TestGaveUpThenKilled},
		{"PollReadsWaitingReply", TestPollReadsWaitingReply},
		{"OverlappingSendsWithDeadlines", TestOverlappingSendsWithDeadlines},
		{"RelayHandOver", TestRelayHandOver},
	} {
		t.Run(c.name, c.f)
	}
	t.Run("Conformance", func(t *testing.T) {
		transporttest.RunWith(t, Transport{}, transporttest.Options{ThreadWait: true})
	})
}
