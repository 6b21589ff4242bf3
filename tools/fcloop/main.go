// Command fcloop is a control-loop benchmark: a sensor, a controller and
// an actuator, three processes, run a periodic loop through gosimpl, and
// fcloop reports how late each cycle reached the actuator.
//
// Each cycle k has a scheduled tick, t0 + k·period on CLOCK_MONOTONIC. The
// sensor sleeps until the tick (clock_nanosleep, absolute, as cyclictest
// does) and triggers the controller with a proxy naming the cycle (or,
// with -sensor send, Sends it the cycle, which the controller answers at
// once: a Send reaches the serving thread through shared memory, where a
// proxy passes through a goroutine of the receiver's that reads the
// lane's socket at the process's default priority); the
// controller, serving on a locked thread (Channel.Serve), does its work
// (-work) and Sends the actuator a 32-byte command carrying the cycle, its
// tick, when the controller's handler had it and how many triggers it
// dropped for it (below); the actuator reads
// CLOCK_MONOTONIC when its handler gets the command and replies. A
// cycle's latency is that reading minus the tick: the sensor's wake-up
// latency, the trigger, the controller's wake-up and work, and the Send,
// up to the actuator's receipt (not its reply). fcloop reports it whole
// and in three stages (the sensor's wake-up, to the controller, to the
// actuator), and, of the cycles at or above the p99.9, which stage was
// the largest part of each. A cycle is late (a missed deadline) when its
// latency is a period or more: the next tick was due before the actuator
// had the command. A sensor that wakes after the next tick was due skips
// the ticks it overslept, as cyclictest does and as most control loops
// do rather than run a burst of stale cycles (-overrun skip): each
// skipped tick is a missed deadline too. Likewise a controller that has
// fallen behind (it has a trigger after the next cycle's tick, and newer
// ones wait behind it) acts on the newest and drops the older ones, each
// a missed deadline, as a loop acts on its freshest reading: a stall of
// the controller, with the sensor keeping time on another CPU, is then
// one late cycle and dropped ones, where otherwise every trigger queued
// during it would run late. With -overrun catchup every cycle runs, late,
// as in a loop that must act on every tick. A
// cycle whose command never reaches the actuator is lost, a missed
// deadline too: among them a trigger the controller could not take,
// having read none of the last 2,048 (a stall of seconds).
//
// With -fifo N the three loop threads run at SCHED_FIFO N, every other
// thread of the three processes (the Go runtime's) at SCHED_FIFO N too
// (-runtime-fifo; simpl.SetProcessPriority), and the controller and
// actuator serve with priority inheritance and priority order, so a lower-priority sender to the actuator (-load hammer) is
// overtaken and the actuator's thread is raised for the controller. -load
// starts background load before the loop and kills it after: cpu (a
// spinning process on each CPU of -cpus), mem (a process that maps,
// touches and returns 64 MiB over and over), hammer (a process Sending to
// the actuator as fast as it answers, its requests carrying its
// SCHED_OTHER priority), on the CPUs of -cpus or, with
// -load-cpus, on others. Every child dies with fcloop
// (PR_SET_PDEATHSIG: SIGINT for cyclictest, on which it removes its
// /dev/shm object) and is killed and reaped when it ends; the FIFO
// directory a killed fcloop leaves ($TMPDIR/fcloop-PID-*), the next one
// removes. SIGINT and SIGTERM end a run at once, whatever it waits for
// (exit 1, "interrupted"). A run whose samples (128 bytes a cycle) would
// pass 2^24 cycles or half the available memory is refused. -gc runs a
// goroutine in the controller that allocates 256 KiB every millisecond,
// keeping the last 16, so that the garbage collector runs next to the
// loop; -mlock locks each loop process's memory (simpl.LockMemory) and
// pre-faults its buffers.
//
// When cyclictest (Debian's rt-tests) is installed, fcloop runs it in the
// same run, as long, at the same period and priority, one thread on each
// CPU of -cpus, as the floor the machine gives, and reports fcloop's
// p99.9 and maximum as multiples of cyclictest's, fcloop's p99.9 against
// cyclictest's p99.967 (one wake-up in 3,000: what three wake-ups late
// independently reach once in 1,000; a cycle has three), and
// cyclictest's late wake-ups, skipped ticks and missed deadlines next to
// fcloop's. cyclictest's interval is in whole µs: with it, a period that
// is not is refused.
//
//	fcloop [-period D] [-d D] [-fifo N] [-runtime-fifo N] [-cpus LIST] [-load cpu,mem,hammer] [-load-cpus LIST] [-gc] [-mlock] [-work D] [-sensor trigger|send] [-overrun skip|catchup] [-cyclictest auto|off|PATH] [-json] [-plot FILE]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

