package tools_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// fcloopReport is the part of fcloop -json the tests read.
type fcloopReport struct {
	PeriodNS int64  `json:"period_ns"`
	Cycles   int    `json:"cycles"`
	FIFO     int    `json:"fifo"`
	Runtime  int    `json:"runtime_fifo"`
	Sensor   string `json:"sensor"`
	Overrun  string `json:"overrun"`
	CPUs     []int  `json:"cpus"`
	Load     []struct {
		Kind string `json:"kind"`
		PID  int    `json:"pid"`
	} `json:"load"`
	Received int            `json:"received"`
	Skipped  int            `json:"skipped"`
	Dropped  int            `json:"dropped"`
	Lost     int            `json:"lost"`
	Late     int            `json:"late"`
	Missed   int            `json:"missed"`
	Latency  *fcloopLatency `json:"latency"`
	Stages   *struct {
		Wake    fcloopLatency `json:"wake"`
		Trigger fcloopLatency `json:"trigger"`
		Command fcloopLatency `json:"command"`
		Tail    struct {
			Cycles, Wake, Trigger, Command int
		} `json:"tail"`
	} `json:"stages"`
	Histogram []struct {
		FromNS     int64  `json:"from_ns"`
		ToNS       int64  `json:"to_ns"`
		Count      int    `json:"count"`
		Cyclictest uint64 `json:"cyclictest"`
	} `json:"histogram"`
	Cyclictest *struct {
		Cycles    uint64 `json:"cycles"`
		Threads   int    `json:"threads"`
		Late      uint64 `json:"late"`
		Skipped   uint64 `json:"skipped"`
		Missed    uint64 `json:"missed"`
		MinNS     int64  `json:"min_ns"`
		P999NS    int64  `json:"p999_ns"`
		P999Of3NS int64  `json:"p999_of3_ns"`
		MaxNS     int64  `json:"max_ns"`
	} `json:"cyclictest"`
	VsCyclictest *struct {
		P999    float64 `json:"p999"`
		Max     float64 `json:"max"`
		P999Of3 float64 `json:"p999_of3"`
	} `json:"vs_cyclictest"`
	Hammer *struct {
		Served uint64 `json:"served"`
		Below  uint64 `json:"below_loop"`
	} `json:"hammer"`
}

type fcloopLatency struct {
	MinNS    int64 `json:"min_ns"`
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
	P999NS   int64 `json:"p999_ns"`
	MaxNS    int64 `json:"max_ns"`
}

func (l fcloopLatency) ordered() bool {
	return 0 <= l.MinNS && l.MinNS <= l.MedianNS && l.MedianNS <= l.P99NS && l.P99NS <= l.P999NS && l.P999NS <= l.MaxNS
}

// runFcloop runs fcloop -json with args and checks what must hold of
// any run: as many cycles as the duration holds periods, some received,
// received, skipped, dropped and lost adding up to them, late, skipped,
// dropped and lost to missed, the latencies in order, each stage's within the whole's, the
// tail's stages adding up, and the histogram counting every received
// cycle (and every cyclictest wake-up) once. None of it judges how fast
// the loop is.
func runFcloop(t *testing.T, e *env, cycles int, args ...string) fcloopReport {
	t.Helper()
	r := e.run("", "fcloop", append(args, "-json")...)
	r.ok(t, "fcloop "+strings.Join(args, " "))
	return checkFcloop(t, r.stdout, cycles)
}

