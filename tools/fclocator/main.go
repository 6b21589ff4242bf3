// Command fclocator is gosimpl's name-locator daemon, and its client for
// the shell.
//
//	fclocator [-n NAME] [-metrics ADDR]      serve: attach NAME (FCLOCATOR) and answer
//	fclocator -locate NAME                   a table of NAME's owner
//	fclocator -list [PATTERN]                a table of the live names (matching PATTERN)
//	fclocator -watch [PATTERN] [-count N]    names as they appear and disappear
//	fclocator -hosts (-list | -watch) ...    the same, on every host (HOST:NAME)
//
// The daemon watches $FIFO_PATH (or /var/tmp) and answers locate, list and
// watch requests sent with Send/Reply (see docs/locator.md); it hears a name
// disappear when its owner detaches, exits or is killed. The directory stays
// the source of truth: programs find each other without the daemon, which
// adds watching and metadata. SIGINT, SIGTERM and SIGHUP detach and exit 0.
//
// The name or pattern is an argument of its own, after the switch or
// anywhere among the flags (-watch 'SRV*' -count 3 and -count 3 -watch
// 'SRV*' are the same); -locate=NAME and -watch=PATTERN, the older forms,
// work too. A PATTERN is shell-style: * and ? and [...], quoted against the
// shell; without one, every name.
//
// -metrics ADDR serves Prometheus metrics over HTTP at ADDR (host:port;
// port 0 picks a free one) under /metrics: the locator's simpl_locator_*
// (live names, events by kind, held watches), its channel's simpl_*
// metrics (docs/metrics.md), and the Go runtime's and the process's. The
// line after "... watching DIR" is then "metrics http://HOST:PORT/metrics".
//
// -locate and -list print a table: NAME, PID, UID (of the owner), TRANSPORT
// (shm or fifo) and SINCE (when it was attached, RFC 3339). -list leaves out
// the name fclocator attached for itself to ask. -watch prints the same
// columns after TIME (when the watch heard of the event, RFC 3339 to the
// millisecond) and EVENT (appeared or disappeared), and " (resync)" after
// an event learnt from a snapshot: at the start of the watch, or after the
// daemon restarted. It leaves out the names the tools attach for
// themselves to do their work (fcsend_PID, fcpub_PID, fcsub_PID, FCLOC_PID)
// and those simpl.Attach("") picks (_PID_N); -all shows them. -json prints
// one JSON object per name or event instead, for programs.
//
// -hosts lists or watches the names on every host whose gateway (fcgate)
// this host's gateway hears from, this host's own included, each as
// HOST:NAME (the form a Send to it takes): it asks the local gateway,
// attached as _gosimpl_gw, and needs no locator daemon and no network
// settings. A PATTERN without a colon matches the NAME on every host
// ('SRV*'); with one, the whole HOST:NAME ('b:*'). A change on another host
// is seen within a second of it; the names of a host whose gateway stops
// disappear at once, and those of one killed or cut off within 2 s. With
// -json each object also has "host". The watch says on stderr when the
// gateway is not running or went away ("fclocator: no gateway _gosimpl_gw
// is running in DIR; start one with: fcgate &; waiting for it"), and when
// it is back, as for the daemon.
//
// With no daemon running, -locate and -list read the FIFO directory
// themselves and print the same. A watch needs the daemon and outlives its
// restarts. While it cannot reach it, it says so once on stderr, in one
// line with how to start one: "fclocator: no locator FCLOCATOR is running
// in DIR; start one with: fclocator &; waiting for it" when none is
// attached, "fclocator: locator FCLOCATOR unreachable (CAUSE); waiting for
// it to return (or start one with: fclocator &)" when it went away under
// the watch. When it answers, "fclocator: locator FCLOCATOR is running;
// resyncing" (or "is back; resyncing"), followed by what changed
// meanwhile as "(resync)" events. -count counts only the events printed.
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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/locator/locatorprom"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/climetrics"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fclocator [-n NAME] [-metrics ADDR] | [-n NAME] [-json] (-locate NAME | [-hosts] -list [PATTERN] | [-hosts] -watch [PATTERN] [-count N] [-all])"

func main() {
	// A closed standard output must fail the write, not kill the process
	// with its name still attached.
	signal.Ignore(syscall.SIGPIPE)
	cli.Exit("fclocator", run(os.Args[1:], os.Stdout, os.Stderr))
}

// mode is -locate, -list or -watch: a switch, whose operand (the name or
// the pattern) is an argument of its own. The older -locate=NAME and
// -watch=PATTERN set the operand too.
type mode struct {
	on      bool
	operand *string // from -MODE=OPERAND
}

