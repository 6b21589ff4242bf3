package cli

import (
	"flag"
	"io"
)

// ParseOperands is Parse for a command whose operands (a name, a pattern)
// may come before, between or after its flags, as in
// "fclocator -watch 'SRV*' -count 3": it parses the flags wherever they
// are and returns the operands in order. After "--" everything is an
// operand.
func ParseOperands(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) (operands []string, help bool, err error) {
	for {
		if help, err := Parse(fs, args, usage, stdout); help || err != nil {
			return nil, help, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, false, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(operands, rest...), false, nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}
