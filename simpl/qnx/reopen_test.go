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
	send := func(coid int) error {
		reply := make([]byte, 8)
		_, err := qnx.MsgSend(ctx, coid, []byte("hi"), reply)
		return err
	}
	srv := simpltest.Start(t, "nameserver", env, "svc")
	old, err := qnx.NameOpen(ctx, "svc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := send(old); err != nil {
		t.Fatalf("MsgSend to the first server: %v", err)
	}
	srv.Kill()
	srv.Wait(10 * time.Second)
	if err := send(old); err == nil {
		t.Fatal("MsgSend to a killed server succeeded")
	}
	again := simpltest.Start(t, "nameserver", env, "svc")
	coid, err := qnx.NameOpen(ctx, "svc", 0)
	if err != nil {
		t.Fatalf("name_open after the server's restart, an old coid still open: %v", err)
	}
	if err := send(coid); err != nil {
		t.Fatalf("MsgSend to the new server: %v", err)
	}
	qnx.NameClose(old)
	qnx.NameClose(coid)
	shutdown() // this process's connections and its sending name go
	again.Kill()
	again.Wait(10 * time.Second)
	reap(t)
}
