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

// VoluntarySwitches is the number of times the threads of process pid
// now alive have given up their CPU to wait, together
// (voluntary_ctxt_switches in /proc/PID/task/*/status).
func VoluntarySwitches(pid int) (int64, error) {
	tids, err := threadsOf(strconv.Itoa(pid))
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	var total int64
	for _, tid := range tids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w", pid, err)
		}
		_, rest, ok := strings.Cut(string(b), "\nvoluntary_ctxt_switches:")
		if !ok {
			return 0, fmt.Errorf("pid %d, thread %d: no voluntary_ctxt_switches in its status", pid, tid)
		}
		line, _, _ := strings.Cut(rest, "\n")
		n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d, thread %d: voluntary_ctxt_switches: %w", pid, tid, err)
		}
		total += n
	}
	return total, nil
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
	found, zombie, threads := false, false, 0
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "State":
			// The main thread's state: a process whose main thread has
			// exited while others run on is not exited (Threads).
			zombie = len(f) > 0 && (f[0] == "Z" || f[0] == "X")
		case "Threads":
			if len(f) == 1 {
				threads, _ = strconv.Atoi(f[0])
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
	if zombie && threads <= 1 {
		return uids, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if !found {
		return uids, fmt.Errorf("/proc/%d/status: no Uid line", pid)
	}
	return uids, nil
}
