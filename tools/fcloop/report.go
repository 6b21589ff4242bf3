package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is one run's result, as -json prints it; times in nanoseconds.
type report struct {
	PeriodNS int64      `json:"period_ns"`
	Cycles   int        `json:"cycles"`       // scheduled: duration/period
	FIFO     int        `json:"fifo"`         // 0: SCHED_OTHER
	Runtime  int        `json:"runtime_fifo"` // the other threads' SCHED_FIFO (0: SCHED_OTHER)
	CPUs     []int      `json:"cpus"`
	LoadCPUs []int      `json:"load_cpus"`
	GC       bool       `json:"gc"`
	MLock    bool       `json:"mlock"`
	WorkNS   int64      `json:"work_ns"`
	Sensor   string     `json:"sensor"`  // trigger or send
	Overrun  string     `json:"overrun"` // skip or catchup
	Load     []loadProc `json:"load"`

	Received int `json:"received"` // cycles whose command reached the actuator
	Skipped  int `json:"skipped"`  // ticks the sensor skipped, having overslept them
	Dropped  int `json:"dropped"`  // triggers the controller dropped for a newer one (-overrun skip)
	Lost     int `json:"lost"`     // cycles neither received, skipped nor dropped
	Late     int `json:"late"`     // received a period or more after their tick
	Missed   int `json:"missed"`   // missed deadlines: late + skipped + dropped + lost

	Latency   latency  `json:"latency"` // of the received cycles
	Stages    stages   `json:"stages"`  // the same, stage by stage
	Histogram []bucket `json:"histogram"`

	// the hammer's requests (-load hammer), as the actuator served them
	Hammer *hammerStats `json:"hammer,omitempty"`

	Cyclictest *ctReport `json:"cyclictest,omitempty"` // absent when not run
	// fcloop's p99.9 and max as multiples of cyclictest's (absent when
	// cyclictest did not run or measured 0 µs)
	VsCyclictest *ratios `json:"vs_cyclictest,omitempty"`
}

// loadProc is a background load process (its pid, for checking that it
// is gone after the run).
type loadProc struct {
	Kind string `json:"kind"`
	PID  int    `json:"pid"`
}

type latency struct {
	MinNS    int64 `json:"min_ns"`
	MedianNS int64 `json:"median_ns"`
	P99NS    int64 `json:"p99_ns"`
	P999NS   int64 `json:"p999_ns"`
	MaxNS    int64 `json:"max_ns"`
}

// stages are the parts of the received cycles' latency: the sensor's
// wake-up after the tick (what cyclictest measures of its own), the
// trigger (or Send) from the sensor awake to the controller's handler,
// and the command from there, the controller's work included, to the
// actuator's handler. Tail counts, of the cycles at or above the loop's
// p99.9, those whose largest part each stage was.
type stages struct {
	Wake    latency   `json:"wake"`
	Trigger latency   `json:"trigger"`
	Command latency   `json:"command"`
	Tail    tailStage `json:"tail"`
}

type tailStage struct {
	Cycles  int `json:"cycles"`
	Wake    int `json:"wake"`
	Trigger int `json:"trigger"`
	Command int `json:"command"`
}

// bucket counts cycles (and cyclictest's wake-ups) of latency from
// FromNS up to, not including, ToNS (-1: no upper bound).
type bucket struct {
	FromNS     int64  `json:"from_ns"`
	ToNS       int64  `json:"to_ns"`
	Count      int    `json:"count"`
	Cyclictest uint64 `json:"cyclictest"`
}

type ctReport struct {
	Cycles  uint64 `json:"cycles"` // wake-ups, every thread's
	Threads int    `json:"threads"`
	Late    uint64 `json:"late"` // wake-ups a period or more late
	// ticks skipped after late wake-ups (see skippedCount), and the
	// deadlines missed that compare with fcloop's under its -overrun:
	// late + skipped (skip), or skipped (catchup); both lower bounds
	// unless missed_exact
	Skipped     uint64 `json:"skipped"`
	Missed      uint64 `json:"missed"`
	MissedExact bool   `json:"missed_exact"`
	Overflows   uint64 `json:"overflows"`
	latency
	// the latency one wake-up in 3,000 reaches (its p99.967): what three
	// wake-ups late independently of each other, each like cyclictest's,
	// reach once in 1,000 (a cycle of fcloop has three: the sensor's,
	// the controller's, the actuator's); a stall that delays all three
	// at once is one late wake-up, so the loop's floor lies between this
	// and cyclictest's p99.9
	P999Of3NS     int64 `json:"p999_of3_ns"`
	P999Of3Beyond bool  `json:"p999_of3_beyond,omitempty"` // as BeyondHistogram, for P999Of3NS
	// the p99.9 (or p99) lies beyond the histogram: the value given is
	// the histogram's limit, a lower bound
	BeyondHistogram bool `json:"beyond_histogram,omitempty"`
}