const usage = "usage: fcloop [-period D] [-d D] [-fifo N] [-runtime-fifo N] [-cpus LIST] [-load cpu,mem,hammer] [-load-cpus LIST] [-gc] [-mlock] [-work D] [-sensor trigger|send] [-overrun skip|catchup] [-cyclictest auto|off|PATH] [-json] [-plot FILE]"

const more = `output:
  cycle latency: from a cycle's scheduled tick (the sensor's) to the actuator's
  receipt of the controller's command for it; LATE counts cycles (and cyclictest
  wake-ups) a period or more late, SKIPPED the ticks the sensor (and cyclictest)
  overslept and skipped, DROPPED the triggers the controller dropped for a newer
  one waiting, LOST cycles whose command never arrived. STAGE splits
  the latency: the sensor's wake-up after the tick, on to the controller's
  handler, on to the actuator's; LARGEST IN TAIL counts, of the cycles at or
  above the p99.9, those whose largest part each stage was.
  With cyclictest, FCLOOP/CYCLICTEST gives fcloop's p99.9 and max as multiples of
  cyclictest's measured on the same CPUs in the same run, then fcloop's p99.9
  against cyclictest's p99.967 (three independent wake-ups' p99.9).
`

func main() {
	cli.Exit("fcloop", run(os.Args[1:], os.Stdout))
}

// config is what the parent tells every child process (FCLOOP_CONFIG).
type config struct {
	PeriodNS int64 `json:"period_ns"`
	Cycles   int   `json:"cycles"`
	FIFO     int   `json:"fifo"`
	Runtime  int   `json:"runtime_fifo"` // the loop processes' other threads (0: SCHED_OTHER)
	CPUs     []int `json:"cpus"`
	LoadCPUs []int `json:"load_cpus"` // -load-cpus, or CPUs
	GC       bool  `json:"gc"`
	MLock    bool  `json:"mlock"`
	WorkNS   int64 `json:"work_ns"`
	SendHop  bool  `json:"send_hop"` // -sensor send
	CatchUp  bool  `json:"catch_up"` // -overrun catchup
	Parent   int   `json:"parent"`   // the pid children die with
}

// check refuses a config run would not have made (FCLOOP_CONFIG comes
// from the environment).
func (c config) check() error {
	switch {
	case c.PeriodNS < int64(10*time.Microsecond) || c.PeriodNS > int64(time.Minute):
		return fmt.Errorf("period %d ns: want 10µs to 1m", c.PeriodNS)
	case c.Cycles < 1 || c.Cycles > maxCycles:
		return fmt.Errorf("%d cycles: want 1 to %d", c.Cycles, maxCycles)
	case c.FIFO < 0 || c.FIFO > 99 || c.Runtime < 0 || c.Runtime > 99:
		return fmt.Errorf("SCHED_FIFO %d, runtime %d: want 0 to 99", c.FIFO, c.Runtime)
	case c.WorkNS < 0 || c.WorkNS >= c.PeriodNS:
		return fmt.Errorf("work %d ns: want at least 0 and less than the period", c.WorkNS)
	}
	for _, cpu := range slices.Concat(c.CPUs, c.LoadCPUs) {
		if cpu < 0 || cpu >= sys.MaxCPU {
			return fmt.Errorf("CPU %d: want 0 to %d", cpu, sys.MaxCPU-1)
		}
	}
	return nil
}

