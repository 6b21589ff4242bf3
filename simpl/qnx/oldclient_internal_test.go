package qnx

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// A client of the wire before reply areas had room for a table of runs
// (version 1) is refused clearly: its MsgSend fails and the server
// receives nothing. Before the version went to 2, such a client was
// served with a reply area 68 bytes shorter than it had, and a reply of
// 64 bytes reached it as 0 bytes with success (helper-66).
func TestOldWireRefused(t *testing.T) {
	dir := simpltest.Dir(t)
	t.Setenv("FIFO_PATH", dir)
	chid, err := ChannelCreate(0)
	if err != nil {
		t.Fatal(err)
	}
	defer ChannelDestroy(chid)
	id, err := simpl.Attach("")
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := id.Locate(ctx, chanName(os.Getpid(), chid, false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := make([]byte, headerSize+5)
	putHeader(req, header{kind: kindMsg, a: 0x40000001, b: 1, c: int32(sys.Gettid())})
	req[2] = 1 // the old version
	copy(req[headerSize:], "hello")
	done := make(chan error, 1)
	go func() {
		_, err := conn.Send(ctx, req, make([]byte, replyHeaderSize+64))
		done <- err
	}()
	// The server's receive takes it, refuses it, and waits on: it has
	// received nothing when its own timeout passes.
	ns := uint64(300 * time.Millisecond)
	if _, err := TimerTimeout(CLOCK_MONOTONIC, NTO_TIMEOUT_RECEIVE, nil, &ns, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := MsgReceive(ctx, chid, make([]byte, 64), nil); !errors.Is(err, ETIMEDOUT) {
		t.Errorf("a version-1 request received: %v, want nothing (ETIMEDOUT)", err)
	}
	if err := <-done; !errors.Is(err, simpl.ErrRejected) {
		t.Errorf("a version-1 client's Send: %v, want it refused (ErrRejected)", err)
	}
}