func (m *mode) IsBoolFlag() bool { return true }
func (m *mode) String() string   { return "" }
func (m *mode) Set(s string) error {
	switch s {
	case "true":
		m.on = true
	case "false":
		m.on, m.operand = false, nil
	default:
		m.on, m.operand = true, &s
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fclocator", flag.ContinueOnError)
	var locate, list, watch mode
	name := fs.String("n", locator.DefaultName, "the locator's name: the one to attach, or to ask")
	fs.Var(&locate, "locate", "print a table of the owner of the name given as argument")
	fs.Var(&list, "list", "print a table of the live names, those matching the pattern argument if one is given")
	fs.Var(&watch, "watch", "print the names (matching the pattern argument, if one is given) as they come and go")
	count := fs.Int("count", 0, "with -watch: exit after this many events (0: until signalled)")
	all := fs.Bool("all", false, "with -watch: also the names tools attach for themselves (fcsend_PID, fcpub_PID, fcsub_PID, FCLOC_PID, _PID_N)")
	hosts := fs.Bool("hosts", false, "with -list or -watch: the names on every host (HOST:NAME), from this host's gateway (fcgate)")
	asJSON := fs.Bool("json", false, "with -locate, -list or -watch: one JSON object per line instead of the table")
	metricsAddr := fs.String("metrics", "", "when serving: Prometheus metrics at http://ADDR/metrics (host:port, port 0 picks one)")
	operands, help, err := cli.ParseOperands(fs, args, usage, stdout)
	if help || err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var m *mode
	modes := 0
	for _, x := range []*mode{&locate, &list, &watch} {
		if x.on {
			m = x
			modes++
		}
	}
	if m != nil && m.operand != nil {
		operands = append([]string{*m.operand}, operands...)
	}
	switch {
	case modes > 1:
		return fmt.Errorf("-locate, -list and -watch exclude each other; %s", usage)
	case locate.on && len(operands) == 0:
		return fmt.Errorf("-locate: which name? %s", usage)
	case (m == nil && len(operands) > 0) || len(operands) > 1:
		return fmt.Errorf("unexpected arguments %q; %s", operands, usage)
	case *count < 0:
		return fmt.Errorf("-count %d: must be 0 or more", *count)
	case !watch.on && (set["count"] || set["all"]):
		return fmt.Errorf("-count and -all are for -watch; %s", usage)
	case *hosts && !list.on && !watch.on:
		return fmt.Errorf("-hosts is for -list and -watch; %s", usage)
	case m != nil && *metricsAddr != "":
		return fmt.Errorf("-metrics is for the daemon, not with -locate, -list or -watch; %s", usage)
	case m == nil && *asJSON:
		return fmt.Errorf("-json is for -locate, -list and -watch, not for the daemon; %s", usage)
	}
	operand := ""
	if len(operands) == 1 {
		operand = operands[0]
	}
	if list.on || watch.on {
		if err := locator.CheckPattern(operand); err != nil {
			return err
		}
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stdout = cli.Writer(ctx, stdout) // a signal ends a write to a pipe nobody reads
	if m == nil {
		return serve(ctx, *name, *metricsAddr, stdout)
	}

	ch, err := simpl.Attach(cli.OwnName("FCLOC_"))
	if err != nil {
		return err
	}
	defer ch.Close()
	c := locator.NewClient(ch, *name)
	out := newPrinter(stdout, *asJSON)
	switch {
	case locate.on:
		if n, err := naming.Parse(operand); err == nil && !n.Local() {
			if local, err := naming.IsLocalHost(ctx, n.Host); err != nil {
				return err
			} else if !local {
				return locateRemote(ctx, c, n, out)
			}
			operand = n.Name // this host's name, written with its host
		}
		info, err := c.Locate(ctx, operand)
		if err != nil {
			return err
		}
		return out.infos([]locator.Info{info})
	case list.on:
		list := c.List
		if *hosts {
			list = c.ListHosts
		}
		infos, err := list(ctx, operand)
		if err != nil {
			return err
		}
		// Not the name this process attached to ask.
		mine := func(i locator.Info) bool { return localName(i.Name) == ch.Name() && i.PID == os.Getpid() }
		shown := infos[:0]
		for _, i := range infos {
			if !mine(i) {
				shown = append(shown, i)
			}
		}
		return out.infos(shown)
	}
	src := source{what: "locator", name: *name, start: "fclocator &", watch: c.Watch}
	if *name != locator.DefaultName {
		src.start = "fclocator -n " + *name + " &"
	}
	if *hosts {
		src = source{what: "gateway", name: locator.GatewayName, start: "fcgate &", watch: c.WatchHosts}
	}
	return follow(ctx, src, ch, operand, *count, *all, out, stderr)
}

// locateRemote prints the owner of n, a name on another host, as the
// names across hosts (the local gateway's) know it.
func locateRemote(ctx context.Context, c *locator.Client, n naming.Name, out *printer) error {
	full := n.Host + ":" + n.Name
	if strings.ContainsAny(full, "*?[\\") {
		return fmt.Errorf("-locate %s: a name on another host may not hold a pattern's characters (* ? [ \\)", show.Name(full))
	}
	infos, err := c.ListHosts(ctx, full)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		return fmt.Errorf("%s: %w", show.Name(full), simpl.ErrNotFound)
	}
	return out.infos(infos)
}

// localName is name without the host part a name across hosts has.
func localName(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// source is what a watch asks: the locator daemon, or the gateway for
// names across hosts.
type source struct {
	what, name string // "locator" or "gateway", and its SIMPL name
	start      string // the command that starts one
	watch      func(pattern string) *locator.Watch
}

// follow runs a watch on pattern until ctx ends or count events (0: no
// limit) were printed. Unless all, it leaves out the names tools and
// libraries pick for themselves. News of the watch itself (the daemon
// gone, back) goes to stderr.
func follow(ctx context.Context, src source, ch *simpl.Channel, pattern string, count int, all bool, out *printer, stderr io.Writer) error {
	what, name, start := src.what, src.name, src.start
	if err := out.watchHeader(); err != nil {
		return err
	}
	w := src.watch(pattern)
	defer w.Close() // its request in flight, if any
	absent := false // the last Lost found no locator attached
	for n := 0; count == 0 || n < count; {
		ev, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil // signalled
			}
			return err
		}
		switch ev.Kind {
		case locator.Lost:
			absent = errors.Is(ev.Err, simpl.ErrNotFound)
			switch {
			case absent:
				fmt.Fprintf(stderr, "fclocator: no %s %s is running in %s; start one with: %s; waiting for it\n", what, name, ch.Dir(), start)
			case errors.Is(ev.Err, locator.ErrUnresponsive):
				fmt.Fprintf(stderr, "fclocator: %s %s unreachable (%s); waiting for it to answer\n", what, name, cli.Message("fclocator", ev.Err))
			default:
				fmt.Fprintf(stderr, "fclocator: %s %s unreachable (%s); waiting for it to return (or start one with: %s)\n", what, name, cli.Message("fclocator", ev.Err), start)
			}
			continue
		case locator.Restored:
			if absent {
				fmt.Fprintf(stderr, "fclocator: %s %s is running; resyncing\n", what, name)
			} else {
				fmt.Fprintf(stderr, "fclocator: %s %s is back; resyncing\n", what, name)
			}
			continue
		}
		if !all && cli.IsOwnName(localName(ev.Info.Name), ev.Info.PID) {
			continue
		}
		n++
		if err := out.event(time.Now(), ev); err != nil {
			return err
		}
	}
	return nil
}

