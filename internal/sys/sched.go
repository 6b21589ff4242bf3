package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Scheduling policies, as the kernel numbers them.
const (
	SchedOther = unix.SCHED_NORMAL
	SchedFIFO  = unix.SCHED_FIFO
	SchedRR    = unix.SCHED_RR
	SchedBatch = unix.SCHED_BATCH
	SchedIdle  = unix.SCHED_IDLE
)

// schedAttrSize is the first version of struct sched_attr (48 bytes),
// which every kernel since 3.14 takes; the utilisation clamps after it
// are not used.
const schedAttrSize = 48

// Sched is a thread's scheduling policy and its priority within it: the
// real-time priority (1..99) for SchedFIFO and SchedRR, the nice value
// (-20..19) for SchedOther and SchedBatch, 0 for SchedIdle.
type Sched struct {
	Policy int
	Level  int
}

// ErrBadSched is a policy or level the kernel was not asked about.
var ErrBadSched = errors.New("scheduling policy or priority out of range")

// Check reports a policy this package does not set (SCHED_DEADLINE, say)
// or a level out of its policy's range.
func (s Sched) Check() error {
	ok := false
	switch s.Policy {
	case SchedFIFO, SchedRR:
		ok = s.Level >= 1 && s.Level <= 99
	case SchedOther, SchedBatch:
		ok = s.Level >= -20 && s.Level <= 19
	case SchedIdle:
		ok = s.Level == 0
	}
	if !ok {
		return fmt.Errorf("policy %d level %d: %w", s.Policy, s.Level, ErrBadSched)
	}
	return nil
}

// Gettid is the calling thread's id.
func Gettid() int { return unix.Gettid() }

// GetSched returns thread tid's policy and priority (tid 0: the calling
// thread). It allocates nothing: the attribute block stays on the stack.
func GetSched(tid int) (Sched, error) {
	var a unix.SchedAttr
	_, _, e := unix.Syscall6(unix.SYS_SCHED_GETATTR, uintptr(tid), uintptr(unsafe.Pointer(&a)), schedAttrSize, 0, 0, 0)
	if e != 0 {
		return Sched{}, e
	}
	s := Sched{Policy: int(a.Policy)}
	switch s.Policy {
	case SchedFIFO, SchedRR:
		s.Level = int(a.Priority)
	case SchedOther, SchedBatch:
		s.Level = int(a.Nice)
	}
	return s, nil
}