type ratios struct {
	P999    float64 `json:"p999"`
	Max     float64 `json:"max"`
	P999Of3 float64 `json:"p999_of3"` // fcloop's p99.9 over cyclictest's p999_of3_ns
}

// bucketBounds are the histogram's bounds below limit, then limit: the
// last bucket is from limit up, where cyclictest's overflows fall.
func bucketBounds(limitNS int64) []int64 {
	bounds := []int64{0}
	for _, b := range []time.Duration{10 * time.Microsecond, 20 * time.Microsecond, 50 * time.Microsecond,
		100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
		time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		if int64(b) < limitNS {
			bounds = append(bounds, int64(b))
		}
	}
	return append(bounds, limitNS)
}

// bucketOf is the index of the bucket of latency ns.
func bucketOf(bounds []int64, ns int64) int {
	i, found := slices.BinarySearch(bounds, ns)
	if found {
		return i
	}
	return i - 1
}

// addLoop fills in the loop's figures from each cycle's times, in
// nanoseconds after its tick: wake, when the sensor woke (skippedNS: it
// skipped the tick); ctl, when the controller's handler had it; act,
// when the actuator's did (-1 for both: never); and drops, for a cycle
// received, how many older triggers the controller dropped for it. Those
// are the cycles the sensor triggered since the one received before
// (commands arrive in order): as many of them as drops says are
// dropped, any others lost.
func (r *report) addLoop(wake, ctl, act, drops []int64) {
	var got, wakes, triggers, commands []int64
	pending := 0 // triggered, not received, since the last received
	for k, l := range act {
		switch {
		case l < 0 && wake[k] == skippedNS:
			r.Skipped++
			continue
		case l < 0:
			pending++
			continue
		}
		d := int(min(max(drops[k], 0), int64(pending)))
		r.Dropped += d
		r.Lost += pending - d
		pending = 0
		got = append(got, l)
		if l >= r.PeriodNS {
			r.Late++
		}
		if parts, ok := stagesOf(wake[k], ctl[k], l); ok {
			wakes = append(wakes, parts[0])
			triggers = append(triggers, parts[1])
			commands = append(commands, parts[2])
		}
	}
	r.Lost += pending
	r.Received = len(got)
	r.Missed = r.Late + r.Skipped + r.Dropped + r.Lost
	r.Latency = latencyOf(got)
	if p999 := r.Latency.P999NS; len(got) > 0 {
		for k, l := range act {
			parts, ok := stagesOf(wake[k], ctl[k], l)
			if l < p999 || !ok {
				continue
			}
			r.Stages.Tail.Cycles++
			switch {
			case parts[0] >= parts[1] && parts[0] >= parts[2]:
				r.Stages.Tail.Wake++
			case parts[1] >= parts[2]:
				r.Stages.Tail.Trigger++
			default:
				r.Stages.Tail.Command++
			}
		}
	}
	r.Stages.Wake, r.Stages.Trigger, r.Stages.Command = latencyOf(wakes), latencyOf(triggers), latencyOf(commands)
	bounds := bucketBounds(int64(histLimitUS(r.PeriodNS)) * 1000)
	r.Histogram = make([]bucket, len(bounds))
	for i, b := range bounds {
		r.Histogram[i] = bucket{FromNS: b, ToNS: -1}
		if i+1 < len(bounds) {
			r.Histogram[i].ToNS = bounds[i+1]
		}
	}
	for _, l := range got {
		r.Histogram[bucketOf(bounds, l)].Count++
	}
}

// stagesOf splits a cycle's latency act into its stages, from the
// sensor's wake-up wake and the controller's receipt ctl (all after the
// tick): false if the three are not in that order (a cycle not received,
// or skipped).
func stagesOf(wake, ctl, act int64) ([3]int64, bool) {
	if !(0 <= wake && wake <= ctl && ctl <= act) {
		return [3]int64{}, false
	}
	return [3]int64{wake, ctl - wake, act - ctl}, true
}

// latencyOf is the figures of ns, which it sorts (zero when empty).
func latencyOf(ns []int64) latency {
	if len(ns) == 0 {
		return latency{}
	}
	slices.Sort(ns)
	return latency{MinNS: ns[0], MedianNS: rank(ns, 0.5), P99NS: rank(ns, 0.99), P999NS: rank(ns, 0.999), MaxNS: ns[len(ns)-1]}
}

