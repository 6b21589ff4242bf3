package sys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CPUTime is the CPU time, user and system, this process has used so far.
func CPUTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// VoluntarySwitches is the number of times this process's threads,
// together, have given up their CPU to wait (getrusage's ru_nvcsw).
func VoluntarySwitches() int64 {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return int64(ru.Nvcsw) // int32 on 32-bit ARM
}

// ProcessExists tells whether a process has pid (a zombie included): only
// "no such process" is no. It sends no signal.
func ProcessExists(pid int) bool {
	return !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// ErrExited: the process is a zombie or gone.
var ErrExited = errors.New("process has exited")

// ProcessUIDs returns the real, effective, saved and file-system user ids
// of process pid from /proc/PID/status. A zombie, or a pid with no
// process, is ErrExited.
func ProcessUIDs(pid int) ([4]uint32, error) {
	var uids [4]uint32
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return uids, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if err != nil {
		return uids, err
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "State":
			if len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
				return uids, fmt.Errorf("pid %d: %w", pid, ErrExited)
			}
		case "Uid":
			if len(f) != 4 {
				return uids, fmt.Errorf("/proc/%d/status: Uid line %q", pid, v)
			}
			for i := range f {
				n, err := strconv.ParseUint(f[i], 10, 32)
				if err != nil {
					return uids, fmt.Errorf("/proc/%d/status: Uid line %q", pid, v)
				}
				uids[i] = uint32(n)
			}
			found = true
		}
	}
	if !found {
		return uids, fmt.Errorf("/proc/%d/status: no Uid line", pid)
	}
	return uids, nil
}
