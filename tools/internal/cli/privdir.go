package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
)

// PrivateDir makes a private directory for this run, $TMPDIR/PREFIX-PID-*
// with PID this process's, after removing the stale ones runs killed
// with SIGKILL left (SweepStale): the pid in its name is what tells a
// later run whether its maker still lives.
func PrivateDir(prefix string) (string, error) {
	SweepStale(prefix)
	return os.MkdirTemp("", fmt.Sprintf("%s-%d-", prefix, os.Getpid()))
}

// SweepStale removes the directories $TMPDIR/PREFIX-PID-* of this user
// whose maker, PID, has exited and in which no file names a live process
// (NAME.PID: the FIFOs of a child still on its way out). A directory of a
// live maker, of another user, or not named so is left alone.
func SweepStale(prefix string) {
	tmp := os.TempDir()
	des, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, de := range des {
		rest, ok := strings.CutPrefix(de.Name(), prefix+"-")
		if !ok || !de.IsDir() {
			continue
		}
		digits, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(digits)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || sys.ProcessExists(pid) {
			continue
		}
		dir := filepath.Join(tmp, de.Name())
		if fi, err := os.Lstat(dir); err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != os.Geteuid() {
			continue
		}
		if !namesLive(dir) {
			os.RemoveAll(dir)
		}
	}
}

// namesLive tells whether a file in dir names a live process (NAME.PID)
// of the file's owner, or dir cannot be read. A file naming another
// user's process (as fcsoak -squat forges) is not that process's.
func namesLive(dir string) bool {
	des, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, de := range des {
		_, pid, ok := naming.ParseFIFO(de.Name())
		if !ok {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		uids, err := sys.ProcessUIDs(pid)
		owner := fi.Sys().(*syscall.Stat_t).Uid
		if err == nil && (uids[1] == owner || uids[3] == owner) {
			return true
		}
	}
	return false
}
