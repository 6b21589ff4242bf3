package sys

import "golang.org/x/sys/unix"

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
