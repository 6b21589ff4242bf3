package simpl_test

import (
	"context"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleEcho NAME [nospin]: reply every request with its own bytes, as
// cheaply as the API allows.
func roleEcho(args []string) error {
	ch, err := simpl.Attach(args[0], simpl.WithSpin(len(args) < 2 || args[1] != "nospin"))
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	ctx := context.Background()
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			return err
		}
		if !msg.IsProxy() {
			msg.Reply(msg.Data())
		}
	}
}

// BenchmarkRoundTrip measures Send→Receive→Reply between this process and
// an echo server process, reporting the median and p99 of single round
// trips besides the mean (ns/op).
func BenchmarkRoundTrip(b *testing.B) {
	type config struct {
		name string
		t    simpl.Transport
		spin bool
	}
	for _, cf := range []config{{"fifo", simpl.FIFO, true}, {"shm-spin", simpl.SHM, true}, {"shm-nospin", simpl.SHM, false}} {
		for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
			b.Run(cf.name+"/"+sizeName(size), func(b *testing.B) {
				benchRoundTrip(b, size, cf.t, cf.spin)
			})
		}
	}
}

func benchRoundTrip(b *testing.B, size int, t simpl.Transport, spin bool) {
	dir := simpltest.Dir(b)
	args := []string{"ECHO"}
	if !spin {
		args = append(args, "nospin")
	}
	srv := simpltest.Start(b, "echo", env(dir), args...)
	cli, err := simpl.Attach("BENCH", simpl.WithDir(dir), simpl.WithTransport(t), simpl.WithSpin(spin))
	if err != nil {
		b.Fatal(err)
	}
	conn, err := cli.Locate("ECHO")
	if err != nil {
		b.Fatal(err)
	}
	req, reply := make([]byte, size), make([]byte, size)
	ctx := context.Background()
	for range 100 { // warm up: segments, lanes, caches, goroutines
		if _, err := conn.Send(ctx, req, reply); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := conn.Send(ctx, req, reply); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "median_us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99_us")
	conn.Close()
	cli.Close()
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reapAll(dir)
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
