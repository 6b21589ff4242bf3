package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lookCyclictest is cyclictest's path, or "" when it is not installed.
func lookCyclictest() string {
	p, err := exec.LookPath("cyclictest")
	if err != nil {
		return ""
	}
	return p
}

// histLimitUS is the histogram range cyclictest is asked for (-h), in
// µs: 200 periods and at least 200 ms, past the 100 ms stalls this
// project's machines have shown, so that the ticks its threads skip are
// counted exactly (skippedCount) unless two wake-ups overflow it; at
// most 1 s, cyclictest's own cap (HIST_MAX in rt-tests). Later wake-ups
// are counted as overflows; its maximum is exact in any case. cyclictest
// prints every bucket, a line each: 200,000 lines at 1 kHz.
func histLimitUS(periodNS int64) int {
	return min(max(int(200*periodNS/1000), 200000), 1000000)
}

// cyclictestRun is cyclictest running next to the loop.
type cyclictestRun struct {
	cmd      *exec.Cmd
	out, err *os.File // its stdout and stderr, files in the run's directory
	done     chan struct{}
	werr     error
	periodNS int64
	limitUS  int
}

// startCyclictest starts cyclictest for as many wake-ups as the loop has
// cycles (per thread: cyclictest stops every thread when the first has
// made its count, so the others may fall a little short), at its period,
// one thread on each of its CPUs, at its priority
// (SCHED_OTHER without -fifo), with its memory locked if the loop's is,
// printing only its histogram and summary at the end (-q -h) into files
// in dir (not pipes: a cyclictest that outlives fcloop would die of
// SIGPIPE writing them, before removing its shared memory object).
func startCyclictest(path, dir string, c config) (_ *cyclictestRun, err error) {
	r := &cyclictestRun{done: make(chan struct{}), periodNS: c.PeriodNS, limitUS: histLimitUS(c.PeriodNS)}
	if r.out, err = os.Create(filepath.Join(dir, "cyclictest.out")); err != nil {
		return nil, fmt.Errorf("cyclictest: %w", err)
	}
	if r.err, err = os.Create(filepath.Join(dir, "cyclictest.err")); err != nil {
		r.out.Close()
		return nil, fmt.Errorf("cyclictest: %w", err)
	}
	args := []string{"-q", "-h", strconv.Itoa(r.limitUS),
		"-i", strconv.FormatInt(c.PeriodNS/1000, 10), "-l", strconv.Itoa(c.Cycles),
		"-a", cpuListText(c.CPUs), "-t", strconv.Itoa(len(c.CPUs))}
	if c.FIFO > 0 {
		args = append(args, "--policy=fifo", "-p", strconv.Itoa(c.FIFO))
	} else {
		// No -p: with "-p 0" cyclictest 2.4 runs its measuring threads at
		// SCHED_FIFO 2, whatever --policy says (seen with chrt), and its
		// wake-ups then skip the 50 µs timer slack of SCHED_OTHER.
		args = append(args, "--policy=other")
	}
	if c.MLock {
		args = append(args, "-m")
	}
	r.cmd = exec.Command(path, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.err
	// SIGINT, on which cyclictest exits by itself, removing its shared
	// memory object (killed, it leaves /dev/shm/cyclictestPID behind),
	// when fcloop exits, however it exits.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	if err := r.cmd.Start(); err != nil {
		r.out.Close()
		r.err.Close()
		return nil, fmt.Errorf("cyclictest: %w", err)
	}
	go func() {
		r.werr = r.cmd.Wait()
		close(r.done)
	}()
	return r, nil
}

// wait waits up to d for cyclictest to end, or until ctx ends, and reads
// what it printed.
func (r *cyclictestRun) wait(ctx context.Context, d time.Duration) (*ctStats, error) {
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, interrupted(ctx)
	case <-time.After(d):
		return nil, errors.New("cyclictest did not end with the loop")
	}
	if r.werr != nil {
		msg, _ := os.ReadFile(r.err.Name())
		return nil, fmt.Errorf("cyclictest: %v: %s", r.werr, strings.TrimSpace(string(msg[:min(len(msg), 4096)])))
	}
	if _, err := r.out.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("cyclictest's output: %w", err)
	}
	st, err := parseCyclictest(bufio.NewReader(r.out), r.limitUS)
	if err != nil {
		return nil, fmt.Errorf("cyclictest's output: %w", err)
	}
	return st, nil
}

