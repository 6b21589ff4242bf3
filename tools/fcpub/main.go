// Command fcpub publishes messages to a topic through the publish/subscribe
// broker (fcbroker).
//
//	fcpub [-b BROKER] [-n NAME] -t TOPIC [-m MESSAGE] [-wait D] [-q]
//
// With -m it publishes MESSAGE once; without, each line of standard input
// (without its newline), in order. It returns once the broker has queued
// each message for every matching subscriber, and prints for each
// "published TOPIC seq N", N its sequence number in the topic (what
// fcsub -seq shows); -q prints nothing. -wait
// lets it start before the broker has attached. Topics are levels
// separated by '/', such as plant/boiler/temp (docs/pubsub.md). Any
// failure exits 1 with a one-line cause. SIGINT, SIGTERM and SIGHUP stop
// it, detach and exit 0 with nothing on stderr: between messages, while
// it waits for input or for the broker (-wait), or during a publish,
// which is then abandoned (its message may or may not have been
// published; the messages before it were).
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
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcpub [-b BROKER] [-n NAME] -t TOPIC [-m MESSAGE] [-wait D] [-q]"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcpub", run(os.Args[1:], os.Stdin, os.Stdout))
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcpub", flag.ContinueOnError)
	broker := fs.String("b", pubsub.DefaultBroker, "the broker's name")
	name := fs.String("n", "", "name to attach (default fcpub_PID)")
	topic := fs.String("t", "", "topic to publish to (required)")
	msg := fs.String("m", "", "publish this message once (default: each line of standard input)")
	wait := fs.Duration("wait", 0, "wait up to this long for the broker to attach (0: it must exist now)")
	quiet := fs.Bool("q", false, "print nothing on success")
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	switch {
	case *topic == "" || fs.NArg() > 0:
		return errors.New(usage)
	case *wait < 0:
		return fmt.Errorf("-wait %v: must be 0 or more", *wait)
	}
	if err := pubsub.CheckTopic(*topic); err != nil {
		return err
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	if *name == "" {
		*name = cli.OwnName("fcpub_")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := publishAll(ctx, *broker, *name, *topic, *msg, isSet(fs, "m"), *wait, *quiet, stdin, stdout)
	if ctx.Err() != nil {
		return nil // signalled: detached, exit 0
	}
	return err
}

// publishAll attaches name and publishes to topic at broker: msg when
// once, else each line of stdin. A signal (ctx) ends it, abandoning the
// publish in progress, with an error that run does not report.
func publishAll(ctx context.Context, broker, name, topic, msg string, once bool, wait time.Duration, quiet bool, stdin io.Reader, stdout io.Writer) error {
	ch, err := simpl.Attach(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	conn, err := cli.Find(ctx, broker, wait, ch.Locate, ch.WaitFor)
	if err != nil {
		return cli.BrokerError(broker, pubsub.DefaultBroker, wait, err)
	}
	conn.Close() // the Publisher locates it again, and again after a restart
	pub := pubsub.NewPublisher(ch, broker)
	defer pub.Close()
	publish := func(data []byte) error {
		seq, err := pub.Publish(ctx, topic, data)
		if err != nil || quiet {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "published %s seq %d\n", show.Name(topic), seq); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil
	}
	if once {
		return publish([]byte(msg))
	}
	return cli.EachLine(ctx, stdin, publish)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
