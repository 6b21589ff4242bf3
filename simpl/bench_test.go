package simpl_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// roleEcho NAME [nospin] [inplace]: reply every request with its own
// bytes, as cheaply as the API allows; inplace replies in place (the
// request already is the reply), with no copy at all.
func roleEcho(args []string) error {
	inplace := slices.Contains(args[1:], "inplace")
	ch, err := simpl.Attach(args[0], simpl.WithSpin(!slices.Contains(args[1:], "nospin")))
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
		switch {
		case (msg.Proxy() > 0):
		case inplace:
			msg.ReplyInPlace(len(msg.Data()))
		default:
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
		t    string
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

func benchRoundTrip(b *testing.B, size int, t string, spin bool) {
	dir := simpltest.Dir(b)
	args := []string{"ECHO"}
	if !spin {
		args = append(args, "nospin")
	}
	srv := simpltest.Start(b, "echo", env(dir), args...)
	cli, err := simpl.Attach("BENCH", simpl.WithDir(dir), withTransport(t), simpl.WithSpin(spin))
	if err != nil {
		b.Fatal(err)
	}
	conn, err := cli.Locate(context.Background(), "ECHO")
	if err != nil {
		b.Fatal(err)
	}
	req, reply := make([]byte, size), make([]byte, size)
	ctx := context.Background()
	warmUp(b, func() error { _, err := conn.Send(ctx, req, reply); return err })
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

// warmUp runs send, uncounted, 100 times and for at least 50 ms: segments,
// lanes, caches and goroutines are set up, and both processes' Go runtimes
// have settled (the runtime's monitor thread wakes every 20 us at first and
// backs off over the first milliseconds; docs/benchmarks.md). Safe for
// concurrent use.
func warmUp(b *testing.B, send func() error) {
	w0 := time.Now()
	for i := 0; i < 100 || time.Since(w0) < 50*time.Millisecond; i++ {
		if err := send(); err != nil {
			b.Error(err)
			return
		}
	}
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

// BenchmarkSenders measures 16 concurrent senders, each with its own
// Channel and Conn in this process, against one echo server process, with
// spinning off: b.N round trips in all. It reports the aggregate rate, the
// median and p99 round trip, and slowest_pct, the slowest sender's count as
// a percentage of the fastest one's when the first sender finishes.
func BenchmarkSenders(b *testing.B) {
	for _, senders := range []int{1, 16} {
		b.Run(strconv.Itoa(senders), func(b *testing.B) { benchSenders(b, senders) })
	}
}

func benchSenders(b *testing.B, senders int) {
	dir := simpltest.Dir(b)
	srv := simpltest.Start(b, "echo", env(dir), "ECHO", "nospin")
	conns := make([]*simpl.Conn, senders)
	for i := range conns {
		ch, err := simpl.Attach("BENCH"+strconv.Itoa(i), simpl.WithDir(dir), simpl.WithSpin(false))
		if err != nil {
			b.Fatal(err)
		}
		defer ch.Close()
		if conns[i], err = ch.Locate(context.Background(), "ECHO"); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	per := max(1, b.N/senders)
	lats := make([][]time.Duration, senders)
	counts := make([]atomic.Int64, senders)
	var firstDone sync.Once
	var atFirst []int64
	var wg, warm sync.WaitGroup // the clock starts when every sender is warm
	warm.Add(len(conns))
	start := make(chan struct{})
	for i, conn := range conns {
		wg.Go(func() {
			req, reply := make([]byte, 64), make([]byte, 64)
			warmUp(b, func() error { _, err := conn.Send(ctx, req, reply); return err })
			warm.Done()
			lat := make([]time.Duration, 0, per)
			<-start
			for range per {
				t0 := time.Now()
				if _, err := conn.Send(ctx, req, reply); err != nil {
					b.Error(err)
					return
				}
				lat = append(lat, time.Since(t0))
				counts[i].Add(1)
			}
			firstDone.Do(func() {
				for j := range counts {
					atFirst = append(atFirst, counts[j].Load())
				}
			})
			lats[i] = lat
		})
	}
	warm.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	if len(all) == 0 {
		b.Fatal("no round trips")
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "median_us")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99_us")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "msgs_per_s")
	if senders > 1 {
		b.ReportMetric(100*float64(slices.Min(atFirst))/float64(max(1, slices.Max(atFirst))), "slowest_pct")
	}
	srv.Signal(syscall.SIGKILL)
	srv.Wait(5 * time.Second)
	reapAll(dir)
}

// BenchmarkBuffer measures a sender that builds its request in a Buffer
// and reads the reply in place, against an echo server that replies in
// place: no copy on either side.
func BenchmarkBuffer(b *testing.B) {
	for _, size := range []int{64, 1 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			dir := simpltest.Dir(b)
			srv := simpltest.Start(b, "echo", env(dir), "ECHO", "nospin", "inplace")
			ch, err := simpl.Attach("BENCH", simpl.WithDir(dir), simpl.WithSpin(false))
			if err != nil {
				b.Fatal(err)
			}
			defer ch.Close()
			conn, err := ch.Locate(context.Background(), "ECHO")
			if err != nil {
				b.Fatal(err)
			}
			buf, err := conn.Buffer(context.Background(), size)
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			ctx := context.Background()
			warmUp(b, func() error { _, err := buf.Send(ctx, size, size); return err })
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(2 * size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := buf.Send(ctx, size, size); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "median_us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99_us")
			srv.Signal(syscall.SIGKILL)
			srv.Wait(5 * time.Second)
			reapAll(dir)
		})
	}
}
