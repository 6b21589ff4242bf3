// Package climetrics serves the commands' -metrics flag: Prometheus
// metrics over HTTP. It lives apart from package cli so that only the
// commands that take -metrics link Prometheus and net/http.
package climetrics

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simplprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeMetrics listens on addr (host:port; port 0 picks a free one) and
// serves cs, the Go runtime's and the process's metrics at /metrics, on a
// registry of its own. url is where it listens; stop closes the server.
// The error names the -metrics flag, as the commands take it.
func ServeMetrics(addr string, cs ...prometheus.Collector) (url string, stop func(), err error) {
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := registerAll(reg, cs); err != nil {
		return "", nil, fmt.Errorf("-metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("-metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) // returns when stop closes it
	return "http://" + ln.Addr().String() + "/metrics", func() { srv.Close() }, nil
}

func registerAll(reg *prometheus.Registry, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ChannelMetrics serves, when addr is not "", the metrics of the Channels
// attached with opts (simplprom's), and extra, as ServeMetrics does. With addr "" it
// serves nothing: opts is empty, url "" and stop does nothing.
func ChannelMetrics(addr string, extra ...prometheus.Collector) (opts []simpl.Option, url string, stop func(), err error) {
	if addr == "" {
		return nil, "", func() {}, nil
	}
	m, err := simplprom.New()
	if err != nil {
		return nil, "", nil, fmt.Errorf("-metrics: %w", err)
	}
	url, stop, err = ServeMetrics(addr, append(extra, m)...)
	if err != nil {
		return nil, "", nil, err
	}
	return []simpl.Option{simpl.WithObserver(m)}, url, stop, nil
}
