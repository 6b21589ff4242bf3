package main

import (
	"fmt"
	"github.com/gosimpl/gosimpl/internal/procfs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// fifoLeaks lists what is left in the FIFO directory.
func fifoLeaks(dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// shmDir is where POSIX shared memory objects live.
const shmDir = "/dev/shm"

// shmNames lists shmDir (nil if it cannot be read).
func shmNames() map[string]bool {
	des, err := os.ReadDir(shmDir)
	if err != nil {
		return nil
	}
	names := make(map[string]bool, len(des))
	for _, de := range des {
		names[de.Name()] = true
	}
	return names
}

// shmLeaks lists the entries of shmDir that were not there before and
// could be the children's: the machine is shared, so only names that
// mention gosimpl, SIMPL or fcsoak, or a child's pid, count. (gosimpl's
// shm transport uses memfds, which have no name there, so there should be
// none.)
func shmLeaks(before map[string]bool, pids map[int]bool) []string {
	var out []string
	for name := range shmNames() {
		if before[name] {
			continue
		}
		lower := strings.ToLower(name)
		ours := strings.Contains(lower, "simpl") || strings.Contains(lower, "soak")
		for _, f := range strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsDigit(r) }) {
			if pid, err := strconv.Atoi(f); err == nil && pids[pid] {
				ours = true
			}
		}
		if ours {
			out = append(out, filepath.Join(shmDir, name))
		}
	}
	return out
}

// sysvWait is how long sysvLeaks looks before it reports a segment.
var sysvWait = 2 * time.Second

// sysvLeaks lists the System V segments whose creator is one of pids. A
// segment could outlive its processes by a moment (in theory: the last
// detach happens before a waited-for child is reaped), so it looks again
// for up to sysvWait before it reports any.
func sysvLeaks(pids map[int]bool) []string {
	deadline := time.Now().Add(sysvWait)
	for {
		var out []string
		segs, err := procfs.Segments()
		if err != nil {
			return nil // no System V IPC here: nothing can leak
		}
		for _, s := range segs {
			if pids[s.CPID] {
				out = append(out, fmt.Sprintf("shmid %d cpid %d nattch %d", s.ID, s.CPID, s.Attached))
			}
		}
		if len(out) == 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// childProcs lists the processes whose parent is this process: after
// every child has been waited for there should be none.
func childProcs() []string {
	var out []string
	for _, c := range procfs.Children(os.Getpid()) {
		out = append(out, "pid "+strconv.Itoa(c.PID)+" ("+c.State+")")
	}
	return out
}
