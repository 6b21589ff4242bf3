// Package locatorprom serves a locator.Watcher's counters
// (Watcher.Counts) as Prometheus metrics, so that package locator itself,
// which every program that locates through the daemon links, links no
// Prometheus.
//
//	w, err := locator.NewWatcher("")
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(locatorprom.NewCollector(w))
//
// The metrics (docs/metrics.md): simpl_locator_names,
// simpl_locator_events_total by kind (appeared, disappeared) and
// simpl_locator_watches.
package locatorprom

import (
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descNames = prometheus.NewDesc("simpl_locator_names",
		"Live names in the watched directory.", nil, nil)
	descEvents = prometheus.NewDesc("simpl_locator_events_total",
		"Names that appeared or disappeared since the watcher started.", []string{"kind"}, nil)
	descWatches = prometheus.NewDesc("simpl_locator_watches",
		"Watch requests the locator holds now, waiting for events.", nil, nil)
)

// Collector is a prometheus.Collector of one Watcher's metrics. Nothing is
// registered by default. Safe for concurrent use.
type Collector struct{ w *locator.Watcher }

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of w's metrics.
func NewCollector(w *locator.Watcher) *Collector { return &Collector{w} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNames
	ch <- descEvents
	ch <- descWatches
}

// Collect implements prometheus.Collector: one Watcher.Counts per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	n := c.w.Counts()
	ch <- prometheus.MustNewConstMetric(descNames, prometheus.GaugeValue, float64(n.Names))
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n.Appeared), "appeared")
	ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(n.Disappeared), "disappeared")
	ch <- prometheus.MustNewConstMetric(descWatches, prometheus.GaugeValue, float64(n.Watches))
}
