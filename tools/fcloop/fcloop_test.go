package main

import (
	"errors"
	"math/bits"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// The parser reads cyclictest's real output (testdata/README says how
// it was made): totals, overflows, extremes and the histogram, every
// thread's counts added.
func TestParseCyclictest(t *testing.T) {
	for _, c := range []struct {
		file              string
		cycles, overflows uint64
		minUS, maxUS      int64
		late              uint64 // a period (1 ms) or more
		medianUS, p999US  int64
		p999Beyond        bool
	}{
		{"cyclictest-1thread.txt", 1000, 3, 8, 34932, 0, 0, 0, true},
		{"cyclictest-2threads.txt", 400, 0, 12, 1946, 0, 0, 0, false},
	} {
		f, err := os.Open("testdata/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		st, err := parseCyclictest(f, 2000)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if st.Cycles != c.cycles || st.Overflows != c.overflows || st.MinUS != c.minUS || st.MaxUS != c.maxUS || len(st.Hist) != 2000 {
			t.Errorf("%s: %d cycles, %d overflows, min %d max %d µs, %d buckets; want %d, %d, %d, %d, 2000",
				c.file, st.Cycles, st.Overflows, st.MinUS, st.MaxUS, len(st.Hist), c.cycles, c.overflows, c.minUS, c.maxUS)
		}
		// Cross-check against the histogram read by hand: the first
		// non-empty bucket is the minimum, counts add up.
		var sum, late uint64
		first := -1
		for b, n := range st.Hist {
			sum += n
			if n > 0 && first < 0 {
				first = b
			}
			if b >= 1000 {
				late += n
			}
		}
		if sum+st.Overflows != st.Cycles || int64(first) != st.MinUS {
			t.Errorf("%s: buckets add to %d (+%d overflows, want %d cycles); first bucket %d, min %d", c.file, sum, st.Overflows, st.Cycles, first, st.MinUS)
		}
		if got := st.lateCount(1e6, 2000); got != late+st.Overflows {
			t.Errorf("%s: %d late, want %d", c.file, got, late+st.Overflows)
		}
		med, _ := st.percentileUS(0.5, 2000)
		p99, _ := st.percentileUS(0.99, 2000)
		p999, beyond := st.percentileUS(0.999, 2000)
		if !(st.MinUS <= med && med <= p99 && p99 <= p999 && (beyond || p999 <= st.MaxUS)) {
			t.Errorf("%s: min %d, median %d, p99 %d, p99.9 %d, max %d µs: out of order", c.file, st.MinUS, med, p99, p999, st.MaxUS)
		}
		if beyond != c.p999Beyond {
			t.Errorf("%s: p99.9 beyond the histogram %v, want %v", c.file, beyond, c.p999Beyond)
		}
	}
}

// percentileUS by nearest rank, on a histogram made by hand.
func TestPercentile(t *testing.T) {
	st := &ctStats{Cycles: 1000, Hist: make([]uint64, 100)}
	st.Hist[10] = 500 // ranks 1..500
	st.Hist[20] = 490 // 501..990
	st.Hist[50] = 9   // 991..999
	st.Overflows = 1  // 1000
	for _, c := range []struct {
		q      float64
		us     int64
		beyond bool
	}{{0.5, 10, false}, {0.501, 20, false}, {0.99, 20, false}, {0.999, 50, false}, {1, 100, true}} {
		if us, beyond := st.percentileUS(c.q, 100); us != c.us || beyond != c.beyond {
			t.Errorf("q %v: %d µs (beyond %v), want %d (%v)", c.q, us, beyond, c.us, c.beyond)
		}
	}
	if n := st.lateCount(20000, 100); n != 490+9+1 {
		t.Errorf("late from 20 µs: %d, want 500", n)
	}
	// A period beyond the histogram (over 1 s): an overflow is late only
	// if the maximum says so, one at least; the histogram's buckets are
	// all within the period.
	st.MaxUS = 150
	if n := st.lateCount(200000, 100); n != 0 {
		t.Errorf("late with a 200 µs period, max 150 µs, over a 100 µs histogram: %d, want 0", n)
	}
	st.MaxUS = 250
	if n := st.lateCount(200000, 100); n != 1 {
		t.Errorf("late with a 200 µs period, max 250 µs, over a 100 µs histogram: %d, want 1", n)
	}
}

// skippedCount counts the ticks cyclictest skipped after late wake-ups:
// a wake-up 2.5 periods late skipped 2, one just under a period none; an
// overflow counts the maximum's periods, and a second makes the count a
// lower bound.
func TestSkippedCount(t *testing.T) {
	st := &ctStats{Cycles: 6, Hist: make([]uint64, 20000), MaxUS: 100000}
	st.Hist[10] = 1   // on time
	st.Hist[999] = 1  // just under a period: none skipped
	st.Hist[1000] = 1 // the next tick passed: skipped
	st.Hist[2500] = 1 // the next two
	st.Overflows = 1  // the 100 ms maximum: 100
	if n, exact := st.skippedCount(1e6, 20000); n != 0+0+1+2+100 || !exact {
		t.Errorf("skipped %d (exact %v), want 103 (true)", n, exact)
	}
	st.Overflows = 2 // the other beyond 20 ms: at least 20
	if n, exact := st.skippedCount(1e6, 20000); n != 123 || exact {
		t.Errorf("skipped %d (exact %v), want at least 123 (false)", n, exact)
	}
	if n, _ := st.skippedCount(0, 20000); n != 0 {
		t.Errorf("skipped %d with a period of 0, want 0", n)
	}
}

// cyclictest's missed deadlines, as fcloop's compare: a wake-up 1.5
// periods late is a late wake-up and a skipped tick, two deadlines, to a
// loop that skips as cyclictest does; one late cycle (the next on time)
// to a loop that catches up.
func TestCyclictestMissed(t *testing.T) {
	for overrun, want := range map[string]uint64{"skip": 2, "catchup": 1} {
		r := &report{PeriodNS: 1e6, CPUs: []int{0}, Overrun: overrun}
		r.addLoop([]int64{1000}, []int64{2000}, []int64{3000}, []int64{0})
		st := &ctStats{Cycles: 2, Hist: make([]uint64, 20000), MinUS: 10, MaxUS: 1500}
		st.Hist[10], st.Hist[1500] = 1, 1
		r.addCyclictest(st)
		if ct := r.Cyclictest; ct.Late != 1 || ct.Skipped != 1 || ct.Missed != want || !ct.MissedExact {
			t.Errorf("-overrun %s: late %d, skipped %d, missed %d (exact %v); want 1, 1, %d, exact", overrun, ct.Late, ct.Skipped, ct.Missed, ct.MissedExact, want)
		}
	}
}

// Output that is not what cyclictest -q -h prints is refused, never
// half-read.
func TestParseCyclictestBad(t *testing.T) {
	good, err := os.ReadFile("testdata/cyclictest-2threads.txt")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"empty":           "",
		"no histogram":    "# Total: 000000200\n# Min Latencies: 00001\n# Max Latencies: 00002\n",
		"no total":        "000000 000001\n# Min Latencies: 00000\n# Max Latencies: 00000\n",
		"count mismatch":  strings.Replace(string(good), "# Total: 000000200 000000200", "# Total: 000000201 000000200", 1),
		"thread mismatch": strings.Replace(string(good), "# Total: 000000200 000000200", "# Total: 000000200", 1),
		"bucket skipped":  strings.Replace(string(good), "000008 000000\t000000\n", "", 1),
		"beyond limit":    "000000 000001\n000001 000000\n# Total: 000000001\n# Min Latencies: 00000\n# Max Latencies: 00000\n",
		"not a number":    strings.Replace(string(good), "000009 000000\t000000", "000009 00000x\t000000", 1),
		"min above max":   "000000 000001\n# Total: 000000001\n# Min Latencies: 00009\n# Max Latencies: 00001\n",
		"columns change":  strings.Replace(string(good), "000009 000000\t000000", "000009 000000", 1),
		"no wake-ups":     "000000 000000\n# Total: 000000000\n# Min Latencies: 00000\n# Max Latencies: 00000\n",
		"negative":        "000000 -1\n# Total: 000000000\n# Min Latencies: 00000\n# Max Latencies: 00000\n",
		// Counts whose sum wraps around 2^64 to the total.
		"wrapping": "0 9223372036854775807\n1 9223372036854775807\n2 3\n# Total: 1\n# Min Latencies: 0\n# Max Latencies: 2\n",
		"too many": "000000 1099511627777\n# Total: 1099511627777\n# Min Latencies: 00000\n# Max Latencies: 00000\n",
	} {
		limit := 2000
		if name == "beyond limit" {
			limit = 1
		}
		if st, err := parseCyclictest(strings.NewReader(text), limit); !errors.Is(err, errCyclictest) {
			t.Errorf("%s: %+v, %v; want errCyclictest", name, st, err)
		}
	}
}