// checkFcloop reads fcloop -json's output and checks it as runFcloop
// says.
func checkFcloop(t *testing.T, stdout string, cycles int) fcloopReport {
	t.Helper()
	var got fcloopReport
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("fcloop -json: %v: %q", err, stdout)
	}
	l := got.Latency
	switch {
	case got.Cycles != cycles:
		t.Errorf("cycles %d, want %d", got.Cycles, cycles)
	case got.Received <= 0 || got.Received+got.Skipped+got.Dropped+got.Lost != got.Cycles:
		t.Errorf("received %d + skipped %d + dropped %d + lost %d, want %d cycles, some received", got.Received, got.Skipped, got.Dropped, got.Lost, got.Cycles)
	case got.Missed != got.Late+got.Skipped+got.Dropped+got.Lost || got.Late > got.Received:
		t.Errorf("missed %d, late %d, skipped %d, dropped %d, lost %d: want missed = late + skipped + dropped + lost", got.Missed, got.Late, got.Skipped, got.Dropped, got.Lost)
	case l == nil || got.Stages == nil:
		t.Errorf("no latency or stages in %s", stdout)
	case !l.ordered():
		t.Errorf("latencies out of order: %+v", *l)
	}
	if st := got.Stages; st != nil && l != nil {
		for name, s := range map[string]fcloopLatency{"wake": st.Wake, "trigger": st.Trigger, "command": st.Command} {
			if !s.ordered() || s.MaxNS > l.MaxNS {
				t.Errorf("stage %s %+v: out of order, or beyond the whole's maximum %d", name, s, l.MaxNS)
			}
		}
		if tl := st.Tail; tl.Cycles < 1 || tl.Wake+tl.Trigger+tl.Command != tl.Cycles {
			t.Errorf("tail %+v: want at least one cycle, each in one stage", tl)
		}
	}
	var n int
	var ct uint64
	for i, b := range got.Histogram {
		n += b.Count
		ct += b.Cyclictest
		if i > 0 && b.FromNS != got.Histogram[i-1].ToNS {
			t.Errorf("histogram bucket %d starts at %d, the one before ends at %d", i, b.FromNS, got.Histogram[i-1].ToNS)
		}
	}
	if len(got.Histogram) == 0 || got.Histogram[0].FromNS != 0 || got.Histogram[len(got.Histogram)-1].ToNS != -1 {
		t.Errorf("histogram %+v: want buckets from 0 up, the last open", got.Histogram)
	}
	if n != got.Received {
		t.Errorf("histogram counts %d cycles, %d received", n, got.Received)
	}
	if got.Cyclictest != nil && ct != got.Cyclictest.Cycles {
		t.Errorf("histogram counts %d cyclictest wake-ups, cyclictest made %d", ct, got.Cyclictest.Cycles)
	}
	if got.Cyclictest == nil && ct != 0 {
		t.Errorf("cyclictest counts in the histogram without cyclictest: %d", ct)
	}
	return got
}