// stop stops cyclictest if it still runs, and reaps it: SIGINT, on which
// it exits by itself, then SIGKILL if it has not within 2 s (a stopped or
// starved cyclictest). cyclictest keeps its statistics in a POSIX shared
// memory object, /dev/shm/cyclictestPID, which it removes only when it
// exits by itself: killed, it leaves it behind, so stop removes it then.
func (r *cyclictestRun) stop() {
	defer r.out.Close()
	defer r.err.Close()
	r.cmd.Process.Signal(syscall.SIGINT)
	r.cmd.Process.Signal(syscall.SIGCONT) // if stopped, to take the SIGINT
	select {
	case <-r.done:
		return
	case <-time.After(2 * time.Second):
	}
	r.cmd.Process.Kill()
	<-r.done
	os.Remove(fmt.Sprintf("/dev/shm/cyclictest%d", r.cmd.Process.Pid))
}

// ctStats is what cyclictest measured, all its threads together.
type ctStats struct {
	Cycles    uint64   // wake-ups, in the histogram and beyond it
	MinUS     int64    // its own minimum
	MaxUS     int64    // its own maximum, exact beyond the histogram
	Hist      []uint64 // wake-ups by latency in whole µs
	Overflows uint64   // wake-ups beyond the histogram
}

// errCyclictest is output parseCyclictest cannot make sense of.
var errCyclictest = errors.New("not cyclictest -q -h output")

// parseCyclictest reads the output of cyclictest -q -h LIMIT: a line per
// µs of latency, "BUCKET COUNT..." with one count per thread, and "#"
// lines, of which it reads "Total", "Min Latencies", "Max Latencies" and
// "Histogram Overflows" (a number per thread each) and skips the others.
// The counts of every thread are added. It checks what it can: a total
// per thread, counts that add up to it (with or without the overflows,
// as cyclictest versions differ), buckets in order below limit.
func parseCyclictest(r io.Reader, limitUS int) (*ctStats, error) {
	var (
		st      = &ctStats{MinUS: -1, MaxUS: -1}
		threads = -1 // count columns, from the first bucket line
		totals  []uint64
		perThr  []uint64 // each thread's bucket sum
		over    []uint64
		sawMin  bool
		sawMax  bool
		lastBkt = -1
		lineNo  int
		bad     = func(format string, a ...any) error {
			return fmt.Errorf("line %d: %s: %w", lineNo, fmt.Sprintf(format, a...), errCyclictest)
		}
		numbers  = func(s string) ([]uint64, error) { return parseUints(strings.Fields(s)) }
		scanner  = bufio.NewScanner(r)
		sawHists bool
	)
	scanner.Buffer(make([]byte, 4096), 1<<20)
	for scanner.Scan() {
		lineNo++
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "#"); ok {
			key, val, ok := strings.Cut(rest, ":")
			if !ok {
				continue
			}
			key = strings.TrimSpace(key)
			var dst *[]uint64
			switch key {
			case "Total":
				dst = &totals
			case "Histogram Overflows":
				dst = &over
			case "Min Latencies", "Max Latencies":
				v, err := numbers(val)
				if err != nil || len(v) == 0 {
					return nil, bad("%s: %q", key, val)
				}
				lo, hi := v[0], v[0]
				for _, x := range v {
					lo, hi = min(lo, x), max(hi, x)
				}
				if key == "Min Latencies" {
					st.MinUS, sawMin = int64(lo), true
				} else {
					st.MaxUS, sawMax = int64(hi), true
				}
				continue
			default:
				continue
			}
			v, err := numbers(val)
			if err != nil || len(v) == 0 {
				return nil, bad("%s: %q", key, val)
			}
			*dst = v
			continue
		}
		v, err := numbers(line)
		if err != nil || len(v) < 2 {
			return nil, bad("want a bucket and its counts, got %q", line)
		}
		if threads < 0 {
			threads = len(v) - 1
			perThr = make([]uint64, threads)
		}
		if len(v)-1 != threads {
			return nil, bad("%d counts, want %d", len(v)-1, threads)
		}
		b := v[0]
		if int(b) != lastBkt+1 || b >= uint64(limitUS) {
			return nil, bad("bucket %d after %d (histogram of %d µs)", b, lastBkt, limitUS)
		}
		lastBkt = int(b)
		sawHists = true
		var sum uint64
		for i, n := range v[1:] {
			var c1, c2 uint64
			perThr[i], c1 = bits.Add64(perThr[i], n, 0)
			sum, c2 = bits.Add64(sum, n, 0)
			if c1|c2 != 0 {
				return nil, bad("counts beyond 2^64")
			}
		}
		st.Hist = append(st.Hist, sum)
	}
	if err := scanner.Err(); err != nil {
		return nil, err
	}
	switch {
	case !sawHists:
		return nil, fmt.Errorf("no histogram: %w", errCyclictest)
	case totals == nil || !sawMin || !sawMax:
		return nil, fmt.Errorf("no Total, Min or Max Latencies: %w", errCyclictest)
	case len(totals) != threads || over != nil && len(over) != threads:
		return nil, fmt.Errorf("%d totals and %d overflow counts for %d threads: %w", len(totals), len(over), threads, errCyclictest)
	}
	if over == nil {
		over = make([]uint64, threads)
	}
	for i := range threads {
		all, c1 := bits.Add64(perThr[i], over[i], 0)
		if perThr[i] != totals[i] && (all != totals[i] || c1 != 0) {
			return nil, fmt.Errorf("thread %d: histogram counts %d and %d overflows, total %d: %w", i, perThr[i], over[i], totals[i], errCyclictest)
		}
		var c2, c3 uint64
		st.Cycles, c2 = bits.Add64(st.Cycles, all, 0)
		st.Overflows, c3 = bits.Add64(st.Overflows, over[i], 0)
		if c1|c2|c3 != 0 {
			return nil, fmt.Errorf("counts beyond 2^64: %w", errCyclictest)
		}
	}
	if st.Cycles == 0 {
		return nil, fmt.Errorf("no wake-ups: %w", errCyclictest)
	}
	if st.Cycles > maxWakeUps {
		return nil, fmt.Errorf("%d wake-ups, more than %d (35 years at 1 kHz): %w", st.Cycles, uint64(maxWakeUps), errCyclictest)
	}
	if st.MinUS > st.MaxUS {
		return nil, fmt.Errorf("minimum %d µs above maximum %d µs: %w", st.MinUS, st.MaxUS, errCyclictest)
	}
	return st, nil
}

