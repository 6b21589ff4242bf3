package cli

import (
	"os"

	"golang.org/x/sys/unix"
)

// IsTerminal tells whether f is a terminal, where progress lines are for
// a person to read.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
