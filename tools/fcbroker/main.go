// Command fcbroker is gosimpl's publish/subscribe broker.
//
//	fcbroker [-n NAME] [-metrics ADDR] [-max-topics N] [-max-data B] [-max-queue-bytes B] [-max-queued-bytes B] [-lease D]
//
// It attaches NAME (FCBROKER) and serves publishers (fcpub,
// pubsub.Publisher) and subscribers (fcsub, pubsub.Subscribe): see
// docs/pubsub.md. It prints "attached NAME pid PID" once ready. SIGINT,
// SIGTERM and SIGHUP answer every waiting subscriber (its subscription
// ended), detach and exit 0.
//
// -metrics ADDR serves Prometheus metrics over HTTP at ADDR (host:port;
// port 0 picks a free one) under /metrics: the broker's simpl_pubsub_*
// metrics (published, delivered and dropped per topic, subscribers,
// queued messages), its channel's simpl_* metrics (docs/metrics.md), and
// the Go runtime's and the process's. The line after
// "attached ..." is then "metrics http://HOST:PORT/metrics", the address
// actually bound.
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
	"github.com/gosimpl/gosimpl/simpl/pubsub/pubsubprom"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/climetrics"
)

const usage = "usage: fcbroker [-n NAME] [-metrics ADDR] [-max-topics N] [-max-data B] [-max-queue-bytes B] [-max-queued-bytes B] [-lease D]"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcbroker", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcbroker", flag.ContinueOnError)
	name := fs.String("n", pubsub.DefaultBroker, "name to attach")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port, port 0 picks one)")
	maxTopics := fs.Int("max-topics", pubsub.DefaultMaxTopics, "most topics kept; a publish to one more fails")
	maxData := fs.Int("max-data", pubsub.DefaultMaxData, "largest message data, in bytes")
	queueBytes := fs.Int64("max-queue-bytes", pubsub.DefaultMaxQueueBytes, "most bytes of data one subscription's queue holds (its oldest go first)")
	queuedBytes := fs.Int64("max-queued-bytes", pubsub.DefaultMaxQueuedBytes, "most bytes of data every queue holds together (a message counted in each queue)")
	lease := fs.Duration("lease", pubsub.DefaultLease, "a subscription without a waiting Next for this long ends (unless it asked for its own lease)")
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q; %s", fs.Args(), usage)
	case *maxTopics < 1:
		return fmt.Errorf("-max-topics %d: must be 1 or more", *maxTopics)
	case *maxData < 0 || *maxData > 1<<30:
		return fmt.Errorf("-max-data %d: must be 0 to %d (1 GiB)", *maxData, 1<<30)
	case *lease <= 0:
		return fmt.Errorf("-lease %v: must be more than 0", *lease)
	case *queueBytes < 1 || *queuedBytes < 1:
		return fmt.Errorf("-max-queue-bytes %d, -max-queued-bytes %d: must be 1 or more", *queueBytes, *queuedBytes)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	b := pubsub.NewBroker(pubsub.WithMaxTopics(*maxTopics), pubsub.WithMaxData(*maxData), pubsub.WithDefaultLease(*lease),
		pubsub.WithMaxQueueBytes(*queueBytes), pubsub.WithMaxQueuedBytes(*queuedBytes))
	opts := []simpl.Option{simpl.WithMaxMessage(*maxData + pubsub.MaxTopicLen + 1024)}
	mopts, metricsURL, stopMetrics, err := climetrics.ChannelMetrics(*metricsAddr, pubsubprom.NewCollector(b))
	if err != nil {
		return err
	}
	defer stopMetrics()
	opts = append(opts, mopts...)
	ch, err := simpl.Attach(*name, opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := fmt.Fprintf(stdout, "attached %s pid %d\n", *name, os.Getpid()); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if metricsURL != "" {
		if _, err := fmt.Fprintf(stdout, "metrics %s\n", metricsURL); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	if err := b.Serve(ctx, ch); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
