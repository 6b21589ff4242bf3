// Command fcsub subscribes to topics at the publish/subscribe broker
// (fcbroker) and prints their messages as they come.
//
//	fcsub [-b BROKER] [-n NAME] [-count N] [-latest] [-queue N] [-seq] [-wait D] PATTERN
//	fcsub [-b BROKER] [-wait D] -list [-json]
//
// PATTERN is a topic in which a level may be "+" (any one level) or, last,
// "#" (any levels): plant/+/temp, plant/# (docs/pubsub.md). Each message
// prints as "TOPIC: TEXT" ("TOPIC SEQ: TEXT" with -seq), binary data as
// hex:... and an empty message as (empty), as fcrecv shows them. Other
// lines start with "# ", which no topic does: "# subscribed PATTERN, queue
// of N messages" once the subscription is open, and "# dropped N (total
// T)" before the next message when the broker had to drop N messages for
// this subscriber because it read too slowly (its queue, -queue, was
// full).
//
// -latest keeps only the newest message of each topic (for state, such
// as set points: a slow reader gets current values, not a backlog) and
// starts with the current value of every matching topic. It says "#
// subscribed PATTERN, latest value of up to N topics", and "# skipped N
// older values (total T)" when newer values of their topics replaced N
// messages before it read them (or, with more than N topics waiting, the
// broker dropped some: it counts both alike). -count exits 0
// after N messages. SIGINT, SIGTERM and SIGHUP unsubscribe, detach and
// exit 0 (waiting at most a second for the broker to take the
// unsubscription; one that does not answer drops the subscription when
// it finds fcsub gone). If the broker goes away the subscription ends: fcsub says so
// and exits 1. When standard output goes away (fcsub | head) it
// unsubscribes, detaches and exits 1.
//
// -list prints the broker's subscriptions, one row each, instead of
// subscribing: ID, PATTERN, MODE (queue or latest), the subscriber's PID
// (HOST:PID for one on another host, which the broker drops when its
// process or its host's gateway goes: docs/pubsub.md),
// QUEUE (its size), QUEUED (messages waiting), DELIVERED, DROPPED, and
// WAITING (whether a Next is held at the broker). With -json it prints
// one JSON object a subscription instead, a line each: id, pattern, mode,
// pid (0 for a remote subscriber), host and host_pid (a remote
// subscriber's; absent for a local one), queue, queued, delivered,
// dropped, waiting.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcsub [-b BROKER] [-n NAME] [-count N] [-latest] [-queue N] [-seq] [-wait D] (PATTERN | -t PATTERN) | -list [-b BROKER] [-wait D] [-json]"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fcsub", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcsub", flag.ContinueOnError)
	broker := fs.String("b", pubsub.DefaultBroker, "the broker's name")
	name := fs.String("n", "", "name to attach (default fcsub_PID)")
	pattern := fs.String("t", "", "topic pattern to subscribe to (or give it as the argument, as fclocator takes its pattern)")
	count := fs.Int("count", 0, "exit after this many messages (0: until signalled)")
	latest := fs.Bool("latest", false, "keep only the newest message of each topic, and start with the current ones")
	queue := fs.Int("queue", 0, "the queue's size in messages (0: the broker's default)")
	seq := fs.Bool("seq", false, "print each message's sequence number after its topic")
	wait := fs.Duration("wait", 0, "wait up to this long for the broker to attach (0: it must exist now)")
	list := fs.Bool("list", false, "print the broker's subscriptions instead of subscribing")
	asJSON := fs.Bool("json", false, "with -list: one JSON object per subscription, a line each, instead of the table")
	operands, help, err := cli.ParseOperands(fs, args, usage, stdout)
	if help || err != nil {
		return err
	}
	switch {
	case len(operands) == 1 && *pattern == "":
		*pattern = operands[0]
	case len(operands) > 0:
		return fmt.Errorf("one pattern, as the argument or with -t; %s", usage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case *list && *pattern != "":
		return fmt.Errorf("-list takes no pattern; %s", usage)
	case *list && (set["count"] || set["latest"] || set["queue"] || set["seq"]):
		return fmt.Errorf("-count, -latest, -queue and -seq are for a subscription, not -list; %s", usage)
	case *asJSON && !*list:
		return fmt.Errorf("-json is for -list; %s", usage)
	case *pattern == "" && !*list:
		return errors.New(usage)
	case *count < 0:
		return fmt.Errorf("-count %d: must be 0 or more", *count)
	case *queue < 0:
		return fmt.Errorf("-queue %d: must be 0 or more", *queue)
	case *wait < 0:
		return fmt.Errorf("-wait %v: must be 0 or more", *wait)
	}
	if !*list {
		if err := pubsub.CheckPattern(*pattern); err != nil {
			return err
		}
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	if *name == "" {
		*name = cli.OwnName("fcsub_")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stdout = cli.Writer(ctx, stdout) // a signal ends a write to a pipe nobody reads
	ch, err := simpl.Attach(*name)
	if err != nil {
		return err
	}
	defer ch.Close()
	if *list {
		return listSubs(ctx, ch, *broker, *wait, *asJSON, stdout)
	}
	opts := []pubsub.SubscribeOption{pubsub.WithQueue(*queue)}
	if *latest {
		opts = append(opts, pubsub.WithLatest())
	}
	if err := waitBroker(ctx, ch, *broker, *wait); err != nil {
		if ctx.Err() != nil {
			return nil // signalled while waiting: detach, exit 0
		}
		return err
	}
	sub, err := pubsub.Subscribe(ctx, ch, *broker, *pattern, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil // signalled while subscribing
		}
		return cli.BrokerError(*broker, pubsub.DefaultBroker, *wait, err)
	}
	defer func() {
		// A broker that does not answer in a second (stopped, or swamped)
		// does not hold up the exit: it drops the subscription when it
		// finds this process gone.
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		sub.Unsubscribe(uctx)
	}()
	out := func(format string, a ...any) error {
		if _, err := fmt.Fprintf(stdout, format, a...); err != nil && ctx.Err() == nil {
			return fmt.Errorf("writing output: %w", err)
		}
		return nil // written, or signalled: the next Next says so
	}
	if *latest {
		err = out("# subscribed %s, latest value of up to %d topics\n", show.Name(*pattern), sub.QueueSize())
	} else {
		err = out("# subscribed %s, queue of %d messages\n", show.Name(*pattern), sub.QueueSize())
	}
	if err != nil {
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
			what := "dropped %d (total %d)"
			if *latest {
				what = "skipped %d older values (total %d)"
			}
			if err := out("# "+what+"\n", d-dropped, d); err != nil {
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

// waitBroker waits up to wait for broker to be attached.
func waitBroker(ctx context.Context, ch *simpl.Channel, broker string, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	conn, err := cli.Find(ctx, broker, wait, ch.Locate, ch.WaitFor)
	if err != nil {
		return cli.BrokerError(broker, pubsub.DefaultBroker, wait, err)
	}
	return conn.Close()
}

// subJSON is a subscription as -list -json prints it.
type subJSON struct {
	ID        uint64 `json:"id"`
	Pattern   string `json:"pattern"`
	Mode      string `json:"mode"`
	PID       int    `json:"pid"`
	Host      string `json:"host,omitempty"`
	HostPID   int    `json:"host_pid,omitempty"`
	Queue     int    `json:"queue"`
	Queued    int    `json:"queued"`
	Delivered uint64 `json:"delivered"`
	Dropped   uint64 `json:"dropped"`
	Waiting   bool   `json:"waiting"`
}

// listSubs prints broker's subscriptions as a table, or as JSON lines.
func listSubs(ctx context.Context, ch *simpl.Channel, broker string, wait time.Duration, asJSON bool, stdout io.Writer) error {
	if err := waitBroker(ctx, ch, broker, wait); err != nil {
		return err
	}
	st, err := pubsub.BrokerStats(ctx, ch, broker)
	if err != nil {
		return cli.BrokerError(broker, pubsub.DefaultBroker, wait, err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, s := range st.Subscriptions {
			if err := enc.Encode(subJSON{s.ID, s.Pattern, string(s.Mode), s.PID, s.Host, s.HostPID,
				s.Size, s.Queued, s.Delivered, s.Dropped, s.Waiting}); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPATTERN\tMODE\tPID\tQUEUE\tQUEUED\tDELIVERED\tDROPPED\tWAITING")
	for _, s := range st.Subscriptions {
		waiting := "no"
		if s.Waiting {
			waiting = "yes"
		}
		pid := strconv.Itoa(s.PID)
		if s.Host != "" {
			pid = show.Name(s.Host) + ":" + strconv.Itoa(s.HostPID) // a remote subscriber: its host and pid there
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n",
			s.ID, show.Name(s.Pattern), s.Mode, pid, s.Size, s.Queued, s.Delivered, s.Dropped, waiting)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	return nil
}
