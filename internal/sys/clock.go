package sys

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// MonoNow is CLOCK_MONOTONIC in nanoseconds: one clock for every process
// of the machine, unlike the monotonic reading in a time.Time, which
// counts from the reading process's start. It allocates nothing.
func MonoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// SleepUntil blocks the calling thread until CLOCK_MONOTONIC reads at
// least ns (clock_nanosleep with TIMER_ABSTIME, as cyclictest sleeps), and
// returns at once if that time has passed. An interruption by a signal
// sleeps again, for the time left. It allocates nothing.
func SleepUntil(ns int64) error {
	ts := unix.NsecToTimespec(ns)
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// ProcessCPU is process pid's CPU time so far, user and system, all its
// threads: its CPU-time clock (clock_getcpuclockid), exact to the
// nanosecond, where /proc/PID/stat counts ticks.
func ProcessCPU(pid int) (time.Duration, error) {
	var ts unix.Timespec
	// MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), as clock_getcpuclockid.
	if err := unix.ClockGettime(int32(^pid<<3|2), &ts); err != nil {
		return 0, fmt.Errorf("CPU time of pid %d: %w", pid, err)
	}
	return time.Duration(ts.Nano()), nil
}
