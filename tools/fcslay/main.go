// Command fcslay stops the process that attached a name by sending it
// SIGTERM.
//
//	fcslay NAME
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

const usage = "usage: fcslay NAME"

func main() {
	cli.Exit("fcslay", run(os.Args[1:], os.Stdout))
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcslay", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by main
	if help, err := cli.Parse(fs, args, usage, stdout); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	if err := cli.CheckFIFODir(); err != nil {
		return err
	}
	reg, err := naming.Open("")
	if err != nil {
		return err
	}
	e, err := reg.Lookup(fs.Arg(0))
	if err != nil {
		return err
	}
	p, err := os.FindProcess(e.PID)
	if err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal %s (pid %d): %w", e.Name, e.PID, err)
	}
	fmt.Fprintf(stdout, "sent SIGTERM to %s (pid %d)\n", e.Name, e.PID)
	return nil
}
