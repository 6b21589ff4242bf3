package naming

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// reuseSlack allows for the coarse clocks behind a process's start time
// (clock ticks, and whole seconds for the boot time).
const reuseSlack = 2 * time.Second

// Alive reports whether process pid is running and is the process that
// made a registry file at created. It is false when the pid does not exist,
// is a zombie, or started after created (the pid was reused). A zero created
// skips the last check.
func Alive(pid int, created time.Time) bool {
	if pid <= 0 {
		return false
	}
	if !sys.ProcessExists(pid) {
		return false
	}
	// The thread group leader's stat, which is the process's: the same
	// as /proc/PID/stat, except under qemu-user, which fakes the latter
	// for its own process, with the start time of whichever thread reads
	// it, so that a process checking its own name found itself "started"
	// after its registry file and not alive.
	p := strconv.Itoa(pid)
	stat, err := os.ReadFile("/proc/" + p + "/task/" + p + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// Fields after the command name, which is in parentheses and may hold
	// anything: state is the first, starttime the 20th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return true
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 20 {
		return true
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return false
	}
	if created.IsZero() {
		return true
	}
	ticks, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return true
	}
	bt := bootTime()
	if bt.IsZero() {
		return true
	}
	started := bt.Add(sinceBoot(ticks))
	return !started.After(created.Add(reuseSlack))
}

// sinceBoot is a start time of ticks clock ticks after boot as a
// duration: whole seconds first, so that it does not overflow before 292
// years (ticks * time.Second did after 2.9 years of uptime, and then
// judged a live owner dead, or a reused pid alive).
func sinceBoot(ticks uint64) time.Duration {
	secs := ticks / clockTicks
	if secs > math.MaxInt64/uint64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(secs)*time.Second + time.Duration(ticks%clockTicks)*(time.Second/clockTicks)
}

// clockTicks is USER_HZ, which Linux fixes at 100 for user space.
const clockTicks = 100

var bootTime = sync.OnceValue(func() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			s, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err == nil {
				return time.Unix(s, 0)
			}
		}
	}
	return time.Time{}
})

// Created is when the file at path was created: its birth time where the
// file system records one (ext4, tmpfs, xfs, btrfs), else its modification
// time. Every doorbell written to a FIFO moves its modification time, so
// only the birth time orders two claims on a name by age.
func Created(path string) (time.Time, error) { return sys.BirthTime(path) }
