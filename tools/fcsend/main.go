// Command fcsend sends messages to a SIMPL name and prints the replies,
// like SIMPL's sender test program.
//
//	fcsend [-n NAME] -r RECEIVER (-m MESSAGE | -p PROXY) [-timeout D] [-wait D] [-max-reply N]
//
// With -m it sends MESSAGE once and prints the reply; with -p it triggers
// proxy PROXY and returns at once; with neither it sends each line of
// standard input and prints each reply. -wait lets it start before the
// receiver has attached. A receiver that dies (even by SIGKILL) ends the
// wait for its reply at once (the library watches the receiver's process);
// -timeout also bounds each wait. Any failure exits 1 with a one-line
// cause.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/netdirect"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcsend [-n NAME] -r RECEIVER (-m MESSAGE | -p PROXY) [-timeout D] [-wait D] [-max-reply N]"

func main() {
	// A closed standard output must fail the write, not kill the process
	// with its name still attached.
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcsend", run(os.Args[1:], os.Stdin, os.Stdout))
}

// maxReplyLimit is the largest -max-reply: 1 GiB.
const maxReplyLimit = 1 << 30

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	// GOSIMPL_NATS: remote names straight to NATS, through a gateway of
	// this process's own, gone with it.
	defer netdirect.Close()
	fs := flag.NewFlagSet("fcsend", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	name := fs.String("n", "", "name to attach as the sender (default fcsend_PID)")
	recv := fs.String("r", "", "receiver to send to (required)")
	msgText := fs.String("m", "", "send this message once")
	proxy := fs.Int("p", 0, "trigger this proxy (1 or more) instead of sending")
	maxReply := fs.Int("max-reply", 1<<20, "largest reply accepted, in bytes")
	timeout := fs.Duration("timeout", 0, "give up on each send after this long (0: wait while the receiver lives)")
	wait := fs.Duration("wait", 0, "wait up to this long for the receiver to attach (0: it must exist now)")
	if help, err := cli.ParseMore(fs, args, usage, stdout, cli.NATSHelp); help || err != nil {
		return err
	}
	if *recv == "" || fs.NArg() > 0 {
		return errors.New(usage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["m"] && set["p"]:
		return errors.New("-m and -p exclude each other")
	case set["p"] && *proxy < 1:
		return fmt.Errorf("-p %d: a proxy is 1 or more", *proxy)
	case set["p"] && (set["timeout"] || set["max-reply"]):
		return errors.New("-timeout and -max-reply are for a send: a proxy (-p) waits for nothing and has no reply")
	case *maxReply < 0 || *maxReply > maxReplyLimit:
		return fmt.Errorf("-max-reply %d: must be 0 to %d (1 GiB: the reply buffer is allocated before the Send)", *maxReply, maxReplyLimit)
	case *timeout < 0:
		return fmt.Errorf("-timeout %v: must be 0 or more", *timeout)
	case *wait < 0:
		return fmt.Errorf("-wait %v: must be 0 or more", *wait)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	if *name == "" {
		*name = cli.OwnName("fcsend_")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stdout = cli.Writer(ctx, stdout) // a signal ends a write to a pipe nobody reads

	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	conn, err := cli.Find(ctx, *recv, *wait, ch.Locate, ch.WaitFor)
	if errors.Is(err, simpl.ErrNotFound) && *wait == 0 {
		return fmt.Errorf("%w (-wait D waits for it to attach)", err)
	}
	if err != nil {
		return err
	}
	defer conn.Close()

	if set["p"] {
		return conn.Trigger(*proxy)
	}
	reply := make([]byte, *maxReply)
	send := func(msg []byte) error {
		n, err := sendWatched(ctx, ch, conn, msg, reply, *timeout)
		if errors.Is(err, simpl.ErrReplyTooLarge) {
			// The library's text does not know the flag.
			return fmt.Errorf("send to %s: reply too large: longer than -max-reply %d bytes (give a larger -max-reply)", *recv, *maxReply)
		}
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(*recv)) {
				err = fmt.Errorf("send to %s: %w", *recv, err)
			}
			return err
		}
		if _, err := fmt.Fprintln(stdout, show.Bytes(reply[:n])); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	if set["m"] {
		return send([]byte(*msgText))
	}
	return cli.EachLine(ctx, stdin, send)
}

// sendWatched sends msg and waits for the reply until it arrives, the
// receiver dies (Send itself returns ErrPeerGone), ctx ends or timeout (if
// not 0) passes. To give up it closes conn and ch, which the library
// answers by ending the Send and removing the channel's FIFOs before Send
// returns; a cancelled context would leave that clean-up to a goroutine
// that may not run before the process exits. The error then names the
// reason.
//
// To a remote name (host:NAME) the timeout is the Send's deadline
// instead, which travels with the request so that the remote host gives
// up too; the remote transport cleans up after itself.
func sendWatched(ctx context.Context, ch *simpl.Channel, conn *simpl.Conn, msg, reply []byte, timeout time.Duration) (int, error) {
	sendCtx := context.Background()
	remote := conn.Transport() == simpl.NET
	if remote && timeout > 0 {
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(sendCtx, timeout)
		defer cancel()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var cause error // written before done is closed, read after
	go func() {
		defer close(done)
		var expired <-chan time.Time
		if timeout > 0 && !remote {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-stop:
			return
		case <-ctx.Done():
			cause = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-expired:
			cause = fmt.Errorf("no reply within %v: %w", timeout, context.DeadlineExceeded)
		}
		conn.Close()
		ch.Close()
	}()
	n, err := conn.Send(sendCtx, msg, reply)
	close(stop)
	<-done
	if cause != nil {
		return 0, cause
	}
	if remote && errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("no reply within %v: %w", timeout, err)
	}
	return n, err
}