// FuzzParseCyclictest: whatever it is given, the parser returns an error
// or figures that hold together, and does not panic. Its seeds are the
// corpus in testdata/fuzz, small ones: with the real outputs of testdata
// (28 and 42 KB, 2,000 histogram lines) as seeds, Go's fuzzer made a
// handful of executions in 20 s. real_2threads_100us is the two-thread
// output cut to its first 100 buckets, the rest counted as overflows.
func FuzzParseCyclictest(f *testing.F) {
	f.Fuzz(func(t *testing.T, text string) {
		st, err := parseCyclictest(strings.NewReader(text), 2000)
		if err != nil {
			return
		}
		sum, carry := st.Overflows, uint64(0)
		for _, n := range st.Hist {
			var c uint64
			sum, c = bits.Add64(sum, n, 0)
			carry |= c
		}
		if st.Cycles == 0 || carry != 0 || sum != st.Cycles || st.MinUS > st.MaxUS || len(st.Hist) > 2000 || st.lateCount(1e6, 2000) > st.Cycles {
			t.Fatalf("accepted %+v", st)
		}
		p50, _ := st.percentileUS(0.5, 2000)
		p999, _ := st.percentileUS(0.999, 2000)
		if p50 > p999 {
			t.Fatalf("median %d above p99.9 %d", p50, p999)
		}
	})
}

