package locatorprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/locator/locatorprom"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector: a name attached and one detached show as one live name,
// two appearances and one disappearance.
func TestCollector(t *testing.T) {
	dir := simpltest.Dir(t)
	w, err := locator.NewWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := locatorprom.NewCollector(w)
	if err := prometheus.NewPedanticRegistry().Register(c); err != nil {
		t.Fatal(err)
	}
	// The watcher numbers events as it finds them: wait for them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	after := uint64(0)
	waitFor := func(appeared, disappeared uint64) {
		t.Helper()
		for {
			if n := w.Counts(); n.Appeared >= appeared && n.Disappeared >= disappeared {
				return
			}
			_, seq, err := w.Next(ctx, "*", after, 10)
			if err != nil {
				t.Fatalf("waiting for %d appeared, %d disappeared: %v (counts %+v)", appeared, disappeared, err, w.Counts())
			}
			after = seq
		}
	}
	a, err := simpl.Attach("ALPHA", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := simpl.Attach("BETA", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(2, 0)
	b.Close()
	waitFor(2, 1)
	want := `
# HELP simpl_locator_events_total Names that appeared or disappeared since the watcher started.
# TYPE simpl_locator_events_total counter
simpl_locator_events_total{kind="appeared"} 2
simpl_locator_events_total{kind="disappeared"} 1
# HELP simpl_locator_names Live names in the watched directory.
# TYPE simpl_locator_names gauge
simpl_locator_names 1
# HELP simpl_locator_watches Watch requests the locator holds now, waiting for events.
# TYPE simpl_locator_watches gauge
simpl_locator_watches 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
