// Package simplprom records what gosimpl Channels do as Prometheus
// metrics (github.com/prometheus/client_golang). It is the adapter that
// keeps Prometheus out of package simpl: simpl only calls an observer
// (simpl.Observer), and a Metrics is one, as well as a
// prometheus.Collector.
//
//	m, err := simplprom.New()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m)
//	ch, err := simpl.Attach("CLOCK", simpl.WithObserver(m))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, their labels and what they cost are in docs/metrics.md:
// simpl_received_messages_total, simpl_received_bytes_total,
// simpl_received_proxies_total, simpl_replies_total{outcome},
// simpl_receive_to_reply_seconds, simpl_blocked_senders,
// simpl_send_round_trip_seconds{to,transport}, simpl_sent_proxies_total
// and simpl_errors_total{op,kind}, each with the label channel.
package simplprom
