package gateway

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/nats-io/nats.go"
)

// BenchmarkRoundTrip is a remote Send through a gateway in this process
// (out to its embedded NATS server and back in to the local echo
// receiver), from 1 and from 16 concurrent senders: for CPU and memory
// profiles of the gateway's own work (-cpuprofile, -memprofile). Its
// times are not the network's: sender, gateway and receiver share this
// process's two processors, and each one's wait holds one (a lone Send
// sleeps in a futex), so hand-offs wait for the scheduler. fcbench
// -remote measures between real processes and hosts (docs/benchmarks.md).
func BenchmarkRoundTrip(b *testing.B) {
	for _, senders := range []int{1, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			const host = "gw-bench-host"
			g, dir := setup(b, host)
			_ = g
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			go func() {
				for {
					msg, err := srv.Receive(ctx)
					if err != nil {
						return
					}
					msg.Reply(msg.Data())
				}
			}()
			conns := make([]*simpl.Conn, senders)
			for i := range conns {
				cli, err := simpl.Attach(fmt.Sprintf("C%d", i), simpl.WithDir(dir))
				if err != nil {
					b.Fatal(err)
				}
				defer cli.Close()
				if conns[i], err = cli.Locate(ctx, host+":SRV"); err != nil {
					b.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			per := b.N/senders + 1
			b.ResetTimer()
			t0 := time.Now()
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, reply := make([]byte, 64), make([]byte, 64)
					for range per {
						if _, err := c.Send(ctx, req, reply); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*senders)/time.Since(t0).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkRawNATS is NATS request/reply on a gateway's embedded server,
// in this process, for comparison with BenchmarkRoundTrip.
func BenchmarkRawNATS(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&Network{Host: "gw-bench-host", Listen: "127.0.0.1:0"}).Connect(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(5 * time.Second)
	nc := conn.Conn
	sub, err := nc.Subscribe(netwire.RawPrefix+"bench", func(m *nats.Msg) { m.Respond(m.Data) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	req := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if _, err := nc.Request(netwire.RawPrefix+"bench", req, 10*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
