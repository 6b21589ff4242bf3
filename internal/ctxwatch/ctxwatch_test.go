package ctxwatch

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A context's end runs fn once however often it was watched; a context
// that cannot end registers nothing; taking turns between Kept contexts
// allocates nothing once each is registered.
func TestWatch(t *testing.T) {
	var s Set
	var runs atomic.Int64
	woke := make(chan struct{}, 16)
	fn := func() { runs.Add(1); woke <- struct{}{} }
	s.Watch(context.Background(), fn)
	if s.stop[0] != nil {
		t.Fatal("a context that cannot end was registered")
	}
	var ctxs [Kept]context.Context
	var cancels [Kept]context.CancelFunc
	for i := range ctxs {
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
		defer cancels[i]()
	}
	for range 3 {
		for _, c := range ctxs {
			s.Watch(c, fn)
		}
	}
	if a := testing.AllocsPerRun(100, func() {
		for _, c := range ctxs {
			s.Watch(c, fn)
		}
	}); a != 0 {
		t.Errorf("%v allocations taking turns between %d registered contexts, want 0", a, Kept)
	}
	cancels[1]()
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		t.Fatal("fn not run within 10 s of its context's end")
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("fn ran %d times for one context watched four times, want 1", n)
	}
}

// A new context takes the place of the one given longest ago; Stop
// removes every registration.
func TestEvictAndStop(t *testing.T) {
	var s Set
	fn := func() {}
	first, cancelFirst := context.WithCancel(context.Background())
	defer cancelFirst()
	s.Watch(first, fn)
	for range Kept {
		c, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.Watch(c, fn)
	}
	for i := range s.ctx {
		if s.ctx[i] == first {
			t.Fatalf("the context given longest ago still registered after %d newer", Kept)
		}
		if s.ctx[i] == nil || s.stop[i] == nil {
			t.Fatalf("place %d empty after %d contexts", i, Kept+1)
		}
	}
	s.Stop()
	for i := range s.ctx {
		if s.ctx[i] != nil || s.stop[i] != nil {
			t.Fatalf("place %d still registered after Stop", i)
		}
	}
}
