// Package cli holds what the commands share: parsing their flags, their
// -h, the one line that reports their failure, the names they attach
// for themselves (OwnName, IsOwnName), waiting for names and
// reading lines. It imports nothing of gosimpl above package transport,
// so that commands that only read the registry (fcshow, fcslay) link no
// Channel; -metrics is package climetrics.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/gosimpl/gosimpl/naming"
)

// Parse parses args with fs. On -h it prints usage, the flags and the
// environment variables the command reads (FIFO_PATH, GOSIMPL_TRANSPORT)
// to stdout and reports help; a bad flag is an error of one line that
// ends with usage. fs prints nothing itself. Flags whose usage starts with
// "internal:" are not shown: they are for the command's own child
// processes.
func Parse(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) (help bool, err error) {
	return parse(fs, args, usage, stdout, environment())
}

// ParseMore is Parse whose -h ends with more, a section saying what the
// command prints or refuses.
func ParseMore(fs *flag.FlagSet, args []string, usage string, stdout io.Writer, more string) (help bool, err error) {
	return parse(fs, args, usage, stdout, environment()+more)
}

// NATSHelp is the -h text of a command that reaches remote names
// straight over NATS when told (simpl/netdirect).
const NATSHelp = "  GOSIMPL_NATS\n    \tNATS servers (URLs, comma-separated) to reach other hosts' names through straight, without the host's gateway (also GOSIMPL_NATS_CREDS, _NKEY, _CA, _CERT, _KEY, _INSECURE: docs/network.md)\n"

// ParsePrivate is Parse for a command that runs its processes in a FIFO
// directory of its own (fcbench, fcsoak): its -h says that FIFO_PATH is
// not used, and ends with more.
func ParsePrivate(fs *flag.FlagSet, args []string, usage string, stdout io.Writer, more string) (help bool, err error) {
	return parse(fs, args, usage, stdout,
		"environment:\n  FIFO_PATH\n    \tnot used: each run makes a FIFO directory of its own and removes it\n"+more)
}

func parse(fs *flag.FlagSet, args []string, usage string, stdout io.Writer, env string) (help bool, err error) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fmt.Fprintln(stdout, "flags:")
			printFlags(fs, stdout)
			fmt.Fprint(stdout, env)
			return true, nil
		}
		return false, fmt.Errorf("%v; %s", err, usage)
	}
	return false, nil
}

// environment describes FIFO_PATH, with its value now and its default,
// and GOSIMPL_TRANSPORT.
func environment() string {
	now := "unset"
	if fifoPathSet() {
		now = "now " + naming.Dir()
	}
	return fmt.Sprintf("environment:\n"+
		"  FIFO_PATH\n    \tthe directory of the names' FIFOs (default %s; %s)\n"+
		"  GOSIMPL_TRANSPORT\n    \tfifo, shm or auto: how this process sends (default auto: shared memory to gosimpl receivers, FIFOs to C SIMPL ones)\n",
		naming.DefaultDir, now)
}

// printFlags prints fs's flags as flag.PrintDefaults does, without the
// internal ones, and without a "(default ...)" after a usage that already
// says what the default is.
func printFlags(fs *flag.FlagSet, w io.Writer) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, "internal:") {
			return
		}
		shown.Var(f.Value, f.Name, f.Usage)
		g := shown.Lookup(f.Name)
		g.DefValue = f.DefValue // Var took the value as it is now
		if strings.Contains(f.Usage, "(default") {
			g.DefValue = zeroString(f.Value)
		}
	})
	shown.SetOutput(w)
	shown.PrintDefaults()
}

// zeroString is the text of v's type's zero value, which PrintDefaults
// does not print as a default.
func zeroString(v flag.Value) string {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return v.String()
	}
	z, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	if !ok {
		return v.String()
	}
	return z.String()
}
