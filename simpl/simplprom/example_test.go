package simplprom_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simplprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// A Channel's metrics on a registry of the program's own, served over
// HTTP at /metrics for Prometheus to scrape.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	m, err := simplprom.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	web := httptest.NewServer(mux) // a real program: http.ListenAndServe(addr, mux)
	defer web.Close()

	srv, err := simpl.Attach("CLOCK", simpl.WithDir(dir), simpl.WithObserver(m))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	go func() {
		for {
			msg, err := srv.Receive(context.Background())
			if err != nil {
				return
			}
			msg.Reply([]byte("12:00"))
		}
	}()

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(context.Background(), "CLOCK")
	defer conn.Close()
	reply := make([]byte, 16)
	if _, err := conn.Send(context.Background(), []byte("now?"), reply); err != nil {
		fmt.Println(err)
		return
	}

	resp, err := http.Get(web.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "simpl_received_") {
			fmt.Println(line)
		}
	}
	// Output:
	// simpl_received_bytes_total{channel="CLOCK"} 4
	// simpl_received_messages_total{channel="CLOCK"} 1
	// simpl_received_proxies_total{channel="CLOCK"} 0
}