// SetSched sets thread tid's policy and priority (tid 0: the calling
// thread). Raising either needs CAP_SYS_NICE or room under RLIMIT_RTPRIO
// and RLIMIT_NICE; the kernel's EPERM is returned otherwise. It allocates
// nothing on success.
func SetSched(tid int, s Sched) error {
	if err := s.Check(); err != nil {
		return err
	}
	a := unix.SchedAttr{Size: schedAttrSize, Policy: uint32(s.Policy)}
	switch s.Policy {
	case SchedFIFO, SchedRR:
		a.Priority = uint32(s.Level)
	case SchedOther, SchedBatch:
		a.Nice = int32(s.Level)
	}
	_, _, e := unix.Syscall(unix.SYS_SCHED_SETATTR, uintptr(tid), uintptr(unsafe.Pointer(&a)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// SetThreadSched sets the policy and priority of thread tid, which must
// belong to process pid: tgkill with signal 0 checks that first, so a tid
// that names another process's thread is left alone (ESRCH). (A thread
// that exits between the check and the change and whose id is reused at
// once is the one case it cannot rule out.)
func SetThreadSched(pid, tid int, s Sched) error {
	if pid <= 0 || tid <= 0 {
		return unix.ESRCH
	}
	if err := unix.Tgkill(pid, tid, 0); err != nil {
		return err
	}
	return SetSched(tid, s)
}

// AllowedCPUs lists the CPUs the calling thread may run on.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, err
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}

// PinThread binds the calling thread (only it, not its process) to cpu.
func PinThread(cpu int) error {
	if err := checkCPU(cpu); err != nil {
		return err
	}
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// MaxCPU is one more than the highest CPU number an affinity mask
// (unix.CPUSet) holds: CPU_SETSIZE.
const MaxCPU = 1024

// checkCPU refuses a CPU number no affinity mask holds: unix.CPUSet.Set
// would panic on some (less than -63) and take others for CPU 63 or none.
func checkCPU(cpu int) error {
	if cpu < 0 || cpu >= MaxCPU {
		return fmt.Errorf("CPU %d: want 0 to %d: %w", cpu, MaxCPU-1, unix.EINVAL)
	}
	return nil
}

// SetPdeathsig asks the kernel to send sig to this process when the
// thread that started it exits (PR_SET_PDEATHSIG). If the parent is
// already gone (this process was reparented to ppid's replacement), it
// reports so: the signal would never come.
func SetPdeathsig(sig unix.Signal, ppid int) error {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0); err != nil {
		return err
	}
	if unix.Getppid() != ppid {
		return fmt.Errorf("parent %d exited before PR_SET_PDEATHSIG took effect", ppid)
	}
	return nil
}

// ThreadCPUTime is the CPU time the calling thread has used.
func ThreadCPUTime() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// MayReturnTo reports whether the calling thread, once set to a lower
// priority, may set itself back to s: it holds CAP_SYS_NICE in its
// effective set, or its RLIMIT_RTPRIO (for a real-time s) or RLIMIT_NICE
// (for a nice value; SCHED_IDLE counts as nice 20) lets an unprivileged
// thread rise to s. Lowering needs no privilege, rising does, so this is
// what decides whether following a sender down is safe.
func MayReturnTo(s Sched) bool {
	if hasCapSysNice() {
		return true
	}
	var lim unix.Rlimit
	switch s.Policy {
	case SchedFIFO, SchedRR:
		if err := unix.Getrlimit(unix.RLIMIT_RTPRIO, &lim); err != nil {
			return false
		}
		return lim.Cur >= uint64(s.Level)
	case SchedOther, SchedBatch:
		if err := unix.Getrlimit(unix.RLIMIT_NICE, &lim); err != nil {
			return false
		}
		// RLIMIT_NICE r allows nice values down to 20-r.
		return lim.Cur >= 40 || 20-int(lim.Cur) <= s.Level
	case SchedIdle:
		return true // nothing is lower to come back from
	}
	return false
}

// hasCapSysNice reports CAP_SYS_NICE in the calling thread's effective
// capabilities.
func hasCapSysNice() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_NICE/32].Effective&(1<<(unix.CAP_SYS_NICE%32)) != 0
}

// SetProcessAffinity binds every thread of this process to cpus, so that
// the threads and the processes it starts from now on (which inherit the
// mask of the thread that creates them) run there too.
func SetProcessAffinity(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		if err := checkCPU(c); err != nil {
			return err
		}
		set.Set(c)
	}
	_, err := eachThread(func(tid int) error { return unix.SchedSetaffinity(tid, &set) })
	return err
}

// SetProcessSched sets every thread of the calling process to s and
// returns how many it set. Linux keeps a policy and priority per thread,
// and a new thread starts with those of the thread that made it; Go's
// runtime makes its threads from threads it already has (a locked
// goroutine's from its template thread), so threads started after the
// call start at s too. The runtime may start one while the threads are
// being set, from a thread not set yet: /proc/self/task is read again
// until a pass finds no thread it has not set (a few passes at most).
// A thread that exits meanwhile (ESRCH) is skipped; any other failure
// (EPERM without CAP_SYS_NICE) is returned, with the threads set so far
// left set.
func SetProcessSched(s Sched) (int, error) {
	if err := s.Check(); err != nil {
		return 0, err
	}
	return eachThread(func(tid int) error { return SetSched(tid, s) })
}

// eachThread calls set once for every thread of the calling process and
// returns how many it set. Threads may start meanwhile, from a thread not
// set yet: /proc/self/task is read again until a pass finds no thread it
// has not set. A thread that exits meanwhile (ESRCH) is skipped; any
// other failure is returned, with the threads set so far left set.
func eachThread(set func(tid int) error) (int, error) {
	done := map[int]bool{}
	for pass := 0; ; pass++ {
		tids, err := processThreads()
		if err != nil {
			return len(done), err
		}
		found := false
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			found = true
			switch err := set(tid); {
			case err == nil:
				done[tid] = true
			case errors.Is(err, unix.ESRCH):
			default:
				return len(done), fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		if !found {
			return len(done), nil
		}
		if pass == 100 {
			return len(done), fmt.Errorf("threads kept appearing over %d passes", pass)
		}
	}
}

// processThreads lists the calling process's thread ids.
func processThreads() ([]int, error) { return threadsOf("self") }

// threadsOf lists the thread ids of process proc ("self", or a pid).
func threadsOf(proc string) ([]int, error) {
	ents, err := os.ReadDir("/proc/" + proc + "/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
