package qnx_test

import (
	"context"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl/qnx"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleNameServer NAME: name_attach NAME and answer every message with
// itself (status 0), until killed.
func roleNameServer(args []string) error {
	na, err := qnx.NameAttach(args[0], 0)
	if err != nil {
		return err
	}
	simpltest.Ready()
	buf := make([]byte, 1024)
	var info qnx.MessageInfo
	for {
		rcvid, err := qnx.MsgReceive(context.Background(), na.Chid, buf, &info)
		if err != nil {
			return err
		}
		if rcvid > 0 {
			qnx.MsgReply(rcvid, 0, buf[:info.Msglen])
		}
	}
}

// After its server is killed and started again, a name_open of the name
// reaches the new server, although a coid to the old one is still open
// (it fails). Before, the new open was given the old, dead, connection:
// EBADF until every old coid was closed (helper-40).
func TestNameOpenAfterRestart(t *testing.T) {
	env := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old, coid, again := restarted(t, ctx, env)
	qnx.NameClose(old)
	qnx.NameClose(coid)
	shutdown() // this process's connections and its sending name go
	again.Kill()
	again.Wait(10 * time.Second)
	reap(t)
}

// restarted name_opens "svc" of a nameserver, sends on it, kills the
// server, starts another and name_opens "svc" again, an old coid still
// open: it returns the old coid (dead), the new one and the new server.
func restarted(t *testing.T, ctx context.Context, env []string) (old, coid int, again *simpltest.Proc) {
	t.Helper()
	srv := simpltest.Start(t, "nameserver", env, "svc")
	old, err := qnx.NameOpen(ctx, "svc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sendHi(ctx, old); err != nil {
		t.Fatalf("MsgSend to the first server: %v", err)
	}
	srv.Kill()
	srv.Wait(10 * time.Second)
	if err := sendHi(ctx, old); err == nil {
		t.Fatal("MsgSend to a killed server succeeded")
	}
	again = simpltest.Start(t, "nameserver", env, "svc")
	if coid, err = qnx.NameOpen(ctx, "svc", 0); err != nil {
		t.Fatalf("name_open after the server's restart, an old coid still open: %v", err)
	}
	if err := sendHi(ctx, coid); err != nil {
		t.Fatalf("MsgSend to the new server: %v", err)
	}
	return old, coid, again
}

// sendHi sends "hi" on coid.
func sendHi(ctx context.Context, coid int) error {
	reply := make([]byte, 8)
	_, err := qnx.MsgSend(ctx, coid, []byte("hi"), reply)
	return err
}
