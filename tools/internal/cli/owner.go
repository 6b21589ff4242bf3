package cli

import (
	"fmt"
	"os"
	"syscall"
)

// FileOwner is the uid of the user who owns path (a FIFO: the user that
// attached the name).
func FileOwner(path string) (int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no owner", path)
	}
	return int(sys.Uid), nil
}
