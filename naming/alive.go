package naming

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// procDir is where /proc is; the tests move it to see what a process
// /proc does not show is judged.
var procDir = "/proc"

// reuseSlack allows for the coarse clocks behind a process's start time
// (clock ticks, and whole seconds for the boot time).
const reuseSlack = 2 * time.Second

// Alive reports whether process pid is running and is the process that
// made a registry file at created. It is false when the pid does not exist,
// is a zombie (a process whose main thread has exited while others run
// is not one), or started after created (the pid was reused). A zero
// created skips the last check. Where /proc does not show the process
// (not mounted, or hidepid), a pid that exists counts as alive.
func Alive(pid int, created time.Time) bool {
	if pid <= 0 {
		return false
	}
	alive, _ := readProc(pid).aliveAt(created)
	return alive
}

// AliveOwner is Alive for the owner of the registry file at path, made
// at created: a process the start-time check takes for a reused pid is
// alive after all if it holds the file open (see holds). With path ""
// it is Alive.
func AliveOwner(pid int, path string, created time.Time) bool {
	if pid <= 0 {
		return false
	}
	if path == "" {
		return Alive(pid, created)
	}
	return aliveFile(readProc(pid), pid, path, created)
}

// procInfo is what Alive reads of a process.
type procInfo struct {
	exists  bool      // a process has the pid, and it is not a zombie
	started time.Time // when it started; zero when not known
}

// readProc reads what Alive needs of process pid.
func readProc(pid int) procInfo {
	if !sys.ProcessExists(pid) {
		return procInfo{}
	}
	// The thread group leader's stat, which is the process's: the same
	// as /proc/PID/stat, except under qemu-user, which fakes the latter
	// for its own process, with the start time of whichever thread reads
	// it, so that a process checking its own name found itself "started"
	// after its registry file and not alive.
	p := strconv.Itoa(pid)
	stat, err := os.ReadFile(procDir + "/" + p + "/task/" + p + "/stat")
	if err != nil {
		// Hidden (hidepid), /proc not mounted, or exited meanwhile:
		// only the last is gone.
		return procInfo{exists: sys.ProcessExists(pid)}
	}
	// Fields after the command name, which is in parentheses and may hold
	// anything: state is the first, num_threads the 18th, starttime the
	// 20th.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return procInfo{exists: true}
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 20 {
		return procInfo{exists: true}
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		// The leader is; the process is only when no thread runs on.
		if n, err := strconv.Atoi(string(fields[17])); err != nil || n <= 1 {
			return procInfo{}
		}
	}
	ticks, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return procInfo{exists: true}
	}
	bt := bootTime()
	if bt.IsZero() {
		return procInfo{exists: true}
	}
	return procInfo{exists: true, started: bt.Add(sinceBoot(ticks))}
}

// aliveAt is Alive for a process read: reused says the verdict "not
// alive" rests on the start time alone (it started after created), which
// a step of the wall clock can throw off (see holds).
func (pi procInfo) aliveAt(created time.Time) (alive, reused bool) {
	switch {
	case !pi.exists:
		return false, false
	case pi.started.IsZero() || created.IsZero():
		return true, false
	case pi.started.After(created.Add(reuseSlack)):
		return false, true
	}
	return true, false
}

// holds tells whether process pid has the file at path open. A process
// keeps its receive FIFO open for as long as it holds the name, so this
// settles an owner the start-time check takes for a reused pid: the
// check compares the file's birth time, on the wall clock, with a start
// time reckoned from the boot time, and a step of the clock since (NTP's
// first on a board without a real-time clock, say) moves one and not the
// other. False when it cannot tell (another user's process, /proc not
// shown).
func holds(pid int, path string) bool {
	// The links are read, not followed: a stat through them would touch
	// whatever the process has open (a file on a hung network file
	// system would hang this).
	want := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		want = p
	}
	dir := procDir + "/" + strconv.Itoa(pid) + "/fd/"
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			if target, err := os.Readlink(dir + n); err == nil && target == want {
				return true
			}
		}
		if err != nil {
			return false
		}
	}
}

// sinceBoot is a start time of ticks clock ticks after boot as a
// duration, the longest one past 292 years (ticks * time.Second overflowed
// after 2.9 years of uptime, and then judged a live owner dead, or a
// reused pid alive; whole seconds plus the rest overflowed within a
// second of 292 years, found by FuzzSinceBoot).
func sinceBoot(ticks uint64) time.Duration {
	const tick = time.Second / clockTicks
	if ticks > math.MaxInt64/uint64(tick) {
		return math.MaxInt64
	}
	return time.Duration(ticks) * tick
}

// clockTicks is USER_HZ, which Linux fixes at 100 for user space.
const clockTicks = 100

// bootTime is the boot time as the wall clock placed it when this
// process first asked (/proc/stat's btime), kept for the process's life:
// a step of the clock since moves btime, and read again it would place
// every process started before the step after the files it made, so that
// a long-running process would judge its peers dead. (A process started
// after a step is left with the same skew for files made before it:
// aliveFile's holds settles those.)
var bootTime = sync.OnceValue(readBootTime)

func readBootTime() time.Time {
	b, err := os.ReadFile(procDir + "/stat")
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
}

// Created is when the file at path was created: its birth time where the
// file system records one (ext4, tmpfs, xfs, btrfs), else its modification
// time. Every doorbell written to a FIFO moves its modification time, so
// only the birth time orders two claims on a name by age.
func Created(path string) (time.Time, error) { return sys.BirthTime(path) }