// printer prints names and events as tables, or as JSON lines.
type printer struct {
	w      io.Writer
	asJSON bool
}

func newPrinter(w io.Writer, asJSON bool) *printer { return &printer{w: w, asJSON: asJSON} }

// jsonInfo is a name as -json prints it.
type jsonInfo struct {
	Name      string    `json:"name"`
	Host      string    `json:"host,omitempty"` // with -hosts
	PID       int       `json:"pid"`
	UID       int       `json:"uid"`
	Transport string    `json:"transport"`
	Since     time.Time `json:"since"`
}

// jsonEvent is an event as -watch -json prints it.
type jsonEvent struct {
	Time  time.Time `json:"time"`
	Event string    `json:"event"`
	jsonInfo
	Resync bool `json:"resync,omitempty"`
}

func toJSON(i locator.Info) jsonInfo {
	return jsonInfo{Name: i.Name, Host: i.Host, PID: i.PID, UID: i.UID, Transport: i.Transport, Since: i.Since}
}

func (p *printer) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.w, "%s\n", b)
	return err
}

// infos prints names: a table with a header, or a JSON object each.
func (p *printer) infos(infos []locator.Info) error {
	if p.asJSON {
		for _, i := range infos {
			if err := p.line(toJSON(i)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tUID\tTRANSPORT\tSINCE")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", show.Name(i.Name), i.PID, i.UID, i.Transport, i.Since.Format(time.RFC3339))
	}
	return tw.Flush()
}

// A watch's table is printed a line at a time, as events come, so its
// columns have fixed widths (a longer value pushes the rest of its line
// right).
const (
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
	watchRow   = "%-*s  %-11s  %-16s  %-7s  %-5s  %-9s  %s%s\n"
)

func (p *printer) watchHeader() error {
	if p.asJSON {
		return nil
	}
	_, err := fmt.Fprintf(p.w, watchRow, len(time.Now().Format(timeLayout)), "TIME", "EVENT", "NAME", "PID", "UID", "TRANSPORT", "SINCE", "")
	return err
}

// event prints ev, heard of at t.
func (p *printer) event(t time.Time, ev locator.Event) error {
	if p.asJSON {
		return p.line(jsonEvent{Time: t, Event: ev.Kind.String(), jsonInfo: toJSON(ev.Info), Resync: ev.Resync})
	}
	note := ""
	if ev.Resync {
		note = " (resync)"
	}
	at := t.Format(timeLayout)
	i := ev.Info
	_, err := fmt.Fprintf(p.w, watchRow, len(at), at, ev.Kind, show.Name(i.Name),
		strconv.Itoa(i.PID), strconv.Itoa(i.UID), i.Transport, i.Since.Format(time.RFC3339), note)
	return err
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
