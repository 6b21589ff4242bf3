package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gosimpl/gosimpl/simpl"
)

// A server that detaches cleanly on SIGINT, SIGTERM or SIGHUP: the signal
// ends the context, Receive returns, and the deferred Close removes the
// name's FIFOs and fails any sender still waiting with ErrPeerGone.
func ExampleChannel_Close() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ch, err := simpl.Attach("CLOCK", simpl.WithDir(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	// A signal would do this; the example stops itself.
	syscall.Kill(os.Getpid(), syscall.SIGTERM)

	for {
		msg, err := ch.Receive(ctx)
		if errors.Is(err, context.Canceled) {
			fmt.Println("signalled: detaching")
			return
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		msg.Reply([]byte("tick"))
	}
	// Output: signalled: detaching
}

// Zero copy: the server replies in place, the client builds its request
// in a Buffer and reads the reply where it lands.
func ExampleConn_Buffer() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, _ := simpl.Attach("UPPER", simpl.WithDir(dir))
	defer srv.Close()
	go func() {
		for {
			msg, err := srv.Receive(context.Background())
			if err != nil {
				return
			}
			in, out := msg.Data(), msg.ReplyBuffer()
			for i, c := range in { // out may be in's own memory
				if 'a' <= c && c <= 'z' {
					c -= 'a' - 'A'
				}
				out[i] = c
			}
			msg.ReplyInPlace(len(in))
		}
	}()

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(context.Background(), "UPPER")
	defer conn.Close()
	buf, err := conn.Buffer(context.Background(), 64)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer buf.Close()
	n := copy(buf.Bytes(), "hello")
	reply, err := buf.Send(context.Background(), n, 64)
	fmt.Printf("%s %v\n", reply, err)
	// Output: HELLO <nil>
}