// addLoop: percentiles by nearest rank, late, skipped and lost cycles,
// the stages and the histogram, on times made by hand.
func TestAddLoop(t *testing.T) {
	r := &report{PeriodNS: 1e6, CPUs: []int{0}}
	wake, ctl, act := make([]int64, 1000), make([]int64, 1000), make([]int64, 1000)
	for i := range act {
		act[i] = int64(i+1) * 1000 // 1 µs .. 1000 µs
		wake[i] = act[i] / 4       // a quarter waking, a quarter to the controller
		ctl[i] = act[i] / 2
	}
	act[0], ctl[0] = -1, -1                     // lost
	act[2], ctl[2], wake[2] = -1, -1, skippedNS // skipped
	act[1], ctl[1], wake[1] = 300e6, 1e6, 500e3 // 300 ms: late, beyond 200 ms; the command the most of it
	r.addLoop(wake, ctl, act, make([]int64, len(act)))
	// 998 received, nearest rank: the 499th, 989th and 998th.
	want := latency{MinNS: 4000, MedianNS: 502000, P99NS: 992000, P999NS: 300e6, MaxNS: 300e6}
	if r.Received != 998 || r.Lost != 1 || r.Skipped != 1 || r.Late != 2 || r.Missed != 4 || r.Latency != want {
		t.Errorf("received %d lost %d skipped %d late %d missed %d latency %+v; want 998, 1, 1, 2, 4, %+v", r.Received, r.Lost, r.Skipped, r.Late, r.Missed, r.Latency, want)
	}
	// Stages: wake-ups 1..250 µs by 0.25 µs and 500 µs; the tail (at or above the
	// p99.9, 300 ms) is cycle 1 alone, its command the largest part.
	if w := r.Stages.Wake; w.MinNS != 1000 || w.MaxNS != 500e3 || w.MedianNS != 125500 {
		t.Errorf("wake stage %+v", w)
	}
	if c := r.Stages.Command; c.MaxNS != 299e6 || c.MinNS != 2000 {
		t.Errorf("command stage %+v", c)
	}
	if tail := r.Stages.Tail; tail != (tailStage{Cycles: 1, Command: 1}) {
		t.Errorf("tail %+v, want 1 cycle, its command the largest", tail)
	}
	counts := map[int64]int{}
	for _, b := range r.Histogram {
		counts[b.FromNS] = b.Count
	}
	// 4..9 µs: 6; 10..19: 10; 1000 µs falls in 1 ms–2 ms; 300 ms in the last.
	if counts[0] != 6 || counts[10e3] != 10 || counts[1e6] != 1 || counts[200e6] != 1 || r.Histogram[len(r.Histogram)-1].ToNS != -1 {
		t.Errorf("histogram %+v", r.Histogram)
	}
	var b strings.Builder
	if err := printReport(&b, r); err != nil || !strings.Contains(b.String(), "200ms or more") || !strings.Contains(b.String(), "of the 1 cycles at or above") {
		t.Errorf("printReport: %v\n%s", err, b.String())
	}
}

