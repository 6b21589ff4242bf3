// Command fcsend sends messages to a SIMPL name and prints the replies,
// like SIMPL's sender test program.
//
//	fcsend [-n NAME] -r RECEIVER (-m MESSAGE | -p PROXY) [-timeout D] [-wait D]
//
// With -m it sends MESSAGE once and prints the reply; with -p it triggers
// proxy PROXY and returns at once; with neither it sends each line of
// standard input and prints each reply. -wait lets it start before the
// receiver has attached. Any failure exits 1 with a one-line cause.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fcsend:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcsend", flag.ContinueOnError)
	name := fs.String("n", "", "name to attach as the sender (default fcsend_PID)")
	recv := fs.String("r", "", "receiver to send to (required)")
	msgText := fs.String("m", "", "send this message once")
	proxy := fs.Int("p", 0, "trigger this proxy (1 or more) instead of sending")
	maxReply := fs.Int("max-reply", 1<<20, "largest reply accepted, in bytes")
	timeout := fs.Duration("timeout", 0, "give up on each send after this long (0: wait for ever)")
	wait := fs.Duration("wait", 0, "wait up to this long for the receiver to attach (0: it must exist now)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *recv == "" || fs.NArg() > 0 {
		return errors.New("usage: fcsend [-n NAME] -r RECEIVER (-m MESSAGE | -p PROXY)")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["m"] && set["p"] {
		return errors.New("-m and -p exclude each other")
	}
	if *name == "" {
		*name = fmt.Sprintf("fcsend_%d", os.Getpid())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	conn, err := locate(ctx, ch, *recv, *wait)
	if err != nil {
		return err
	}
	defer conn.Close()

	if set["p"] {
		return conn.Trigger(*proxy)
	}
	reply := make([]byte, *maxReply)
	send := func(msg []byte) error {
		sctx := ctx
		if *timeout > 0 {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		n, err := conn.Send(sctx, msg, reply)
		if err != nil {
			return fmt.Errorf("send to %s: %w", *recv, err)
		}
		fmt.Fprintln(stdout, show.Bytes(reply[:n]))
		return nil
	}
	if set["m"] {
		return send([]byte(*msgText))
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		if err := send(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// locate finds name, retrying for up to wait while it is not attached yet.
func locate(ctx context.Context, ch *simpl.Channel, name string, wait time.Duration) (*simpl.Conn, error) {
	deadline := time.Now().Add(wait)
	for {
		conn, err := ch.Locate(name)
		if err == nil || !errors.Is(err, simpl.ErrNotFound) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