// rank is the nearest-rank q quantile of sorted.
func rank(sorted []int64, q float64) int64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// addCyclictest adds cyclictest's figures and the ratios.
func (r *report) addCyclictest(st *ctStats) {
	limit := histLimitUS(r.PeriodNS)
	med, o1 := st.percentileUS(0.5, limit)
	p99, o2 := st.percentileUS(0.99, limit)
	p999, o3 := st.percentileUS(0.999, limit)
	p999of3, o4 := st.percentileUS(1-0.001/3, limit)
	skipped, exact := st.skippedCount(r.PeriodNS, limit)
	late := st.lateCount(r.PeriodNS, limit)
	missed := late + skipped
	if r.Overrun == "catchup" {
		missed = skipped
	}
	ct := &ctReport{Cycles: st.Cycles, Threads: len(r.CPUs), Late: late, Skipped: skipped, Missed: missed, MissedExact: exact, Overflows: st.Overflows,
		latency:         latency{MinNS: st.MinUS * 1000, MedianNS: med * 1000, P99NS: p99 * 1000, P999NS: p999 * 1000, MaxNS: st.MaxUS * 1000},
		P999Of3NS:       p999of3 * 1000,
		P999Of3Beyond:   o4,
		BeyondHistogram: o1 || o2 || o3}
	r.Cyclictest = ct
	bounds := bucketBounds(int64(limit) * 1000)
	for us, n := range st.Hist {
		r.Histogram[bucketOf(bounds, int64(us)*1000)].Cyclictest += n
	}
	r.Histogram[len(r.Histogram)-1].Cyclictest += st.Overflows
	if ct.P999NS > 0 && ct.MaxNS > 0 {
		r.VsCyclictest = &ratios{P999: float64(r.Latency.P999NS) / float64(ct.P999NS), Max: float64(r.Latency.MaxNS) / float64(ct.MaxNS)}
		if ct.P999Of3NS > 0 {
			r.VsCyclictest.P999Of3 = float64(r.Latency.P999NS) / float64(ct.P999Of3NS)
		}
	}
}

// durText writes ns as people read latencies: µs below a millisecond.
func durText(ns int64) string {
	if ns < int64(time.Millisecond) {
		return fmt.Sprintf("%.1f µs", float64(ns)/1e3)
	}
	return fmt.Sprintf("%.2f ms", float64(ns)/1e6)
}

// boundText is a bucket bound, short: 10µs, 1ms, 1s.
func boundText(ns int64) string {
	switch {
	case ns == 0:
		return "0"
	case ns < int64(time.Millisecond):
		return fmt.Sprintf("%dµs", ns/1e3)
	case ns < int64(time.Second):
		return fmt.Sprintf("%dms", ns/1e6)
	}
	return fmt.Sprintf("%ds", ns/1e9)
}

func (b bucket) label() string {
	if b.ToNS < 0 {
		return boundText(b.FromNS) + " or more"
	}
	return boundText(b.FromNS) + "–" + boundText(b.ToNS)
}