// maxWakeUps bounds the wake-ups a histogram may count, so that the
// figures made from it (skippedCount's products) cannot overflow.
const maxWakeUps = 1 << 40

func parseUints(f []string) ([]uint64, error) {
	v := make([]uint64, len(f))
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return nil, err
		}
		v[i] = n
	}
	return v, nil
}

// percentileUS is the latency, in µs, at or below which the fraction q
// of the wake-ups fell (nearest rank); over is true when that rank lies
// beyond the histogram (the value is then the histogram's limit, a
// lower bound).
func (st *ctStats) percentileUS(q float64, limitUS int) (us int64, over bool) {
	rank := max(uint64(math.Ceil(q*float64(st.Cycles))), 1)
	var seen uint64
	for b, n := range st.Hist {
		seen += n
		if seen >= rank {
			return int64(b), false
		}
	}
	return int64(limitUS), true
}

// lateCount counts the wake-ups a period or more late: the buckets from
// the period's µs on, and the overflows when the period is within the
// histogram (limitUS): then every overflow is later than a period. With a
// period beyond the histogram (over 1 s: -h is at most 1 s), an overflow
// may be late or not, and only the maximum tells: the count is then one
// if the maximum is a period or more late, a lower bound.
func (st *ctStats) lateCount(periodNS int64, limitUS int) uint64 {
	var n uint64
	if periodNS <= int64(limitUS)*1000 {
		n = st.Overflows
	} else if st.Overflows > 0 && st.MaxUS*1000 >= periodNS {
		n = 1
	}
	for b := periodNS / 1000; b < int64(len(st.Hist)); b++ {
		n += st.Hist[b]
	}
	return n
}

// skippedCount is how many ticks cyclictest's threads skipped: after a
// wake-up L late it sleeps to the first tick not earlier than the
// wake-up, skipping L/period of them (rounded down; a wake-up is never
// exactly on a later tick at the histogram's 1 µs grain), as fcloop's
// sensor does with -overrun skip. So a stall of many periods is one late
// wake-up to it and many skipped ticks. The like-for-like figure for
// fcloop's missed deadlines is late wake-ups plus skipped ticks with
// -overrun skip, and the skipped ticks alone with -overrun catchup (a
// loop that runs every period late has L/period late cycles, rounded
// down, after a wake-up L late). A wake-up beyond the histogram
// (limitUS) counts limitUS/period, but for one of them, which counts
// max/period: with more than one overflow the count is a lower bound,
// and exact is false.
func (st *ctStats) skippedCount(periodNS int64, limitUS int) (n uint64, exact bool) {
	periodUS := periodNS / 1000
	if periodUS <= 0 {
		return 0, false
	}
	for b := periodUS; b < int64(len(st.Hist)); b++ {
		n += st.Hist[b] * uint64(b/periodUS)
	}
	if st.Overflows > 0 {
		n += (st.Overflows-1)*uint64(int64(limitUS)/periodUS) + uint64(max(st.MaxUS, int64(limitUS))/periodUS)
	}
	return n, st.Overflows <= 1
}
