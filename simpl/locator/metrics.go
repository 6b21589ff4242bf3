package locator

import "github.com/prometheus/client_golang/prometheus"

var (
	descNames = prometheus.NewDesc("simpl_locator_names",
		"Live names in the watched directory.", nil, nil)
	descEvents = prometheus.NewDesc("simpl_locator_events_total",
		"Names that appeared or disappeared since the watcher started.", []string{"kind"}, nil)
	descWatches = prometheus.NewDesc("simpl_locator_watches",
		"Watch requests the locator holds now, waiting for events.", nil, nil)
)

var _ prometheus.Collector = (*Watcher)(nil)

// Describe is part of prometheus.Collector: a Watcher reports the live
// names, the events it has numbered by kind, and the watch requests Serve
// holds on it. Nothing is registered by default.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNames
	ch <- descEvents
	ch <- descWatches
}

// Collect is part of prometheus.Collector.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	names := len(w.live)
	counts := w.counts
	w.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descNames, prometheus.GaugeValue, float64(names))
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(counts[Appeared]), "appeared")
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(counts[Disappeared]), "disappeared")
	ch <- prometheus.MustNewConstMetric(descWatches, prometheus.GaugeValue, float64(w.held.Load()))
}
