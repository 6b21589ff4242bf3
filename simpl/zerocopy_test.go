package simpl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// zcSizes are the request sizes the zero-copy client sends from a Buffer.
var zcSizes = []int{0, 1, 100, 4096, 65536}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func lowerPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// roleZeroCopy NAME TO: send TO one plain request, then one request of
// each of zcSizes built in a Buffer, and check that each reply is the
// request in upper case; misuse the Buffer; print "ok".
func roleZeroCopy(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reply := make([]byte, 8)
	if n, err := to.Send(ctx, []byte("plain"), reply); err != nil || string(reply[:n]) != "PLAIN" {
		return fmt.Errorf("plain Send: %q, %v", reply[:n], err)
	}
	b, err := to.Buffer(ctx, 65536)
	if err != nil {
		return err
	}
	for _, n := range zcSizes {
		want := lowerPattern(n)
		copy(b.Bytes(), want)
		got, err := b.Send(ctx, n, n)
		if err != nil {
			return fmt.Errorf("%d bytes from a Buffer: %v", n, err)
		}
		if !bytes.Equal(got, bytes.ToUpper(want)) {
			return fmt.Errorf("%d bytes from a Buffer: wrong reply", n)
		}
		if n > 0 && to.Transport() == simpl.SHM && &got[0] != &b.Bytes()[0] {
			return fmt.Errorf("%d bytes from a Buffer: the reply is not in place", n)
		}
	}
	copy(b.Bytes(), "too large?")
	if _, err := b.Send(ctx, 10, 4); !errors.Is(err, simpl.ErrReplyTooLarge) {
		return fmt.Errorf("a reply past maxReply: %v, want ErrReplyTooLarge", err)
	}
	if _, err := b.Send(ctx, 65537, 1); !errors.Is(err, simpl.ErrTooLarge) {
		return fmt.Errorf("Send past the Buffer: %v, want ErrTooLarge", err)
	}
	b.Close()
	b.Close()
	if _, err := b.Send(ctx, 1, 1); !errors.Is(err, simpl.ErrClosed) {
		return fmt.Errorf("Send from a closed Buffer: %v, want ErrClosed", err)
	}
	fmt.Println("ok")
	return nil
}

// Requests read in place and replies written in place, on both transports;
// a Message that was answered stays answered when the sender's next message
// reuses its memory.
func TestZeroCopy(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "ZC")
	cli := simpltest.Start(t, "zerocopy", env(dir), "ZCLI", "ZC")
	ctx := simpltest.Context(t, time.Minute)
	var prev simpl.Message
	for i := range 2 + len(zcSizes) {
		m, err := srv.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		// Both transports know the sender (see TestCred).
		if cred, ok := m.Cred(); !ok || cred.PID != cli.PID() || cred.UID != os.Getuid() || cred.GID != os.Getgid() {
			t.Errorf("message %d: Cred %+v, %v; want pid %d uid %d gid %d", i, cred, ok, cli.PID(), os.Getuid(), os.Getgid())
		}
		if i > 0 {
			// The previous message was answered; its memory may now carry
			// this one.
			if d := prev.Data(); d != nil {
				t.Errorf("message %d: the answered message still shows %d bytes", i, len(d))
			}
			if b := prev.ReplyBuffer(); b != nil {
				t.Errorf("message %d: the answered message still offers a reply buffer", i)
			}
			for name, err := range map[string]error{
				"Reply":        prev.Reply([]byte("STALE")),
				"ReplyInPlace": prev.ReplyInPlace(1),
				"ReplyError":   prev.ReplyError(),
			} {
				if !errors.Is(err, simpl.ErrReplied) {
					t.Errorf("message %d: %s on the answered message: %v, want ErrReplied", i, name, err)
				}
			}
		}
		d := m.Data()
		buf := m.ReplyBuffer()
		if len(buf) != m.MaxReply() {
			t.Fatalf("message %d: reply buffer of %d bytes, MaxReply %d", i, len(buf), m.MaxReply())
		}
		prev = m
		if bytes.Equal(d, []byte("too large?")) {
			if err := m.ReplyInPlace(len(buf) + 1); !errors.Is(err, simpl.ErrReplyTooLarge) {
				t.Fatalf("ReplyInPlace past MaxReply: %v, want ErrReplyTooLarge", err)
			}
			break
		}
		n := len(d)
		for j := range n {
			buf[j] = upper(d[j]) // on shm, the very byte just read
		}
		if err := m.ReplyInPlace(n); err != nil {
			t.Fatalf("message %d: ReplyInPlace: %v", i, err)
		}
	}
	cli.Expect("ok", time.Minute)
	if err := cli.Wait(10 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, cli.Stderr())
	}
}
