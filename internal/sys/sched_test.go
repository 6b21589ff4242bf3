package sys

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"golang.org/x/sys/unix"
)

// The calling thread's priority reads back as set, for a nice value and
// (as root) a real-time priority; out-of-range values are refused before
// the kernel is asked. The test's goroutine keeps its thread locked to the
// end, so the thread, whatever it was left at, exits with it.
func TestSched(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	own, err := GetSched(0)
	if err != nil {
		t.Fatal(err)
	}
	if own.Check() != nil {
		t.Fatalf("this thread's priority %+v does not check", own)
	}
	want := []Sched{{SchedOther, 5}, {SchedBatch, 7}, {SchedIdle, 0}}
	if os.Geteuid() == 0 {
		want = append(want, Sched{SchedFIFO, 1}, Sched{SchedRR, 3}, Sched{SchedOther, -5}, Sched{SchedOther, 0})
	}
	for _, s := range want {
		if err := SetSched(Gettid(), s); err != nil {
			t.Fatalf("set %+v: %v", s, err)
		}
		got, err := GetSched(0)
		if err != nil || got != s {
			t.Fatalf("set %+v, read back %+v (%v)", s, got, err)
		}
	}
	for _, s := range []Sched{{SchedFIFO, 0}, {SchedRR, 100}, {SchedOther, 20}, {SchedOther, -21}, {SchedIdle, 1}, {6, 0}} {
		if err := SetSched(0, s); !errors.Is(err, ErrBadSched) {
			t.Errorf("set %+v: %v, want ErrBadSched", s, err)
		}
	}
	// A thread id that is not one of the process's threads is left alone.
	if err := SetThreadSched(os.Getpid(), 1, Sched{SchedOther, 0}); !errors.Is(err, unix.ESRCH) {
		t.Errorf("SetThreadSched of pid 1 as a thread of this process: %v, want ESRCH", err)
	}
	if err := SetThreadSched(os.Getpid(), Gettid(), Sched{SchedIdle, 0}); err != nil {
		t.Errorf("SetThreadSched of this thread: %v", err)
	}
}

func TestPinThread(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	cpus, err := AllowedCPUs()
	if err != nil || len(cpus) == 0 {
		t.Fatalf("allowed CPUs: %v (%v)", cpus, err)
	}
	last := cpus[len(cpus)-1]
	if err := PinThread(last); err != nil {
		t.Fatal(err)
	}
	if got, err := AllowedCPUs(); err != nil || len(got) != 1 || got[0] != last {
		t.Fatalf("pinned to %d, allowed %v (%v)", last, got, err)
	}
}

// MayReturnTo tells the truth: on a thread that has (as root) or lacks
// CAP_SYS_NICE, a thread lowered to nice 19 can set itself back to nice
// 0 and to SCHED_FIFO 10 exactly when MayReturnTo said so beforehand.
// Capabilities are per thread in the kernel: the capability is dropped
// on this test's locked thread only, which exits with the test.
func TestMayReturnTo(t *testing.T) {
	runtime.LockOSThread() // never unlocked: the thread dies with the test
	check := func(what string) {
		for _, back := range []Sched{{SchedOther, 0}, {SchedFIFO, 10}} {
			may := MayReturnTo(back)
			if err := SetSched(0, Sched{SchedOther, 19}); err != nil {
				t.Fatalf("%s: lower to nice 19: %v", what, err)
			}
			err := SetSched(0, back)
			if may != (err == nil) {
				t.Errorf("%s: MayReturnTo(%+v) = %v, but setting it back from nice 19: %v", what, back, may, err)
			}
			if err != nil && !errors.Is(err, unix.EPERM) {
				t.Errorf("%s: set back to %+v: %v, want EPERM if anything", what, back, err)
			}
		}
	}
	if os.Geteuid() == 0 {
		if !MayReturnTo(Sched{SchedFIFO, 99}) || !hasCapSysNice() {
			t.Errorf("root: CAP_SYS_NICE %v, MayReturnTo(FIFO 99) %v, want both", hasCapSysNice(), MayReturnTo(Sched{SchedFIFO, 99}))
		}
		check("with CAP_SYS_NICE")
		// Drop CAP_SYS_NICE from this thread's effective set.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			t.Fatal(err)
		}
		data[unix.CAP_SYS_NICE/32].Effective &^= 1 << (unix.CAP_SYS_NICE % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			t.Fatal(err)
		}
		if hasCapSysNice() {
			t.Fatal("CAP_SYS_NICE still effective after dropping it")
		}
	}
	check("without CAP_SYS_NICE")
}

