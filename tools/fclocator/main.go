// Command fclocator is gosimpl's name-locator daemon, and its client for
// the shell.
//
//	fclocator [-n NAME] [-metrics ADDR]  serve: attach NAME (FCLOCATOR) and answer
//	fclocator -locate NAME               print NAME's owner
//	fclocator -list [PATTERN]            print the live names (matching PATTERN)
//	fclocator -watch PATTERN [-count N]  print names as they appear and disappear
//
// The daemon watches $FIFO_PATH (or /var/tmp) and answers locate, list and
// watch requests sent with Send/Reply (see docs/locator.md); it hears a name
// disappear when its owner detaches, exits or is killed. The directory stays
// the source of truth: programs find each other without the daemon, which
// adds watching and metadata. SIGINT, SIGTERM and SIGHUP detach and exit 0.
//
// -metrics ADDR serves Prometheus metrics over HTTP at ADDR (host:port;
// port 0 picks a free one) under /metrics: the locator's simpl_locator_*
// (live names, events by kind, held watches), its channel's simpl_*
// metrics (docs/metrics.md), and the Go runtime's and the process's. The
// line after "... watching DIR" is then "metrics http://HOST:PORT/metrics".
//
// Each name prints as "NAME pid PID uid UID transport T since RFC3339", each
// event as "appeared ..." or "disappeared ..." followed by the same fields
// ("(resync)" at the end for a change learnt from a snapshot: at the start of
// the watch, or after the daemon restarted).
//
// With no daemon running, -locate and -list read the FIFO directory
// themselves and print the same. A watch needs the daemon and outlives its
// restarts: while it cannot reach it, it says so once on stderr,
// "fclocator: locator NAME unreachable (CAUSE); waiting for it to return",
// and "fclocator: locator NAME is back; resyncing" when it is, followed by
// what changed meanwhile as "(resync)" events. -count counts only
// appeared and disappeared events.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/locator/locatorprom"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/climetrics"
)

const usage = "usage: fclocator [-n NAME] [-metrics ADDR] | -locate NAME | -list [PATTERN] | -watch PATTERN [-count N]"

func main() {
	signal.Ignore(syscall.SIGPIPE)
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fclocator:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fclocator", flag.ContinueOnError)
	name := fs.String("n", locator.DefaultName, "the locator's name")
	locate := fs.String("locate", "", "print this name's owner")
	list := fs.Bool("list", false, "print the live names, matching the pattern argument if given")
	watch := fs.String("watch", "", "print the names matching this pattern as they come and go")
	count := fs.Int("count", 0, "with -watch: exit after this many events (0: until signalled)")
	metricsAddr := fs.String("metrics", "", "when serving: Prometheus metrics at http://ADDR/metrics (host:port, port 0 picks one)")
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{*locate != "", *list, *watch != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes > 1:
		return fmt.Errorf("-locate, -list and -watch exclude each other; %s", usage)
	case fs.NArg() > 1 || (fs.NArg() == 1 && !*list):
		return fmt.Errorf("unexpected arguments %q; %s", fs.Args(), usage)
	case *count < 0:
		return fmt.Errorf("-count must be 0 or more; %s", usage)
	case modes > 0 && *metricsAddr != "":
		return fmt.Errorf("-metrics is for the daemon, not with -locate, -list or -watch; %s", usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if modes == 0 {
		return serve(ctx, *name, *metricsAddr, stdout)
	}

	ch, err := simpl.Attach(fmt.Sprintf("FCLOC_%d", os.Getpid()))
	if err != nil {
		return err
	}
	defer ch.Close()
	c := locator.NewClient(ch, *name)
	switch {
	case *locate != "":
		info, err := c.Locate(ctx, *locate)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, format(info))
		return err
	case *list:
		infos, err := c.List(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		for _, info := range infos {
			if _, err := fmt.Fprintln(stdout, format(info)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := locator.CheckPattern(*watch); err != nil {
		return err
	}
	w := c.Watch(*watch)
	for n := 0; *count == 0 || n < *count; {
		ev, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // signalled
			}
			return err
		}
		// The watch's own news goes to stderr, and does not count.
		switch ev.Kind {
		case locator.Lost:
			fmt.Fprintf(os.Stderr, "fclocator: locator %s unreachable (%v); waiting for it to return\n", *name, ev.Err)
			continue
		case locator.Restored:
			fmt.Fprintf(os.Stderr, "fclocator: locator %s is back; resyncing\n", *name)
			continue
		}
		n++
		line := ev.Kind.String() + " " + format(ev.Info)
		if ev.Resync {
			line += " (resync)"
		}
		if _, err := fmt.Fprintln(stdout, line); err != nil {
			return err
		}
	}
	return nil
}

// serve runs the daemon until signalled.
func serve(ctx context.Context, name, metricsAddr string, stdout io.Writer) error {
	w, err := locator.NewWatcher("")
	if err != nil {
		return err
	}
	defer w.Close()
	opts, metricsURL, stopMetrics, err := climetrics.ChannelMetrics(metricsAddr, locatorprom.NewCollector(w))
	if err != nil {
		return err
	}
	defer stopMetrics()
	ch, err := simpl.Attach(name, opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	if _, err := fmt.Fprintf(stdout, "fclocator: %s watching %s\n", name, w.Dir()); err != nil {
		return err
	}
	if metricsURL != "" {
		if _, err := fmt.Fprintf(stdout, "metrics %s\n", metricsURL); err != nil {
			return err
		}
	}
	if err := locator.Serve(ctx, ch, w); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func format(i locator.Info) string {
	return fmt.Sprintf("%s pid %d uid %d transport %s since %s",
		i.Name, i.PID, i.UID, i.Transport, i.Since.Format(time.RFC3339))
}