// fcloop runs its three processes for the given duration: 200 ms at the
// default 1 kHz are 200 cycles, at 2 ms 100, and with the sensor sending
// instead of triggering too; the table prints the same run for people.
func TestFcloop(t *testing.T) {
	e := newEnv(t)
	got := runFcloop(t, e, 200, "-d", "200ms", "-cyclictest", "off")
	if got.PeriodNS != int64(time.Millisecond) || got.FIFO != 0 || got.Sensor != "trigger" || len(got.Load) != 0 || got.Cyclictest != nil || got.VsCyclictest != nil {
		t.Errorf("fcloop -d 200ms: %+v", got)
	}
	runFcloop(t, e, 100, "-d", "200ms", "-period", "2ms", "-work", "50us", "-cpus", "0", "-cyclictest", "off")
	if got := runFcloop(t, e, 100, "-d", "100ms", "-sensor", "send", "-cyclictest", "off"); got.Sensor != "send" {
		t.Errorf("-sensor send: sensor %q", got.Sensor)
	}

	r := e.run("", "fcloop", "-d", "100ms", "-cyclictest", "off")
	r.ok(t, "fcloop")
	lines := strings.Split(r.stdout, "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^fcloop: 100 cycles of 1ms \(100ms\) on CPUs [0-9,]+, SCHED_OTHER, sensor trigger, overrun skip, load none, gc off, mlock off, work 0s$`),
		regexp.MustCompile(`^cycle latency: from a cycle's scheduled tick to the actuator's receipt of its command$`),
		regexp.MustCompile(`^$`),
		regexp.MustCompile(`^ +CYCLES +MIN +MEDIAN +P99 +P99\.9 +MAX +LATE ≥ 1ms +SKIPPED +DROPPED +LOST$`),
		regexp.MustCompile(`^ +fcloop +[0-9]+( +[0-9.]+ [µm]s){5}( +[0-9]+){4}$`),
		regexp.MustCompile(`^$`),
		regexp.MustCompile(`^ +STAGE +MEDIAN +P99 +P99\.9 +MAX +LARGEST IN TAIL$`),
		regexp.MustCompile(`^ +sensor wake-up( +[0-9.]+ [µm]s){4} +[0-9]+$`),
		regexp.MustCompile(`^ +to controller( +[0-9.]+ [µm]s){4} +[0-9]+$`),
		regexp.MustCompile(`^ +to actuator( +[0-9.]+ [µm]s){4} +[0-9]+$`),
		regexp.MustCompile(`^LARGEST IN TAIL: of the [0-9]+ cycles at or above fcloop's p99\.9, those whose largest part the stage was$`),
		regexp.MustCompile(`^cyclictest: not run`),
		regexp.MustCompile(`^$`),
		regexp.MustCompile(`^ +LATENCY +FCLOOP +%$`),
	}
	if len(lines) < len(want)+1 {
		t.Fatalf("fcloop printed\n%s", r.stdout)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q, want %v", i+1, lines[i], re)
		}
	}
	row := regexp.MustCompile(`^ +[0-9]+[µm]?s?(–[0-9]+[µm]?s| or more) +[0-9]+ +[0-9.]+$`)
	for _, l := range lines[len(want) : len(lines)-1] {
		if !row.MatchString(l) {
			t.Errorf("histogram row %q, want %v", l, row)
		}
	}

	for _, bad := range [][]string{
		{"-period", "0"}, {"-d", "0s"}, {"-fifo", "100"}, {"-load", "disk"}, {"-cpus", "4096"}, {"-cpus", "x"},
		{"-work", "1ms"}, {"-sensor", "pipe"}, {"-plot", "x.gif"}, {"-cyclictest", "/nonexistent"}, {"extra"},
		{"-runtime-fifo", "5"}, {"-fifo", "10", "-runtime-fifo", "100"}, {"-load-cpus", "4096"}, {"-overrun", "drop"},
		// 360 million cycles, 46 GB of samples: more than the machine has.
		{"-d", "1h", "-period", "10us"},
		// cyclictest's -i is in whole µs: 10.5 µs would run it at 10.
		{"-period", "10500ns", "-cyclictest", "/bin/true"},
	} {
		r := e.run("", "fcloop", bad...)
		r.failed(t, "fcloop", bad[0])
		if bad[0] == "-d" && len(bad) > 2 && !regexp.MustCompile(`need [0-9]+ MiB .*limit of [0-9]+ MiB`).MatchString(r.stderr) {
			t.Errorf("fcloop %q: %q, want the memory needed and the limit", bad, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("fcloop %q ran: %q", bad, r.stdout)
		}
	}
}

// A sensor that wakes late skips the ticks it overslept, as cyclictest
// does, instead of running a burst of stale cycles: the sensor stopped
// (SIGSTOP) for 200 ms in the middle of a run skips about 200 ticks,
// each a missed deadline, and the cycle it wakes for is late by about as
// much (or dropped by the controller for a newer one); nothing is lost. With -overrun catchup it skips none: about 200
// cycles are late instead.
func TestFcloopSkips(t *testing.T) {
	for _, overrun := range []string{"skip", "catchup"} {
		t.Run(overrun, func(t *testing.T) {
			got := stall(t, "sensor", 200*time.Millisecond, 2000, "-d", "2s", "-cyclictest", "off", "-overrun", overrun)
			skip := overrun == "skip"
			// The cycle the sensor wakes for reaches the actuator about
			// 200 ms late, unless (skip, a loaded machine) the controller
			// has the next cycle's trigger by the time it takes that one:
			// it then acts on the newer and drops the late one.
			stalled := got.Latency.MaxNS >= 100e6 || (skip && got.Dropped >= 1)
			if (skip && (got.Skipped < 100 || got.Skipped > 1000 || got.Late+got.Dropped < 1)) || (!skip && (got.Skipped != 0 || got.Late < 100)) ||
				got.Lost != 0 || !stalled || got.Overrun != overrun {
				t.Errorf("sensor stopped for 200 ms, -overrun %s (reported %q): skipped %d, late %d, dropped %d, lost %d, max latency %v",
					overrun, got.Overrun, got.Skipped, got.Late, got.Dropped, got.Lost, time.Duration(got.Latency.MaxNS))
			}
		})
	}
}

