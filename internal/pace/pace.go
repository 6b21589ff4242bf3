// Package pace keeps a goroutine that sleeps in system calls and never
// otherwise passes through Go's scheduler from losing its processor at
// every sleep: a Receive sleeping on its queue (transport.Queue paces
// it), a C thread calling into the C library (which paces each thread
// where it starts an exchange), a control loop's periodic sensor.
//
// Go's sysmon takes the processor (P) of a goroutine that has run 10 ms
// without being scheduled anew (the runtime's forcePreemptNS) whenever it
// finds it in a system call, and asks that goroutine to yield. A
// goroutine that only sleeps and wakes in system calls, its thread
// getting a P back as it wakes, is such a goroutine: it never passes
// through the scheduler (measured on a goroutine locked to its thread
// and on one that is not alike). So after its first 10 ms every sleep
// longer than a sysmon tick (20 µs to 10 ms) lost its P: waking, the
// thread took an idle one, which wakes sysmon from its deep sleep, and
// the yield asked for handed the goroutine from its thread to another
// and back. Counted with getrusage on the 2-core VM of
// docs/benchmarks.md, a locked goroutine sleeping 1 ms at a time made 4.0
// voluntary context switches a sleep (its process's threads together),
// against 1.46 when it yielded every 8 ms (GOMAXPROCS=2); a control loop
// has such a thread in each of its processes. A yield of a locked
// goroutine costs about three thread switches itself, hence the
// interval: under the runtime's 10 ms, with a margin for the time from
// the yield to the sleep.
//
// With GOMAXPROCS=1 yielding only adds its own cost (5.4 switches a
// sleep): the runtime then takes the one P from every system call longer
// than a sysmon tick, since no other goroutine could run otherwise. So a
// Pacer yields only with more than one P. Raising GOMAXPROCS above the
// CPUs a SCHED_FIFO process runs on to get this is not safe: the
// runtime's own spin loops then livelock it (docs/realtime.md, "The
// runtime's threads").
package pace

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// Every is how often a Pacer yields.
const Every = 8 * time.Millisecond

// Env is the environment variable that turns every Pacer of the process
// off when it is 0, off or false, read once, at start: for measuring
// what pacing saves (docs/realtime.md) without building twice.
const Env = "GOSIMPL_PACE"

var off = func() bool {
	switch os.Getenv(Env) {
	case "0", "off", "false":
		return true
	}
	return false
}()

// base is the origin of a Pacer's clock.
var base = time.Now()

// Pacer makes its goroutine yield (runtime.Gosched) once every Every,
// checked where KeepP is called: between a loop's sleeps, never during
// one. The zero Pacer is ready, and its first KeepP yields. Safe for
// concurrent use, but of goroutines calling KeepP at once only one
// yields, and the runtime takes the P of each thread that has not: a
// Pacer is for one goroutine's loop (a receive queue's sleeping Receive,
// fcloop's sensor). Threads that share code paced per thread use
// KeepPAt.
type Pacer struct {
	next atomic.Int64 // when the next yield is due, in ns since base
}

// KeepP yields if Every has passed since the last yield and the process
// has more than one P. It costs a clock reading otherwise.
func (p *Pacer) KeepP() {
	if off {
		return
	}
	now := int64(time.Since(base))
	n := p.next.Load()
	if now < n || !p.next.CompareAndSwap(n, now+int64(Every)) {
		return
	}
	yield()
}

// KeepPAt is KeepP for a pacer that one thread keeps outside Go: *next
// is when that thread's next yield is due (0 at first: due at once), and
// only the calling thread reads or writes it. The C library keeps one in
// C thread-local storage for each C thread that calls into it, so that
// each yields on its own schedule.
func KeepPAt(next *int64) {
	if off {
		return
	}
	now := int64(time.Since(base))
	if now < *next {
		return
	}
	*next = now + int64(Every)
	yield()
}

// yield is where a pacer yields: with one P, not at all.
func yield() {
	if runtime.GOMAXPROCS(0) > 1 {
		gosched()
	}
}

// gosched is runtime.Gosched, a variable for the package's tests.
var gosched = runtime.Gosched
