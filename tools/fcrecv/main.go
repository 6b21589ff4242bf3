// Command fcrecv attaches a name, prints every message sent to it and
// replies, like SIMPL's receiver test program.
//
//	fcrecv -n NAME [-reply TEXT] [-count N]
//
// Each request prints as "message from SENDER pid PID: TEXT" (binary data
// as hex:...), each proxy as "proxy N". The reply is TEXT, or the request
// itself when -reply is not given. SIGINT, SIGTERM and SIGHUP detach the
// name and exit 0, leaving no FIFO behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fcrecv:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcrecv", flag.ContinueOnError)
	name := fs.String("n", "", "name to attach (required)")
	replyText := fs.String("reply", "", "reply with this text (default: echo the request)")
	count := fs.Int("count", 0, "exit after this many messages and proxies (0: run until signalled)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" || fs.NArg() > 0 {
		return errors.New("usage: fcrecv -n NAME [-reply TEXT] [-count N]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	fmt.Fprintf(stdout, "attached %s pid %d\n", *name, os.Getpid())
	for n := 0; *count == 0 || n < *count; n++ {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // signalled: detach and exit cleanly
			}
			return err
		}
		if msg.IsProxy() {
			fmt.Fprintf(stdout, "proxy %d\n", msg.Proxy())
			continue
		}
		who, pid := msg.Sender()
		fmt.Fprintf(stdout, "message from %s pid %d: %s\n", who, pid, show.Bytes(msg.Data()))
		reply := msg.Data()
		if isSet(fs, "reply") {
			reply = []byte(*replyText)
		}
		if err := msg.Reply(reply); err != nil {
			fmt.Fprintf(stdout, "reply to %s failed: %v\n", who, err)
		}
	}
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