// A controller stopped (SIGSTOP) for 200 ms while the sensor keeps
// time finds about 200 triggers waiting: with -overrun skip it acts on
// the newest and drops the rest, each a missed deadline, so the stall is
// a late cycle or two, not 200; with -overrun catchup it runs them all,
// late. Nothing is lost either way.
func TestFcloopControllerSkips(t *testing.T) {
	for _, overrun := range []string{"skip", "catchup"} {
		t.Run(overrun, func(t *testing.T) {
			got := stall(t, "controller", 200*time.Millisecond, 2000, "-d", "2s", "-cyclictest", "off", "-overrun", overrun)
			skip := overrun == "skip"
			// Late cycles with skip: the one the stall ends on, and any
			// the machine makes late anyway (under CI's parallel tests,
			// 90 of a 2 s run were): fewer than the triggers dropped,
			// which catchup would have run late.
			if (skip && (got.Dropped < 100 || got.Late >= got.Dropped)) || (!skip && (got.Dropped != 0 || got.Late < 100)) || got.Lost != 0 {
				t.Errorf("controller stopped for 200 ms, -overrun %s: dropped %d, late %d, skipped %d, lost %d", overrun, got.Dropped, got.Late, got.Skipped, got.Lost)
			}
		})
	}
}

// A controller that stops reading for longer than its proxy queue holds
// (2,048 triggers: 205 ms at a 100 µs period; stopped for 500 ms) loses
// the cycles the sensor could not trigger, and fcloop counts them and
// finishes the run; the triggers that waited are dropped for the newest.
func TestFcloopControllerStalls(t *testing.T) {
	got := stall(t, "controller", 500*time.Millisecond, 10000, "-d", "1s", "-period", "100us", "-cyclictest", "off")
	if got.Lost < 1000 || got.Dropped < 1000 || got.Missed < got.Lost+got.Dropped {
		t.Errorf("controller stopped for 500 ms at 100 µs: lost %d, dropped %d, missed %d; want about 2,900 lost and 2,000 dropped", got.Lost, got.Dropped, got.Missed)
	}
}

// stall runs fcloop -json with args, a run of the given cycles, stops
// its child of role (sensor or controller) for d (SIGSTOP, then SIGCONT)
// once the sensor's loop runs, and returns the report, checked as
// runFcloop checks it.
func stall(t *testing.T, role string, d time.Duration, cycles int, args ...string) fcloopReport {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, "fcloop", append(args, "-json")...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.addPID(cmd.Process.Pid)
	defer cmd.Process.Kill()
	// The sensor, once its loop runs: its threads switch a thousand
	// times a second then; 200 switches are past the start-up's and
	// about 100 ms into the run.
	deadline := time.Now().Add(lineTimeout)
	sensor, before := 0, 0
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no sensor running its loop within %v (sensor pid %d)", lineTimeout, sensor)
		}
		if sensor == 0 {
			for _, k := range childrenOf(cmd.Process.Pid) {
				if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k)); strings.Contains(string(b), "-role\x00sensor\x00") {
					sensor, before = k, switchesOf(k)
				}
			}
		} else if switchesOf(sensor) >= before+200 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the sensor's state
	}
	target := sensor
	if role != "sensor" {
		target = 0
		for _, k := range childrenOf(cmd.Process.Pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k)); strings.Contains(string(b), "-role\x00"+role+"\x00") {
				target = k
			}
		}
		if target == 0 {
			t.Fatalf("no %s among fcloop's children", role)
		}
	}
	if err := syscall.Kill(target, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d) // the stall itself, not a wait for a state
	if err := syscall.Kill(target, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fcloop: %v: %s", err, stderr.String())
	}
	return checkFcloop(t, stdout.String(), cycles)
}

