package transport

import "testing"

// RankPrio inverts Rank over every valid priority (SchedRR as SchedFIFO,
// SchedBatch as SchedOther), and knows no other rank.
func TestRankPrio(t *testing.T) {
	seen := map[uint32]bool{}
	check := func(p Prio, want Prio) {
		t.Helper()
		got, ok := RankPrio(p.Rank())
		if !ok || got != want {
			t.Errorf("RankPrio(%d) (the rank of %+v) = %+v, %v; want %+v", p.Rank(), p, got, ok, want)
		}
		seen[p.Rank()] = true
	}
	for l := 1; l <= 99; l++ {
		check(Prio{Policy: SchedFIFO, Level: l}, Prio{Policy: SchedFIFO, Level: l})
		check(Prio{Policy: SchedRR, Level: l}, Prio{Policy: SchedFIFO, Level: l})
	}
	for n := -20; n <= 19; n++ {
		check(Prio{Policy: SchedOther, Level: n}, Prio{Policy: SchedOther, Level: n})
		check(Prio{Policy: SchedBatch, Level: n}, Prio{Policy: SchedOther, Level: n})
	}
	check(Prio{Policy: SchedIdle}, Prio{Policy: SchedIdle})
	for r := uint32(0); r < 300; r++ {
		if _, ok := RankPrio(r); ok != seen[r] {
			t.Errorf("RankPrio(%d): ok %v, want %v", r, ok, seen[r])
		}
	}
	if _, ok := RankPrio(^uint32(0)); ok {
		t.Error("RankPrio(max uint32) ok")
	}
}
