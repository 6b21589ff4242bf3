package locator

// Counts is a snapshot of a Watcher's counters: what the locator's
// metrics show (package locatorprom serves them to Prometheus as
// simpl_locator_*; see docs/metrics.md).
type Counts struct {
	// Names counts the live names in the watched directory.
	Names int
	// Appeared and Disappeared count the names that appeared or
	// disappeared since the Watcher started.
	Appeared, Disappeared uint64
	// Watches counts the watch requests Serve holds on the Watcher now,
	// waiting for events.
	Watches int64
}

// Counts is a snapshot of the counters of a Watcher (or a Table).
func (w *journal) Counts() Counts {
	w.mu.Lock()
	c := Counts{Names: len(w.live), Appeared: w.counts[Appeared], Disappeared: w.counts[Disappeared]}
	w.mu.Unlock()
	c.Watches = w.held.Load()
	return c
}
