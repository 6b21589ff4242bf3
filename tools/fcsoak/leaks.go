package main

import (
	"bytes"
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
		b, err := os.ReadFile("/proc/sysvipc/shm")
		if err != nil {
			return nil // no System V IPC here: nothing can leak
		}
		for i, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 7 {
				continue
			}
			cpid, _ := strconv.Atoi(f[4])
			if pids[cpid] {
				out = append(out, "shmid "+f[1]+" cpid "+f[4]+" nattch "+f[6])
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
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []string
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + de.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the command name, in parentheses: state, then ppid.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(string(f[1])); ppid == self {
			out = append(out, "pid "+strconv.Itoa(pid)+" ("+string(f[0])+")")
		}
	}
	return out
}
