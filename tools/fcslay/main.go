// Command fcslay stops the process that attached a name by sending it
// SIGTERM, or another signal with -s.
//
//	fcslay [-s SIGNAL] NAME
//
// SIGNAL is a name (TERM, SIGKILL, hup) or a number. A name whose owner
// is dead (fcshow lists it so) has nobody to signal: fcslay says so, and
// that fcshow -clean removes the FIFOs it left behind. fcslay signals
// only a process that runs as the user owning the name's FIFO: an entry
// another user forged (fcshow lists it as forged) is refused, and so is a
// process whose uid no longer matches the FIFO's owner when it is signalled.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/gosimpl/gosimpl/tools/internal/show"
)

const usage = "usage: fcslay [-s SIGNAL] NAME"

const refusals = `refuses:
  a process whose uid is not the user owning NAME's FIFO: anyone can make
  NAME.PID for any pid in a shared directory; fcshow lists such an entry
  as forged, and fcslay never signals through it
`

func main() {
	cli.Exit("fcslay", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcslay", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	sigName := fs.String("s", "TERM", "the `SIGNAL` to send: a name (TERM, KILL, HUP, USR1, ...) or a number")
	if help, err := cli.ParseMore(fs, args, usage, stdout, refusals); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	sig, err := cli.ParseSignal(*sigName)
	if err != nil {
		return fmt.Errorf("-s: %w", err)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	reg, err := naming.Open("")
	if err != nil {
		return err
	}
	name := fs.Arg(0)
	if n, err := naming.Parse(name); err == nil && !n.Local() {
		if local, err := naming.IsLocalHost(context.Background(), n.Host); err != nil {
			return err
		} else if !local {
			return fmt.Errorf("%s is on host %s: fcslay signals processes of this host only (run it there)", show.Name(name), show.Name(n.Host))
		}
		name = n.Name // this host's name, written with its host
	}
	e, err := reg.Lookup(name)
	if errors.Is(err, naming.ErrNotFound) {
		return deadOwner(reg, name, err)
	}
	if err != nil {
		return err
	}
	// Lookup counts only an owner whose uid matches the FIFO's (root's
	// FIFO: a process that dropped root). Hold the process (a pidfd
	// signals it, never a later one with its pid) and check its age and
	// uid again, in case the pid changed hands meanwhile.
	// Without pidfds (an old kernel, a sandbox) the pid is signalled.
	signal := func(sig syscall.Signal) error {
		p, err := os.FindProcess(e.PID)
		if err != nil {
			return err
		}
		return p.Signal(sig)
	}
	pfd, err := sys.OpenPidfd(e.PID)
	switch {
	case err == nil:
		defer pfd.Close()
		signal = pfd.Signal
	case !errors.Is(err, sys.ErrNoPidfd):
		return fmt.Errorf("%s (pid %d): %w", show.Name(e.Name), e.PID, err)
	}
	// The process held is the one Lookup judged (no younger than the
	// FIFO), not a later one that took its pid in between.
	if !naming.AliveOwner(e.PID, e.Path, e.Created) {
		return fmt.Errorf("%s (pid %d) exited", show.Name(e.Name), e.PID)
	}
	uids, err := sys.ProcessUIDs(e.PID)
	if errors.Is(err, sys.ErrExited) {
		return fmt.Errorf("%s (pid %d) exited", show.Name(e.Name), e.PID)
	}
	if err == nil && e.UID != 0 && !slices.Contains(uids[:], uint32(e.UID)) {
		return fmt.Errorf("%s: refusing to signal pid %d: its uid is not %d, the owner of %s", show.Name(e.Name), e.PID, e.UID, e.Path)
	}
	if err := signal(sig); err != nil {
		return fmt.Errorf("%s to %s (pid %d): %w", cli.SignalName(sig), show.Name(e.Name), e.PID, err)
	}
	fmt.Fprintf(stdout, "sent %s to %s (pid %d)\n", cli.SignalName(sig), show.Name(e.Name), e.PID)
	return nil
}

// deadOwner explains why name, which no live process holds, cannot be
// signalled: it is not attached at all (err), or its owners died and
// left their FIFOs.
func deadOwner(reg *naming.Registry, name string, err error) error {
	all, lerr := reg.Entries(name)
	if lerr != nil || len(all) == 0 {
		return err
	}
	for _, e := range all {
		if e.Forged {
			return fmt.Errorf("%s: refusing to signal pid %d: its uid differs from uid %d, the owner of %s, which is forged", show.Name(name), e.PID, e.UID, e.Path)
		}
	}
	if len(all) > 1 {
		pids := make([]string, len(all))
		for i, e := range all {
			pids[i] = strconv.Itoa(e.PID)
		}
		return fmt.Errorf("%s: its owners (pids %s) are dead, nobody to signal; fcshow -clean removes the FIFOs they left", show.Name(name), strings.Join(pids, ", "))
	}
	return fmt.Errorf("%s: its owner (pid %d) is dead, nobody to signal; fcshow -clean removes the FIFOs it left", show.Name(name), all[0].PID)
}