// The triggers a controller dropped are the cycles triggered and not
// received just before the cycle it dropped them for: as many as the
// command says, any more are lost; a skipped tick among them stays
// skipped, and cycles never received after the last command are lost.
func TestAddLoopDropped(t *testing.T) {
	const n = 12
	wake, ctl, act, drops := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range act {
		wake[i], ctl[i], act[i] = 10e3, 20e3, 30e3
	}
	for _, k := range []int{1, 2, 3, 5, 6, 9, 11} {
		act[k], ctl[k] = -1, -1
	}
	wake[2] = skippedNS
	drops[4] = 2   // cycles 1 and 3 (2 was skipped)
	drops[7] = 1   // one of 5 and 6: the other lost
	drops[10] = 5  // more than cycle 9: one dropped, never more
	act[4] = 1.5e6 // cycle 4, acted on late
	r := &report{PeriodNS: 1e6, CPUs: []int{0}}
	r.addLoop(wake, ctl, act, drops)
	// Received 0, 4, 7, 8, 10; skipped 2; dropped 1, 3, one of 5 and 6, 9;
	// lost the other of 5 and 6, and 11.
	if r.Received != 5 || r.Skipped != 1 || r.Dropped != 4 || r.Lost != 2 || r.Late != 1 || r.Missed != 8 {
		t.Errorf("received %d skipped %d dropped %d lost %d late %d missed %d; want 5, 1, 4, 2, 1, 8", r.Received, r.Skipped, r.Dropped, r.Lost, r.Late, r.Missed)
	}
	var b strings.Builder
	if err := printReport(&b, r); err != nil || !regexp.MustCompile(`(?m)^ +fcloop +5( +[0-9.]+ [µm]s){5} +1 +1 +4 +2$`).MatchString(b.String()) {
		t.Errorf("printReport: %v\n%s", err, b.String())
	}
}

