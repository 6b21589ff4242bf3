package locator

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/simpl"
)

// FuzzJournalRequests: the locator's requests come off the wire with every
// field the sender's to choose (docs/locator.md): the name to locate, the
// pattern to list or watch, the position to watch from and the most
// events to take. Served as newMux and hold serve them, from a journal of
// the fuzzer's making, none crashes the daemon; a lookup finds the name
// asked for or fails with ErrNotFound or ErrBadName; a pattern
// CheckPattern takes lists only matching names; and a watch returns at
// most the events asked for (maxEvents at most), each after the position
// asked from, matching, in order, with a next position at or after it,
// or ErrGap exactly when the position is past the last event or before
// the oldest kept, or (nothing yet) ctx's error.
func FuzzJournalRequests(f *testing.F) {
	f.Add("SRV,CLI,b:REMOTE", uint16(7), "SRV", "S*", uint64(0), 0)
	f.Add("A,B", uint16(4), "", "*", uint64(2), 1)
	f.Add("X", uint16(0), "bad name!", "[", uint64(5), -1)
	f.Add("N1,N2,N3", uint16(49), "N2", "N?", uint64(1<<64-1), math.MaxInt32)
	f.Add("a:b:c,,", uint16(3), "a:b", "*:b*", uint64(3), 300)
	f.Fuzz(func(t *testing.T, names string, events uint16, lookup, pattern string, after uint64, max int) {
		var j journal
		j.init()
		list := strings.Split(names, ",")
		j.mu.Lock()
		for i := range int(events) % 64 {
			info := Info{Name: list[i%len(list)], PID: 100 + i%3, Transport: "shm"}
			k := key{info.Name, info.PID}
			if _, ok := j.live[k]; ok && i%2 == 1 {
				delete(j.live, k)
				j.addLocked(Disappeared, info)
			} else {
				j.live[k] = info
				j.addLocked(Appeared, info)
			}
		}
		seq := j.seq
		j.mu.Unlock()

		if info, err := j.Lookup(lookup); err != nil {
			if !errors.Is(err, simpl.ErrNotFound) && !errors.Is(err, simpl.ErrBadName) {
				t.Fatalf("Lookup(%q): error %v wraps neither ErrNotFound nor ErrBadName", lookup, err)
			}
		} else if info.Name != lookup {
			t.Fatalf("Lookup(%q): found %+v", lookup, info)
		}

		if CheckPattern(pattern) != nil {
			return // refused with codeBadRequest before the journal is asked
		}
		infos, at := j.Snapshot(pattern)
		if at != seq {
			t.Fatalf("Snapshot(%q) at %d, the last event is %d", pattern, at, seq)
		}
		for _, info := range infos {
			if !Match(pattern, info.Name) {
				t.Fatalf("Snapshot(%q) lists %q", pattern, info.Name)
			}
		}

		// hold's clamp of Max.
		if max <= 0 || max > maxEvents {
			max = maxEvents
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // nothing waits: an empty answer at once
		evs, next, err := j.Next(ctx, pattern, after, max)
		j.mu.Lock()
		oldest := uint64(0)
		if len(j.events) > 0 {
			oldest = j.events[0].Seq
		}
		j.mu.Unlock()
		gap := after > seq || (oldest > 0 && after+1 < oldest)
		switch {
		case errors.Is(err, ErrGap):
			if !gap {
				t.Fatalf("Next(%q, %d): %v, but events %d to %d are kept", pattern, after, err, oldest, seq)
			}
			return
		case gap:
			t.Fatalf("Next(%q, %d): %v, %d events; want ErrGap (events %d to %d)", pattern, after, err, len(evs), oldest, seq)
		case err != nil && !errors.Is(err, context.Canceled):
			t.Fatalf("Next(%q, %d): %v", pattern, after, err)
		}
		if len(evs) > max {
			t.Fatalf("Next(%q, %d, %d): %d events", pattern, after, max, len(evs))
		}
		if next < after || next > seq {
			t.Fatalf("Next(%q, %d): next position %d (last event %d)", pattern, after, next, seq)
		}
		prev := after
		for _, ev := range evs {
			if ev.Seq <= prev || ev.Seq > next || !Match(pattern, ev.Info.Name) {
				t.Fatalf("Next(%q, %d): event %+v (after %d, next %d)", pattern, after, ev, prev, next)
			}
			prev = ev.Seq
		}
	})
}
