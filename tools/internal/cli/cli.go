// Package cli holds what the commands share: parsing flags, waiting for
// a name, reading lines. It imports nothing of gosimpl above package
// transport, so that commands that only read the registry (fcshow,
// fcslay) link no Channel; -metrics is package climetrics.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Parse parses args with fs. On -h it prints usage and the flags to stdout
// and reports help; a bad flag is an error of one line that ends with
// usage. fs prints nothing itself.
func Parse(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) (help bool, err error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return true, nil
		}
		return false, fmt.Errorf("%v; %s", err, usage)
	}
	return false, nil
}
