// Command fcrecv attaches a name, prints every message sent to it and
// replies, like SIMPL's receiver test program.
//
//	fcrecv -n NAME [-reply TEXT] [-count N] [-delay D] [-max-print N] [-metrics ADDR]
//
// Each request prints as "message from SENDER pid PID: TEXT" (binary data
// as hex:...), each proxy as "proxy N". A message longer than -max-print
// bytes (256 unless told) prints its first bytes and "… (N more bytes)".
// A sender name that is not plain printable text prints quoted, as Go
// quotes strings. The reply is TEXT, or the request
// itself when -reply is not given; -delay waits D before each reply (a slow
// server, for tests and demos). SIGINT, SIGTERM and SIGHUP detach the name
// and exit 0, leaving no FIFO behind; so does -count once N messages and
// proxies have arrived. When standard output goes away (fcrecv | head) it
// detaches and exits 1.
//
// -metrics ADDR serves Prometheus metrics over HTTP at ADDR (host:port;
// port 0 picks a free one) under /metrics: the name's simpl_* metrics
// (see docs/metrics.md) and the Go runtime's and the process's. The line
// after "attached ..." is then "metrics http://HOST:PORT/metrics", the
// address actually bound. Serving HTTP and Prometheus more than triples
// the binary (2.5 MB to 9 MB stripped), so it is built in only with
// "go install -tags metrics ./tools/fcrecv"; without it -metrics fails
// and says so. (fclocator and fcbroker, daemons, always have it.)
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
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcrecv -n NAME [-reply TEXT] [-count N] [-delay D] [-max-print N] [-metrics ADDR]"

func main() {
	// A closed standard output must fail the write, not kill the process
	// with its name still attached.
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcrecv", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcrecv", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	name := fs.String("n", "", "name to attach (required)")
	replyText := fs.String("reply", "", "reply with this text (default: echo the request)")
	count := fs.Int("count", 0, "exit after this many messages and proxies (0: run until signalled)")
	delay := fs.Duration("delay", 0, "wait this long before each reply")
	maxPrint := fs.Int("max-print", 256, "print at most this many bytes of each message, and how many more there were (0: all)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port, port 0 picks one); "+metricsBuild)
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	switch {
	case *name == "" || fs.NArg() > 0:
		return errors.New(usage)
	case *count < 0:
		return fmt.Errorf("-count %d: must be 0 or more", *count)
	case *delay < 0:
		return fmt.Errorf("-delay %v: must be 0 or more", *delay)
	case *maxPrint < 0:
		return fmt.Errorf("-max-print %d: must be 0 or more", *maxPrint)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stdout = cli.Writer(ctx, stdout) // a signal ends a write to a pipe nobody reads
	opts, metricsURL, stopMetrics, err := channelMetrics(*metricsAddr)
	if err != nil {
		return err
	}
	defer stopMetrics()
	ch, err := simpl.Attach(*name, opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := fmt.Fprintf(stdout, "attached %s pid %d\n", show.Name(*name), os.Getpid()); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if metricsURL != "" {
		if _, err := fmt.Fprintf(stdout, "metrics %s\n", metricsURL); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	for n := 0; *count == 0 || n < *count; n++ {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // signalled: detach and exit cleanly
			}
			return err
		}
		if msg.Proxy() > 0 {
			if _, err := fmt.Fprintf(stdout, "proxy %d\n", msg.Proxy()); err != nil {
				if ctx.Err() != nil {
					return nil // signalled while writing
				}
				return fmt.Errorf("writing output: %w", err)
			}
			continue
		}
		who, pid := msg.Sender()
		_, werr := fmt.Fprintf(stdout, "message from %s pid %d: %s\n", show.Name(who), pid, show.Cut(msg.Data(), *maxPrint))
		if werr == nil && *delay > 0 {
			t := time.NewTimer(*delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil // signalled: Close fails the request for its sender
			}
		}
		reply := msg.Data()
		if isSet(fs, "reply") {
			reply = []byte(*replyText)
		}
		if err := msg.Reply(reply); err != nil && werr == nil {
			_, werr = fmt.Fprintf(stdout, "reply to %s failed: %s\n", show.Name(who), cli.Message("fcrecv", err))
		}
		if werr != nil && ctx.Err() != nil {
			return nil // signalled while writing: detach and exit cleanly
		}
		if werr != nil {
			return fmt.Errorf("writing output: %w", werr)
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