// switchesOf is how many times pid's threads have given up their CPU
// (voluntary_ctxt_switches, every thread's), 0 once it is gone.
func switchesOf(pid int) int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(v))
				n += k
			}
		}
	}
	return n
}

// fcloopChildren are the processes now running the fcloop binary built
// for the tests.
func fcloopChildren(t *testing.T) []int {
	t.Helper()
	self := filepath.Join(binDir, "fcloop")
	des, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range des {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isFcloop reports whether pid is (still) a process of the fcloop binary.
func isFcloop(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && exe == filepath.Join(binDir, "fcloop")
}

// -load starts a CPU hog per CPU, a memory churner and a hammer (their
// pids are in the report), and none of them, nor any other fcloop
// process, is left once fcloop has exited. With root the loop runs at
// SCHED_FIFO 10 with its memory locked (not under the race detector,
// whose shadow memory is too large to lock), and -gc runs the garbage
// goroutine.
func TestFcloopLoad(t *testing.T) {
	e := newEnv(t)
	args := []string{"-d", "200ms", "-load", "cpu,mem,hammer", "-gc", "-cyclictest", "off"}
	if os.Geteuid() == 0 {
		args = append(args, "-fifo", "10")
		if !proctest.RaceEnabled() {
			args = append(args, "-mlock")
		}
	}
	got := runFcloop(t, e, 200, args...)
	kinds := map[string]int{}
	for _, l := range got.Load {
		kinds[l.Kind]++
		if l.PID <= 0 {
			t.Errorf("load %s: pid %d", l.Kind, l.PID)
		} else if isFcloop(l.PID) {
			t.Errorf("load %s (pid %d) still runs after fcloop exited", l.Kind, l.PID)
		}
	}
	if kinds["cpu"] != len(got.CPUs) || kinds["mem"] != 1 || kinds["hammer"] != 1 || len(got.CPUs) == 0 {
		t.Errorf("load %+v on CPUs %v: want a cpu hog per CPU, one mem, one hammer", got.Load, got.CPUs)
	}
	if want := got.FIFO; got.Runtime != want {
		t.Errorf("runtime_fifo %d with -fifo %d, want %d", got.Runtime, got.FIFO, want)
	}
	// The hammer's requests carry its SCHED_OTHER priority, so the
	// actuator (inheriting) serves them below the loop's SCHED_FIFO, not
	// at it (a request without a priority is served at the thread's own).
	switch h := got.Hammer; {
	case h == nil || h.Served == 0:
		t.Errorf("hammer %+v: want requests served", h)
	case got.FIFO > 0 && h.Below == 0:
		t.Errorf("hammer %+v: none of its requests served below the loop's SCHED_FIFO %d", h, got.FIFO)
	}
	if left := fcloopChildren(t); len(left) > 0 {
		t.Errorf("fcloop processes left after the run: %v", left)
	}
}

// fcloop killed with SIGKILL (no chance to clean up) takes its loop and
// load processes with it: the kernel kills them (PR_SET_PDEATHSIG). The
// next fcloop removes the FIFO directory it left.
func TestFcloopKilled(t *testing.T) {
	e := newEnv(t)
	// Its FIFO directory, which it cannot remove when killed, goes in
	// a temporary directory the test removes.
	tmp := t.TempDir()
	cmd := e.command(context.Background(), "fcloop", "-d", "60s", "-load", "cpu,mem,hammer", "-cyclictest", "off")
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	p := simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	ncpu := len(allowedCPUs(t))
	want := 3 + ncpu + 2 // sensor, controller, actuator; hogs; mem, hammer
	var kids []int
	deadline := time.Now().Add(lineTimeout)
	for {
		kids = childrenOf(p.PID())
		if len(kids) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling the children's list
	}
	if len(kids) < want {
		t.Fatalf("fcloop started %d children within %v, want %d", len(kids), lineTimeout, want)
	}
	p.Signal(syscall.SIGKILL)
	p.Wait(exitTimeout)
	deadline = time.Now().Add(exitTimeout)
	for {
		var alive []int
		for _, k := range kids {
			if isFcloop(k) {
				alive = append(alive, k)
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, k := range alive {
				syscall.Kill(k, syscall.SIGKILL)
			}
			t.Fatalf("children %v of a killed fcloop still run after %v", alive, exitTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling for their end
	}
	// The FIFO directory it could not remove, the next fcloop removes.
	if left, _ := filepath.Glob(filepath.Join(tmp, "fcloop-*")); len(left) != 1 {
		t.Fatalf("a killed fcloop left %v in its TMPDIR, want its FIFO directory", left)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	again := e.command(ctx, "fcloop", "-d", "20ms", "-cyclictest", "off", "-json")
	again.Env = append(again.Env, "TMPDIR="+tmp)
	if r := e.runCmd(ctx, again, ""); r.code != 0 || r.stderr != "" {
		t.Fatalf("fcloop after a killed one: exit %d, stderr %q", r.code, r.stderr)
	}
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		t.Errorf("the next fcloop left %d entries in TMPDIR, want the killed one's directory removed: %v", len(des), des)
	}
}

// childrenOf lists pid's children, from every one of its threads
// (/proc/PID/task/TID/children).
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(s); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

func allowedCPUs(t *testing.T) []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			var cpus []string
			for _, part := range strings.Split(strings.TrimSpace(v), ",") {
				lo, hi, isRange := strings.Cut(part, "-")
				a, _ := strconv.Atoi(lo)
				z := a
				if isRange {
					z, _ = strconv.Atoi(hi)
				}
				for c := a; c <= z; c++ {
					cpus = append(cpus, strconv.Itoa(c))
				}
			}
			return cpus
		}
	}
	t.Fatal("no Cpus_allowed_list")
	return nil
}

// -plot draws the histogram into a PNG or an SVG that decode as such,
// and leaves nothing else in the directory.
func TestFcloopPlot(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	pngFile, svgFile := filepath.Join(dir, "lat.png"), filepath.Join(dir, "lat.svg")
	r := e.run("", "fcloop", "-d", "100ms", "-cyclictest", "off", "-plot", pngFile)
	r.ok(t, "fcloop -plot png")
	f, err := os.Open(pngFile)
	if err != nil {
		t.Fatalf("fcloop -plot made no %s: %v", pngFile, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", pngFile, err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("%s is %v", pngFile, b)
	}
	r = e.run("", "fcloop", "-d", "100ms", "-cyclictest", "off", "-plot", svgFile)
	r.ok(t, "fcloop -plot svg")
	b, err := os.ReadFile(svgFile)
	if err != nil {
		t.Fatal(err)
	}
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(b, &root); err != nil || root.XMLName.Local != "svg" {
		t.Errorf("%s: root %v (%v), want an svg document", svgFile, root.XMLName, err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 2 {
		t.Errorf("fcloop -plot left %d files in %s, want the two plots", len(des), dir)
	}
}

// With cyclictest installed, fcloop runs it in the same run, one thread
// per CPU for as many wake-ups as it has cycles (the first thread done
// ends them all), and relates the two.
func TestFcloopCyclictest(t *testing.T) {
	if _, err := exec.LookPath("cyclictest"); err != nil {
		why := "cyclictest (Debian rt-tests) is not installed"
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatalf("%s; GOSIMPL_CI=1 requires this test to run", why)
		}
		t.Skip(why)
	}
	e := newEnv(t)
	got := runFcloop(t, e, 200, "-d", "200ms")
	ct := got.Cyclictest
	if ct == nil {
		t.Fatalf("no cyclictest figures: %+v", got)
	}
	// cyclictest ends all its threads when the first has made its 200
	// wake-ups, so the others may have made fewer.
	if ct.Threads != len(got.CPUs) || ct.Cycles < 200 || ct.Cycles > uint64(200*len(got.CPUs)) || ct.MinNS > ct.P999NS || ct.P999NS > ct.P999Of3NS || ct.P999Of3NS > ct.MaxNS {
		t.Errorf("cyclictest %+v on CPUs %v: want 200 to 200 per CPU wake-ups, in order", *ct, got.CPUs)
	}
	if ct.Missed != ct.Late+ct.Skipped {
		t.Errorf("cyclictest missed %d, late %d, skipped %d: want missed = late + skipped (fcloop skips as it does)", ct.Missed, ct.Late, ct.Skipped)
	}
	if ct.P999NS > 0 && (got.VsCyclictest == nil ||
		got.VsCyclictest.P999 != float64(got.Latency.P999NS)/float64(ct.P999NS) ||
		got.VsCyclictest.Max != float64(got.Latency.MaxNS)/float64(ct.MaxNS) ||
		got.VsCyclictest.P999Of3 != float64(got.Latency.P999NS)/float64(ct.P999Of3NS)) {
		t.Errorf("vs_cyclictest %+v, want fcloop's p99.9 and max over cyclictest's (%+v, %+v)", got.VsCyclictest, *got.Latency, *ct)
	}
}

// fcloop interrupted (SIGINT) while cyclictest runs kills cyclictest and
// removes the shared memory object cyclictest leaves behind when killed
// (/dev/shm/cyclictestPID).
func TestFcloopInterrupted(t *testing.T) {
	p, ct, ctPID := startFcloopCyclictest(t)
	p.Signal(syscall.SIGINT)
	p.Wait(exitTimeout)
	shm := fmt.Sprintf("/dev/shm/cyclictest%d", ctPID)
	if _, err := os.Stat(shm); err == nil {
		os.Remove(shm)
		t.Errorf("%s left behind by an interrupted fcloop", shm)
	}
	if syscall.Kill(ctPID, 0) == nil && isProcess(ctPID, ct) {
		t.Errorf("cyclictest (pid %d) still runs after fcloop was interrupted", ctPID)
	}
}

// startFcloopCyclictest starts a 60 s fcloop (its TMPDIR the test's own)
// and waits for the cyclictest it runs beside its loop to have made its
// /dev/shm object; it returns fcloop, cyclictest's path and pid. Without
// cyclictest the test is skipped, or fails under GOSIMPL_CI=1.
func startFcloopCyclictest(t *testing.T) (p *simpltest.Proc, ct string, ctPID int) {
	t.Helper()
	ct, err := exec.LookPath("cyclictest")
	if err != nil {
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatal("cyclictest (Debian rt-tests) is not installed; GOSIMPL_CI=1 requires this test to run")
		}
		t.Skip("cyclictest (Debian rt-tests) is not installed")
	}
	e := newEnv(t)
	cmd := e.command(context.Background(), "fcloop", "-d", "60s")
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	p = simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	deadline := time.Now().Add(lineTimeout)
	for ctPID == 0 {
		for _, k := range childrenOf(p.PID()) {
			_, err := os.Stat(fmt.Sprintf("/dev/shm/cyclictest%d", k))
			if isProcess(k, ct) && err == nil {
				ctPID = k
			}
		}
		if ctPID == 0 && time.Now().After(deadline) {
			t.Fatalf("fcloop started no cyclictest with its /dev/shm object within %v", lineTimeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the children's list
	}
	return p, ct, ctPID
}

// isProcess reports whether pid runs the program exe.
func isProcess(pid int, exe string) bool {
	got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && got == exe
}