// Every cycle's samples are kept: in the sensor (8 bytes) and the
// actuator (24), then in fcloop (32, and up to 64 more for the received
// cycles' latencies and stages as they are sorted out). maxCycles bounds
// a run (2^24: 4.6 hours at 1 kHz, 2 GiB of samples), and sampleLimit
// the bytes by the machine's available memory.
const (
	bytesPerCycle = 128
	maxCycles     = 1 << 24
)

// sampleLimit is the most bytes of samples a run may keep: maxCycles'
// worth, and at most half of the memory available now (MemAvailable in
// /proc/meminfo, when it can be read).
func sampleLimit() int64 {
	limit := int64(maxCycles) * bytesPerCycle
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return limit
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				limit = min(limit, kb<<10/2)
			}
		}
	}
	return limit
}

// ctNeeded tells whether -cyclictest VALUE runs cyclictest: a path, or
// auto with cyclictest installed.
func ctNeeded(v string) bool {
	return v != "off" && (v != "auto" || lookCyclictest() != "")
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcloop", flag.ContinueOnError)
	period := fs.Duration("period", time.Millisecond, "the loop's period `D` (1ms: 1 kHz)")
	dur := fs.Duration("d", 10*time.Second, "run for `D`: duration/period cycles")
	fifo := fs.Int("fifo", 0, "run the loop's threads (and cyclictest) at SCHED_FIFO priority `N` (1..99; 0: SCHED_OTHER)")
	rtFIFO := fs.Int("runtime-fifo", -1, "run the loop processes' other threads (the Go runtime's) at SCHED_FIFO `N` (0: SCHED_OTHER; default: -fifo's)")
	cpuList := fs.String("cpus", "", "run the loop, the load and cyclictest on CPUs `LIST` (e.g. 1 or 0-1,3; default: all this process may use)")
	loads := fs.String("load", "", "background `LOAD`s, comma-separated: cpu, mem, hammer")
	loadCPUList := fs.String("load-cpus", "", "run the load on CPUs `LIST` instead (e.g. -cpus 1 -load-cpus 0: the loop's CPU kept free of it)")
	gc := fs.Bool("gc", false, "run a garbage-producing goroutine in the controller")
	mlock := fs.Bool("mlock", false, "lock the loop processes' memory (mlockall) and pre-fault their buffers")
	work := fs.Duration("work", 0, "the controller's work per cycle: spin for `D` before sending")
	overrun := fs.String("overrun", "skip", "what a loop that falls behind does: `skip` (the sensor skips the ticks it overslept, as cyclictest; the controller acts on the newest trigger waiting, dropping older ones), or catchup (every cycle runs, late)")
	hop := fs.String("sensor", "trigger", "how the sensor reaches the controller: `trigger` (a proxy) or send (an 8-byte Send the controller answers at once)")
	ct := fs.String("cyclictest", "auto", "`auto`: run cyclictest when installed; off; or its path")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the tables")
	plotFile := fs.String("plot", "", "also draw the latency histogram into `FILE` (.png or .svg)")
	role := fs.String("role", "", "internal: sensor, controller, actuator, cpu, mem or hammer")
	if help, err := cli.ParsePrivate(fs, args, usage, stdout, more); help || err != nil {
		return err
	}
	if *role == "" && fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; %s", fs.Arg(0), usage)
	}
	if *role != "" {
		var c config
		if err := json.Unmarshal([]byte(os.Getenv("FCLOOP_CONFIG")), &c); err != nil {
			return fmt.Errorf("-role %s: config: %w", *role, err)
		}
		if err := c.check(); err != nil {
			return fmt.Errorf("-role %s: config: %w", *role, err)
		}
		return runRole(*role, c, fs.Args(), stdout)
	}

	c := config{PeriodNS: int64(*period), FIFO: *fifo, GC: *gc, MLock: *mlock, WorkNS: int64(*work), Parent: os.Getpid()}
	switch {
	case *period < 10*time.Microsecond || *period > time.Minute:
		return fmt.Errorf("-period %v: want 10µs to 1m", *period)
	case *dur < *period:
		return fmt.Errorf("-d %v: want at least one period (%v)", *dur, *period)
	case *dur/(*period) > maxCycles || int64(*dur / *period)*bytesPerCycle > sampleLimit():
		n := int64(*dur / *period)
		return fmt.Errorf("-d %v: %d cycles of %v need %d MiB for their samples (%d bytes a cycle), more than the limit of %d MiB (%d cycles, and half the memory available)",
			*dur, n, *period, n*bytesPerCycle>>20, bytesPerCycle, sampleLimit()>>20, maxCycles)
	case ctNeeded(*ct) && *period%time.Microsecond != 0:
		return fmt.Errorf("-period %v: cyclictest runs at whole µs: give a period of whole µs, or -cyclictest off", *period)
	case *fifo < 0 || *fifo > 99:
		return fmt.Errorf("-fifo %d: want 0 (SCHED_OTHER) or 1..99", *fifo)
	case *rtFIFO < -1 || *rtFIFO > 99:
		return fmt.Errorf("-runtime-fifo %d: want 0 (SCHED_OTHER) or 1..99", *rtFIFO)
	case *rtFIFO > 0 && *fifo == 0:
		return fmt.Errorf("-runtime-fifo %d: needs -fifo", *rtFIFO)
	case *work < 0 || *work >= *period:
		return fmt.Errorf("-work %v: want at least 0 and less than the period %v", *work, *period)
	case *hop != "trigger" && *hop != "send":
		return fmt.Errorf("-sensor %q: want trigger or send", *hop)
	case *overrun != "skip" && *overrun != "catchup":
		return fmt.Errorf("-overrun %q: want skip or catchup", *overrun)
	}
	c.SendHop = *hop == "send"
	c.CatchUp = *overrun == "catchup"
	c.Runtime = *rtFIFO
	if c.Runtime < 0 {
		c.Runtime = c.FIFO
	}
	c.Cycles = int(*dur / *period)
	allowed, err := sys.AllowedCPUs()
	if err != nil {
		return err
	}
	c.CPUs = allowed
	if *cpuList != "" {
		if c.CPUs, err = parseCPUs(*cpuList, allowed); err != nil {
			return err
		}
	}
	c.LoadCPUs = c.CPUs
	if *loadCPUList != "" {
		if c.LoadCPUs, err = parseCPUs(*loadCPUList, allowed); err != nil {
			return fmt.Errorf("-load-cpus: %w", err)
		}
	}
	var kinds []string
	if *loads != "" {
		for _, k := range strings.Split(*loads, ",") {
			switch k {
			case "cpu", "mem", "hammer":
				if !contains(kinds, k) {
					kinds = append(kinds, k)
				}
			default:
				return fmt.Errorf("-load %q: want cpu, mem or hammer, comma-separated", k)
			}
		}
	}
	ctPath := ""
	switch *ct {
	case "off":
	case "auto":
		ctPath = lookCyclictest()
	default:
		if st, err := os.Stat(*ct); err != nil || st.IsDir() {
			return fmt.Errorf("-cyclictest %s: no such program", *ct)
		}
		ctPath = *ct
	}
	if *plotFile != "" {
		if err := checkPlotFile(*plotFile); err != nil {
			return err
		}
	}
	// SIGINT and SIGTERM end the run, whatever it waits for.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, c, kinds, ctPath)
	if err != nil {
		return err
	}
	if *plotFile != "" {
		if err := plotHistogram(*plotFile, rep); err != nil {
			return err
		}
	}
	if *asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printReport(stdout, rep)
}

// parseCPUs reads a CPU list such as "1" or "0-1,3", each of which must
// be one this process may run on.
func parseCPUs(s string, allowed []int) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, fmt.Errorf("-cpus %q: want CPU numbers and ranges, such as 1 or 0-1,3", s)
		}
		for cpu := a; cpu <= b; cpu++ {
			if !contains(allowed, cpu) {
				return nil, fmt.Errorf("-cpus %q: CPU %d is not one this process may use (%v)", s, cpu, allowed)
			}
			if !contains(cpus, cpu) {
				cpus = append(cpus, cpu)
			}
		}
	}
	return cpus, nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cpuListText writes cpus as cyclictest's -a takes them: "0,1,3".
func cpuListText(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
