// Command fcshow lists the names attached in the FIFO directory
// ($FIFO_PATH, or /var/tmp), as a table: each name, its owner's pid, its
// STATE, the user that owns its FIFO (UID), the transport its receiver
// listens on (TRANSPORT: shm, or fifo alone) and when it attached (SINCE,
// RFC 3339). STATE is alive, dead (the process is gone), or forged: the
// process runs, but as another user than the FIFO's owner, so the entry
// does not hold the name (someone else made the FIFO to squat it).
//
//	fcshow [-clean] [-json]
//
// -clean first removes the FIFOs of owners that are dead, and the System V
// segments of this user that FIFO-transport senders left when they were
// killed while making one (see fifo.ReclaimSegments); it prints how many
// FIFOs it removed, and how many segments when there were any. -json
// prints one JSON object per line instead: {"removed_fifos":N,
// "removed_segments":N} for -clean, then one per name with the table's
// columns ("name", "pid", "state", "uid", "transport", "since").
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/gosimpl/gosimpl/internal/transport/fifo"
	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcshow [-clean] [-json]"

const columns = `columns:
  NAME PID     the name and the pid in its FIFO's file name
  STATE        alive; dead (fcshow -clean removes its FIFOs); or forged: the
               pid runs as another user than the FIFO's owner, so the FIFO
               does not hold the name and senders ignore it
  UID          the user that owns the FIFO
  TRANSPORT    shm (the receiver listens on shared memory) or fifo
  SINCE        when the FIFO was made
`

func main() {
	cli.Exit("fcshow", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcshow", flag.ContinueOnError)
	clean := fs.Bool("clean", false, "remove the FIFOs of dead owners, and segments leaked by killed senders, first")
	asJSON := fs.Bool("json", false, "one JSON object per line instead of the table")
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	if help, err := cli.ParseMore(fs, args, usage, stdout, columns); help || err != nil {
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
	enc := json.NewEncoder(stdout)
	if *clean {
		n, err := reg.Reap("")
		if err != nil {
			return err
		}
		segs, serr := fifo.ReclaimSegments()
		if *asJSON {
			if err := enc.Encode(cleaned{n, segs}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(stdout, "removed %d stale FIFOs\n", n)
			if segs > 0 {
				fmt.Fprintf(stdout, "removed %d stale System V segments\n", segs)
			}
		}
		if serr != nil {
			return serr
		}
	}
	names, err := reg.List()
	if err != nil {
		return err
	}
	// Unreadable, the socket table only costs the TRANSPORT column.
	lis, lerr := shm.ReadListeners()
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "NAME\tPID\tSTATE\tUID\tTRANSPORT\tSINCE")
	}
	for _, e := range names {
		state, transport := "alive", "fifo"
		switch {
		case e.Forged:
			state, transport = "forged", "-"
		case !e.Alive:
			state, transport = "dead", "-"
		case lerr != nil:
			transport = "?"
		case lis.Has(reg.Dir(), e.Name, e.PID):
			transport = "shm"
		}
		if *asJSON {
			if err := enc.Encode(entry{e.Name, e.PID, state, e.UID, transport, e.Created}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", show.Name(e.Name), e.PID, state, e.UID, transport, e.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

// cleaned is what -clean -json prints.
type cleaned struct {
	FIFOs    int `json:"removed_fifos"`
	Segments int `json:"removed_segments"`
}

// entry is a name as -json prints it.
type entry struct {
	Name      string    `json:"name"`
	PID       int       `json:"pid"`
	State     string    `json:"state"`
	UID       int       `json:"uid"`
	Transport string    `json:"transport"`
	Since     time.Time `json:"since"`
}
