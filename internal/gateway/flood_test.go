package gateway

import (
	"fmt"
	"testing"

	"github.com/gosimpl/gosimpl/internal/netwire"
)

// A peer publishing requests faster than the gateway reads them makes it
// hold at most its pending limit: NATS drops the rest, which is counted.
// Before, the limit was off, and a flood of 149 MiB left 139 MiB waiting
// in the gateway's memory (helper-52).
func TestFloodBounded(t *testing.T) {
	oldMsgs, oldBytes := pendingMsgs, pendingBytes
	pendingMsgs, pendingBytes = 1<<16, 2<<20
	t.Cleanup(func() { pendingMsgs, pendingBytes = oldMsgs, oldBytes })
	const host = "gw-flood-host"
	g, _, conn := setupFree(t, host, WithMaxInbound(1))
	if msgs, bytes, err := g.inSub.PendingLimits(); err != nil || msgs != 1<<16 || bytes != 2<<20 {
		t.Fatalf("the inbound subscription's pending limits: %d messages, %d bytes (%v)", msgs, bytes, err)
	}
	peer := peerOn(t, conn)
	subj := netwire.Subject(host, "", "hx")
	most := 0
	for i := range 40 {
		b, _ := netwire.AppendBatch(nil, netwire.Batch{IDPrefix: fmt.Sprintf("flood%03d", i), Inbox: peerInbox("hx")})
		for seq := uint64(1); len(b) < g.Limit()-100; seq++ {
			b, _ = netwire.AppendBatchEntry(b, &netwire.BatchEntry{Kind: netwire.KindLocate, Name: "N", FromName: "F", FromPID: 1, Seq: seq})
		}
		if err := peer.Publish(subj, b); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			peer.Flush()
			if _, n, err := g.inSub.Pending(); err == nil {
				most = max(most, n)
			}
		}
	}
	peer.Flush()
	if most > pendingBytes {
		t.Errorf("the gateway held %d bytes unread, its limit %d", most, pendingBytes)
	}
	t.Logf("most held unread %d KiB; dropped %d", most>>10, g.Stats().Dropped)
}