// LockMemory locks (as root; elsewhere RLIMIT_MEMLOCK decides) and
// Prefault touches every page of a buffer, including its last byte.
func TestLockMemory(t *testing.T) {
	b := make([]byte, 3*unix.Getpagesize()+5)
	for i := range b {
		b[i] = 1
	}
	Prefault(b)
	for i := 0; i < len(b); i += unix.Getpagesize() {
		if b[i] != 0 {
			t.Fatalf("byte %d not touched", i)
		}
	}
	if b[len(b)-1] != 0 {
		t.Error("last byte not touched")
	}
	Prefault(nil)
	if os.Geteuid() != 0 {
		t.Skip("mlockall needs CAP_IPC_LOCK")
	}
	if err := LockMemory(); err != nil {
		t.Fatal(err)
	}
	defer UnlockMemory()
	if vmLck(t) == 0 {
		t.Error("after LockMemory: VmLck 0 kB, want pages locked")
	}
	// A mapping made later is locked (its pages stay once touched), but
	// not faulted in whole when it is made (MCL_ONFAULT): the Go runtime
	// maps its heap 64 MiB at a time.
	const size = 64 << 20
	before := vmLck(t)
	m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if got := vmLck(t) - before; got < size>>10 {
		t.Errorf("VmLck grew by %d kB for a %d kB mapping, want it locked", got, size>>10)
	}
	if n := resident(t, m); n > len(m)/unix.Getpagesize()/2 {
		t.Errorf("%d of %d pages resident before any was touched: faulted in at map time", n, len(m)/unix.Getpagesize())
	}
	Prefault(m)
	if n := resident(t, m); n != len(m)/unix.Getpagesize() {
		t.Errorf("%d of %d pages resident after Prefault", n, len(m)/unix.Getpagesize())
	}
}

// resident counts the pages of m in RAM (mincore).
func resident(t *testing.T, m []byte) int {
	t.Helper()
	vec := make([]byte, (len(m)+unix.Getpagesize()-1)/unix.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// vmLck is the process's locked memory, kB, from /proc/self/status.
func vmLck(t *testing.T) int {
	t.Helper()
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmLck:"); ok {
			f := strings.Fields(v)
			if len(f) < 1 {
				break
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatalf("VmLck: %q", l)
			}
			return n
		}
	}
	t.Fatal("no VmLck line in /proc/self/status")
	return 0
}

// SleepUntil does not return before CLOCK_MONOTONIC reaches the time
// asked, which MonoNow reads; a time already past returns without error.
func TestSleepUntil(t *testing.T) {
	for _, ahead := range []int64{2e6, 0, -1e9} {
		target := MonoNow() + ahead
		if err := SleepUntil(target); err != nil {
			t.Fatal(err)
		}
		if now := MonoNow(); now < target {
			t.Errorf("SleepUntil(now%+d ns) returned %d ns early", ahead, target-now)
		}
	}
}

// roleProcSched sets its whole process to the policy and level in args,
// with threads already busy (locked goroutines) before the call and more
// started after it, and prints each thread that is not at that priority,
// then "threads N" with the number it read.
func roleProcSched(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want policy level, got %q", args)
	}
	policy, err1 := strconv.Atoi(args[0])
	level, err2 := strconv.Atoi(args[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	want := Sched{policy, level}
	// Each locked goroutine holds a thread of its own until stop closes.
	stop := make(chan struct{})
	started := make(chan struct{})
	hold := func(n int) {
		for range n {
			go func() {
				runtime.LockOSThread()
				started <- struct{}{}
				<-stop
			}()
			<-started
		}
	}
	hold(4)
	if _, err := SetProcessSched(want); err != nil {
		return err
	}
	hold(4) // new threads: made from threads already set
	tids, err := processThreads()
	if err != nil {
		return err
	}
	for _, tid := range tids {
		if got, err := GetSched(tid); err != nil || got != want {
			fmt.Printf("thread %d at %+v (%v)\n", tid, got, err)
		}
	}
	fmt.Printf("threads %d\n", len(tids))
	close(stop)
	return nil
}

// SetProcessSched reaches every thread of a process, those the runtime
// starts after it too.
func TestSetProcessSched(t *testing.T) {
	want := []Sched{{SchedBatch, 3}}
	if os.Geteuid() == 0 {
		want = append(want, Sched{SchedFIFO, 2})
	}
	for _, s := range want {
		h := simpltest.StartNoWait(t, "procsched", nil, strconv.Itoa(s.Policy), strconv.Itoa(s.Level))
		var lines []string
		for {
			line := h.ReadLine(20 * time.Second)
			lines = append(lines, line)
			if strings.HasPrefix(line, "threads ") {
				break
			}
		}
		if err := h.Wait(20 * time.Second); err != nil {
			t.Fatalf("%+v: %v: %s", s, err, h.Stderr())
		}
		var n int
		if _, err := fmt.Sscanf(lines[len(lines)-1], "threads %d", &n); err != nil || len(lines) != 1 || n < 9 {
			t.Errorf("%+v: the helper printed %q, want only a count of at least 9 threads", s, lines)
		}
	}
	if _, err := SetProcessSched(Sched{SchedFIFO, 0}); !errors.Is(err, ErrBadSched) {
		t.Errorf("SCHED_FIFO 0: %v, want ErrBadSched", err)
	}
}
