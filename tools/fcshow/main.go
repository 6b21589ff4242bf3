// Command fcshow lists the names attached in the FIFO directory
// ($FIFO_PATH, or /var/tmp), as a table: each name, its owner's pid,
// whether that process is alive, the user that attached it (UID) and when
// (SINCE, RFC 3339).
//
//	fcshow [-clean]
//
// -clean first removes the FIFOs of owners that are dead, and the System V
// segments of this user that FIFO-transport senders left when they were
// killed while making one (see fifo.ReclaimSegments); it prints how many
// FIFOs it removed, and how many segments when there were any.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/internal/transport/fifo"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcshow [-clean]"

func main() {
	cli.Exit("fcshow", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcshow", flag.ContinueOnError)
	clean := fs.Bool("clean", false, "remove the FIFOs of dead owners, and segments leaked by killed senders, first")
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	reg, err := naming.Open("")
	if err != nil {
		return err
	}
	if *clean {
		n, err := reg.Reap("")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d stale FIFOs\n", n)
		segs, err := fifo.ReclaimSegments()
		if segs > 0 {
			fmt.Fprintf(stdout, "removed %d stale System V segments\n", segs)
		}
		if err != nil {
			return err
		}
	}
	names, err := reg.List()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tSTATE\tUID\tSINCE")
	for _, e := range names {
		state := "alive"
		if !e.Alive {
			state = "dead"
		}
		uid := "-"
		if n, err := sys.Owner(e.Path); err == nil {
			uid = strconv.Itoa(n)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", show.Name(e.Name), e.PID, state, uid, e.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}
