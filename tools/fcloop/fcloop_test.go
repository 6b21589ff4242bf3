package main

import (
	"errors"
	"os"
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
		if got := st.lateCount(1e6); got != late+st.Overflows {
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
	if n := st.lateCount(20000); n != 490+9+1 {
		t.Errorf("late from 20 µs: %d, want 500", n)
	}
}

// missedCount counts the periods a late wake-up overslept, which
// cyclictest skips: a wake-up 2.5 periods late missed 2 deadlines, one
// just under a period none; an overflow counts the maximum's periods,
// and a second makes the count a lower bound.
func TestMissedCount(t *testing.T) {
	st := &ctStats{Cycles: 6, Hist: make([]uint64, 20000), MaxUS: 100000}
	st.Hist[10] = 1   // on time
	st.Hist[999] = 1  // just under a period: no deadline missed
	st.Hist[1000] = 1 // its own
	st.Hist[2500] = 1 // its own and the next
	st.Overflows = 1  // the 100 ms maximum: 100
	if n, exact := st.missedCount(1e6, 20000); n != 0+0+1+2+100 || !exact {
		t.Errorf("missed %d (exact %v), want 103 (true)", n, exact)
	}
	st.Overflows = 2 // the other beyond 20 ms: at least 20
	if n, exact := st.missedCount(1e6, 20000); n != 123 || exact {
		t.Errorf("missed %d (exact %v), want at least 123 (false)", n, exact)
	}
	if n, _ := st.missedCount(0, 20000); n != 0 {
		t.Errorf("missed %d with a period of 0, want 0", n)
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
// or figures that hold together, and does not panic.
func FuzzParseCyclictest(f *testing.F) {
	for _, file := range []string{"cyclictest-1thread.txt", "cyclictest-2threads.txt"} {
		b, err := os.ReadFile("testdata/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		st, err := parseCyclictest(strings.NewReader(text), 2000)
		if err != nil {
			return
		}
		var sum uint64
		for _, n := range st.Hist {
			sum += n
		}
		if st.Cycles == 0 || sum+st.Overflows != st.Cycles || st.MinUS > st.MaxUS || len(st.Hist) > 2000 {
			t.Fatalf("accepted %+v", st)
		}
		p50, _ := st.percentileUS(0.5, 2000)
		p999, _ := st.percentileUS(0.999, 2000)
		if p50 > p999 {
			t.Fatalf("median %d above p99.9 %d", p50, p999)
		}
	})
}

// addLoop: percentiles by nearest rank, late and lost cycles, and the
// histogram, on latencies made by hand.
func TestAddLoop(t *testing.T) {
	r := &report{PeriodNS: 1e6, CPUs: []int{0}}
	lat := make([]int64, 1000)
	for i := range lat {
		lat[i] = int64(i+1) * 1000 // 1 µs .. 1000 µs
	}
	lat[0] = -1   // lost
	lat[1] = 30e6 // 30 ms: late, beyond 20 ms
	r.addLoop(lat)
	// 999 received, nearest rank: the 500th, 990th and 999th.
	want := latency{MinNS: 3000, MedianNS: 502000, P99NS: 992000, P999NS: 30e6, MaxNS: 30e6}
	if r.Received != 999 || r.Lost != 1 || r.Late != 2 || r.Missed != 3 || r.Latency != want {
		t.Errorf("received %d lost %d late %d missed %d latency %+v; want 999, 1, 2, 3, %+v", r.Received, r.Lost, r.Late, r.Missed, r.Latency, want)
	}
	counts := map[int64]int{}
	for _, b := range r.Histogram {
		counts[b.FromNS] = b.Count
	}
	// 3..9 µs: 7; 10..19: 10; 1000 µs falls in 1 ms–2 ms; 30 ms in the last.
	if counts[0] != 7 || counts[10e3] != 10 || counts[1e6] != 1 || counts[20e6] != 1 || r.Histogram[len(r.Histogram)-1].ToNS != -1 {
		t.Errorf("histogram %+v", r.Histogram)
	}
	var b strings.Builder
	if err := printReport(&b, r); err != nil || !strings.Contains(b.String(), "20ms or more") {
		t.Errorf("printReport: %v\n%s", err, b.String())
	}
}
