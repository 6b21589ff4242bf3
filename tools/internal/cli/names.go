package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ownPrefixes start the names the tools attach for themselves when not
// given one with -n: the prefix and their pid. fclocator -watch hides
// them (see IsOwnName).
var ownPrefixes = []string{"fcsend_", "fcpub_", "fcsub_", "FCLOC_"}

// OwnName is the name a tool attaches for itself when not given one:
// prefix, one of fcsend_, fcpub_, fcsub_ or FCLOC_, and this process's
// pid. It panics on another prefix, so that IsOwnName knows every one.
func OwnName(prefix string) string {
	for _, p := range ownPrefixes {
		if p == prefix {
			return fmt.Sprintf("%s%d", prefix, os.Getpid())
		}
	}
	panic("cli: OwnName: unknown prefix " + prefix)
}

// IsOwnName reports whether name, attached by pid, is one a tool or
// library picked for itself: a tool's OwnName, or the _PID_N that
// simpl.Attach("") picks. The pid in the name must be pid, so a name a
// person chose that only looks like one (fcsend_1 attached by another
// process) is not.
func IsOwnName(name string, pid int) bool {
	p := strconv.Itoa(pid)
	for _, prefix := range ownPrefixes {
		if name == prefix+p {
			return true
		}
	}
	n, ok := strings.CutPrefix(name, "_"+p+"_")
	if !ok || n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