// printReport prints the run's settings, the latency table and the
// histogram.
func printReport(w io.Writer, r *report) error {
	prio := "SCHED_OTHER"
	if r.FIFO > 0 {
		prio = fmt.Sprintf("SCHED_FIFO %d", r.FIFO)
		if r.Runtime > 0 {
			prio += fmt.Sprintf(" (runtime %d)", r.Runtime)
		}
	}
	var kinds []string
	for _, l := range r.Load {
		if !slices.Contains(kinds, l.Kind) {
			kinds = append(kinds, l.Kind)
		}
	}
	load := "none"
	if len(kinds) > 0 {
		load = strings.Join(kinds, ",")
		if !slices.Equal(r.LoadCPUs, r.CPUs) {
			load += " on CPUs " + cpuListText(r.LoadCPUs)
		}
	}
	onOff := map[bool]string{true: "on", false: "off"}
	period := time.Duration(r.PeriodNS)
	fmt.Fprintf(w, "fcloop: %d cycles of %v (%v) on CPUs %s, %s, sensor %s, overrun %s, load %s, gc %s, mlock %s, work %v\n",
		r.Cycles, period, time.Duration(r.Cycles)*period, cpuListText(r.CPUs), prio, r.Sensor, r.Overrun, load, onOff[r.GC], onOff[r.MLock], time.Duration(r.WorkNS))
	fmt.Fprintf(w, "cycle latency: from a cycle's scheduled tick to the actuator's receipt of its command\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tCYCLES\tMIN\tMEDIAN\tP99\tP99.9\tMAX\tLATE ≥ %v\tSKIPPED\tDROPPED\tLOST\t\n", period)
	l := r.Latency
	fmt.Fprintf(tw, "fcloop\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", r.Received, durText(l.MinNS), durText(l.MedianNS), durText(l.P99NS), durText(l.P999NS), durText(l.MaxNS), r.Late, r.Skipped, r.Dropped, r.Lost)
	if ct := r.Cyclictest; ct != nil {
		ge := ""
		if ct.BeyondHistogram {
			ge = "≥ "
		}
		atLeast := ""
		if !ct.MissedExact {
			atLeast = "≥ "
		}
		// cyclictest has no controller to drop triggers, nor messages to
		// lose: DROPPED and LOST are "-".
		fmt.Fprintf(tw, "cyclictest\t%d\t%s\t%s\t%s\t%s%s\t%s\t%d\t%s%d\t-\t-\t\n", ct.Cycles, durText(ct.MinNS), durText(ct.MedianNS), durText(ct.P99NS), ge, durText(ct.P999NS), durText(ct.MaxNS), ct.Late, atLeast, ct.Skipped)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	st := r.Stages
	fmt.Fprintf(tw, "STAGE\tMEDIAN\tP99\tP99.9\tMAX\tLARGEST IN TAIL\t\n")
	for _, row := range []struct {
		name string
		l    latency
		tail int
	}{{"sensor wake-up", st.Wake, st.Tail.Wake}, {"to controller", st.Trigger, st.Tail.Trigger}, {"to actuator", st.Command, st.Tail.Command}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", row.name, durText(row.l.MedianNS), durText(row.l.P99NS), durText(row.l.P999NS), durText(row.l.MaxNS), row.tail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "LARGEST IN TAIL: of the %d cycles at or above fcloop's p99.9, those whose largest part the stage was\n", st.Tail.Cycles)
	if r.VsCyclictest != nil {
		fmt.Fprintf(w, "fcloop / cyclictest: p99.9 %.2fx, max %.2fx\n", r.VsCyclictest.P999, r.VsCyclictest.Max)
		if ct := r.Cyclictest; ct.P999Of3NS > 0 {
			ge := ""
			if ct.P999Of3Beyond {
				ge = "≥ "
			}
			fmt.Fprintf(w, "fcloop's p99.9 / cyclictest's p99.967 (%s%s, one wake-up in 3,000: three independent wake-ups' p99.9): %.2fx\n", ge, durText(ct.P999Of3NS), r.VsCyclictest.P999Of3)
		}
	}
	if ct := r.Cyclictest; ct != nil {
		atLeast := ""
		if !ct.MissedExact {
			atLeast = "at least "
		}
		how := "its late wake-ups and the ticks it skipped"
		if r.Overrun == "catchup" {
			how = "the ticks it skipped, each a late cycle to a loop that catches up"
		}
		fmt.Fprintf(w, "missed deadlines: fcloop %d (late, skipped, dropped and lost), cyclictest %s%d (%s)\n", r.Missed, atLeast, ct.Missed, how)
	}
	if r.Cyclictest == nil {
		fmt.Fprintf(w, "cyclictest: not run (not installed, or -cyclictest off)\n")
	}
	if h := r.Hammer; h != nil && r.FIFO > 0 {
		fmt.Fprintf(w, "hammer: %d requests served by the actuator, %d of them below the loop's priority (inherited from the hammer)\n", h.Served, h.Below)
	} else if h != nil {
		fmt.Fprintf(w, "hammer: %d requests served by the actuator\n", h.Served)
	}
	fmt.Fprintln(w)

	// The histogram, from the first bucket anything fell in to the last.
	first, last := -1, -1
	for i, b := range r.Histogram {
		if b.Count > 0 || b.Cyclictest > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if r.Cyclictest != nil {
		fmt.Fprintf(tw, "LATENCY\tFCLOOP\t%%\tCYCLICTEST\t%%\t\n")
	} else {
		fmt.Fprintf(tw, "LATENCY\tFCLOOP\t%%\t\n")
	}
	for _, b := range r.Histogram[first : last+1] {
		fmt.Fprintf(tw, "%s\t%d\t%s\t", b.label(), b.Count, pct(uint64(b.Count), uint64(r.Received)))
		if r.Cyclictest != nil {
			fmt.Fprintf(tw, "%d\t%s\t", b.Cyclictest, pct(b.Cyclictest, r.Cyclictest.Cycles))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// pct is n as a percentage of of, with the precision small tails need.
func pct(n, of uint64) string {
	if of == 0 || n == 0 {
		return "0"
	}
	p := 100 * float64(n) / float64(of)
	switch {
	case p >= 1:
		return fmt.Sprintf("%.1f", p)
	case p >= 0.01:
		return fmt.Sprintf("%.2f", p)
	}
	return fmt.Sprintf("%.4f", p)
}
