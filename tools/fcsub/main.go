// Command fcsub subscribes to topics at the publish/subscribe broker
// (fcbroker) and prints their messages as they come.
//
//	fcsub [-b BROKER] [-n NAME] -t PATTERN [-count N] [-latest] [-queue N] [-seq] [-wait D]
//
// PATTERN is a topic in which a level may be "+" (any one level) or, last,
// "#" (any levels): plant/+/temp, plant/# (docs/pubsub.md). Each message
// prints as "TOPIC: TEXT" ("TOPIC SEQ: TEXT" with -seq), binary data as
// hex:... and an empty message as (empty), as fcrecv shows them. Other
// lines start with "# ", which no topic does: "# subscribed PATTERN queue
// N" once the subscription is open, and "# dropped N (total T)" before the
// next message when the broker had to drop N messages for this subscriber
// because it read too slowly (its queue, -queue, was full).
//
// -latest keeps only the newest message of each topic (for state, such
// as set points: a slow reader gets current values, not a backlog) and
// starts with the current value of every matching topic. -count exits 0
// after N messages. SIGINT, SIGTERM and SIGHUP unsubscribe, detach and
// exit 0. If the broker goes away the subscription ends: fcsub says so
// and exits 1. When standard output goes away (fcsub | head) it
// unsubscribes, detaches and exits 1.
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
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcsub [-b BROKER] [-n NAME] -t PATTERN [-count N] [-latest] [-queue N] [-seq] [-wait D]"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcsub", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcsub", flag.ContinueOnError)
	broker := fs.String("b", pubsub.DefaultBroker, "the broker's name")
	name := fs.String("n", "", "name to attach (default fcsub_PID)")
	pattern := fs.String("t", "", "topic pattern to subscribe to (required)")
	count := fs.Int("count", 0, "exit after this many messages (0: until signalled)")
	latest := fs.Bool("latest", false, "keep only the newest message of each topic, and start with the current ones")
	queue := fs.Int("queue", 0, "the queue's size in messages (0: the broker's default)")
	seq := fs.Bool("seq", false, "print each message's sequence number after its topic")
	wait := fs.Duration("wait", 0, "wait up to this long for the broker to attach (0: it must exist now)")
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	switch {
	case *pattern == "" || fs.NArg() > 0:
		return errors.New(usage)
	case *count < 0:
		return fmt.Errorf("-count %d: must be 0 or more", *count)
	case *queue < 0:
		return fmt.Errorf("-queue %d: must be 0 or more", *queue)
	case *wait < 0:
		return fmt.Errorf("-wait %v: must be 0 or more", *wait)
	}
	if err := pubsub.CheckPattern(*pattern); err != nil {
		return err
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	if *name == "" {
		*name = fmt.Sprintf("fcsub_%d", os.Getpid())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	opts := []pubsub.SubscribeOption{pubsub.WithQueue(*queue)}
	if *latest {
		opts = append(opts, pubsub.WithLatest())
	}
	sub, err := cli.Retry(ctx, *broker, *wait, func() (*pubsub.Subscription, error) {
		return pubsub.Subscribe(ctx, ch, *broker, *pattern, opts...)
	})
	if err != nil {
		return cli.BrokerError(*broker, *wait, err)
	}
	defer sub.Close()
	out := func(format string, a ...any) error {
		if _, err := fmt.Fprintf(stdout, format, a...); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	if err := out("# subscribed %s queue %d\n", *pattern, sub.QueueSize()); err != nil {
		return err
	}
	var dropped uint64
	for n := 0; *count == 0 || n < *count; n++ {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // signalled: unsubscribe, detach, exit 0
			}
			if errors.Is(err, simpl.ErrPeerGone) {
				return fmt.Errorf("subscription ended: broker %s gone", *broker)
			}
			return err
		}
		if d := sub.Dropped(); d > dropped {
			if err := out("# dropped %d (total %d)\n", d-dropped, d); err != nil {
				return err
			}
			dropped = d
		}
		if *seq {
			err = out("%s %d: %s\n", show.Name(m.Topic), m.Seq, show.Bytes(m.Data))
		} else {
			err = out("%s: %s\n", show.Name(m.Topic), show.Bytes(m.Data))
		}
		if err != nil {
			return err
		}
	}
	return nil
}