// nextTick skips the ticks a sensor overslept, as cyclictest does: those
// earlier than its wake-up, not one equal to it.
func TestNextTick(t *testing.T) {
	const t0, period = 1000, 100
	for _, c := range []struct {
		k    int
		woke int64
		want int
	}{
		{0, 1000, 1},           // on time
		{0, 1099, 1},           // late, before the next tick
		{0, 1100, 1},           // at the next tick: not skipped
		{0, 1101, 2},           // after it: skipped
		{3, 1300 + 250, 6},     // 2.5 periods late: 4 and 5 skipped
		{3, 1300 + 10001, 104}, // 100 ms late
	} {
		if got := nextTick(t0, period, c.k, c.woke); got != c.want {
			t.Errorf("cycle %d woke at %d: next %d, want %d", c.k, c.woke, got, c.want)
		}
	}
}

// addCyclictest: cyclictest's p99.9, and the latency one wake-up in
// 3,000 reaches (the p99.9 of three wake-ups in a row), from its
// histogram, and fcloop's p99.9 against each.
func TestAddCyclictest(t *testing.T) {
	r := &report{PeriodNS: 1e6, CPUs: []int{0, 1}}
	r.addLoop([]int64{1000}, []int64{2000}, []int64{1.2e6}, []int64{0}) // one cycle, 1.2 ms
	st := &ctStats{Cycles: 10000, Hist: make([]uint64, 20000), MinUS: 10, MaxUS: 900}
	st.Hist[10] = 9989 // ranks 1..9989
	st.Hist[300] = 7   // 9990..9996: the p99.9
	st.Hist[600] = 3   // 9997..9999: one in 3,000 (rank 9997)
	st.Hist[900] = 1
	r.addCyclictest(st)
	ct := r.Cyclictest
	if ct.P999NS != 300e3 || ct.P999Of3NS != 600e3 || ct.P999Of3Beyond || ct.BeyondHistogram {
		t.Errorf("cyclictest p99.9 %d, one in 3,000 %d (beyond %v, %v); want 300 µs, 600 µs", ct.P999NS, ct.P999Of3NS, ct.P999Of3Beyond, ct.BeyondHistogram)
	}
	if v := r.VsCyclictest; v == nil || v.P999 != 4 || v.P999Of3 != 2 {
		t.Errorf("ratios %+v, want p99.9 4x, against one in 3,000 2x", v)
	}
	var b strings.Builder
	if err := printReport(&b, r); err != nil || !strings.Contains(b.String(), "p99.967 (600.0 µs, one wake-up in 3,000: three independent wake-ups' p99.9): 2.00x") {
		t.Errorf("printReport: %v\n%s", err, b.String())
	}
}

// The tail's stages: of three cycles at the p99.9, each made late by a
// different stage, each stage counts one; the stages' figures are their
// own parts (the trigger's maximum is its one late hop).
func TestTailStages(t *testing.T) {
	r := &report{PeriodNS: 1e6, CPUs: []int{0}}
	wake, ctl, act := make([]int64, 1000), make([]int64, 1000), make([]int64, 1000)
	for i := range act {
		wake[i], ctl[i], act[i] = 10e3, 20e3, 30e3
	}
	wake[10], ctl[10], act[10] = 4.9e6, 4.95e6, 5e6 // the sensor woke late
	ctl[20], act[20] = 4.95e6, 5e6                  // the trigger took long
	act[30] = 5e6                                   // the command did
	r.addLoop(wake, ctl, act, make([]int64, len(act)))
	if tail := r.Stages.Tail; tail != (tailStage{Cycles: 3, Wake: 1, Trigger: 1, Command: 1}) || r.Latency.P999NS != 5e6 {
		t.Errorf("tail %+v at p99.9 %d, want 3 cycles, one each", tail, r.Latency.P999NS)
	}
	if w, tr, c := r.Stages.Wake, r.Stages.Trigger, r.Stages.Command; w.MaxNS != 4.9e6 || tr.MaxNS != 4.94e6 || tr.MedianNS != 10e3 || c.MaxNS != 4.98e6 || c.MinNS != 10e3 {
		t.Errorf("stages: wake %+v, trigger %+v, command %+v", w, tr, c)
	}
}
