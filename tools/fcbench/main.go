// Command fcbench measures Send/Receive/Reply round trips between real
// processes: it starts an echo receiver process and a sender process (with
// one or more concurrent senders) in a private FIFO directory, and prints
// one line per configuration:
//
//	transport=shm spin=true senders=1 size=64 n=10000 median_us=0.9 p99_us=2.1 mean_us=1.0 msgs_per_s=990000 cpu_us_per_msg=1.9 cpu_pct=190
//
// With several senders it adds slowest_pct: the slowest sender's count of
// completed round trips as a percentage of the fastest one's, taken when the
// first sender finishes. cpu_us_per_msg is the CPU time both processes
// spent per round trip, and cpu_pct how many CPUs' worth they kept busy
// (100 per CPU): when it nears 100 times the CPU count, the machine, not the
// transport, limits the rate. With no flags it runs a small table: both
// transports, 64 B to 1 MiB.
//
//	fcbench [-transport fifo|shm] [-size BYTES] [-n ROUNDS] [-spin=true|false] [-senders N] [-json]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

// warmUp is the least time each sender runs before it is measured.
const warmUp = 50 * time.Millisecond

const usage = "usage: fcbench [-transport fifo|shm] [-size BYTES] [-n ROUNDS] [-spin=true|false] [-senders N] [-json]"

func main() {
	cli.Exit("fcbench", run(os.Args[1:], os.Stdout))
}

// config is one measured configuration.
type config struct {
	Transport string `json:"transport"`
	Spin      bool   `json:"spin"`
	Senders   int    `json:"senders"`
	Size      int    `json:"size"`
	N         int    `json:"n"`
}

// result is what the sender process reports.
type result struct {
	config
	MedianUS   float64 `json:"median_us"`
	P99US      float64 `json:"p99_us"`
	MeanUS     float64 `json:"mean_us"`
	MsgsPerS   float64 `json:"msgs_per_s"`
	SlowestPct float64 `json:"slowest_pct,omitempty"`
	// CPU time of both processes per round trip, and how many CPUs they
	// kept busy: cpu_pct near 100 times the CPU count means the machine,
	// not the transport, set the rate.
	CPUUSPerMsg float64 `json:"cpu_us_per_msg"`
	CPUPct      float64 `json:"cpu_pct"`
}

// senderReport is what the sender process tells the parent.
type senderReport struct {
	result
	SenderCPUNS int64 `json:"sender_cpu_ns"`
	ElapsedNS   int64 `json:"elapsed_ns"`
}

func (r result) String() string {
	s := fmt.Sprintf("transport=%s spin=%t senders=%d size=%d n=%d median_us=%.2f p99_us=%.2f mean_us=%.2f msgs_per_s=%.0f",
		r.Transport, r.Spin, r.Senders, r.Size, r.N, r.MedianUS, r.P99US, r.MeanUS, r.MsgsPerS)
	if r.Senders > 1 {
		s += fmt.Sprintf(" slowest_pct=%.0f", r.SlowestPct)
	}
	return s + fmt.Sprintf(" cpu_us_per_msg=%.2f cpu_pct=%.0f", r.CPUUSPerMsg, r.CPUPct)
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	transport := fs.String("transport", "", "fifo or shm (default: both)")
	size := fs.Int("size", -1, "message and reply size in bytes (default: 64, 4096, 65536 and 1048576)")
	n := fs.Int("n", 0, "round trips per sender (default: 10000, 1000 at 1 MiB and above)")
	spin := fs.Bool("spin", true, "spin before sleeping (shm)")
	senders := fs.Int("senders", 1, "concurrent senders to the one receiver")
	asJSON := fs.Bool("json", false, "print JSON objects instead of key=value lines")
	role := fs.String("role", "", "internal: recv or send")
	if help, err := cli.ParsePrivate(fs, args, usage, stdout); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	switch *role {
	case "recv":
		return receive(*spin)
	case "send":
		var c config
		if err := json.Unmarshal([]byte(os.Getenv("FCBENCH_CONFIG")), &c); err != nil {
			return fmt.Errorf("sender config: %w", err)
		}
		return sendAll(c, stdout)
	case "":
	default:
		return fmt.Errorf("-role %q: internal flag", *role)
	}

	transports := []string{"fifo", "shm"}
	switch *transport {
	case "":
	case "fifo", "shm":
		transports = []string{*transport}
	default:
		return fmt.Errorf("-transport %q: want fifo or shm", *transport)
	}
	sizes := []int{64, 4 << 10, 64 << 10, 1 << 20}
	if *size >= 0 {
		if *size > 64<<20 {
			return fmt.Errorf("-size %d: at most %d", *size, 64<<20)
		}
		sizes = []int{*size}
	}
	if *n < 0 || *senders < 1 || *senders > 256 {
		return fmt.Errorf("-n must be 0 or more and -senders 1 to 256; %s", usage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, size := range sizes {
		for _, t := range transports {
			c := config{Transport: t, Spin: *spin, Senders: *senders, Size: size, N: *n}
			if c.N == 0 {
				c.N = 10000
				if size >= 1<<20 {
					c.N = 1000
				}
			}
			r, err := measure(ctx, c)
			if err != nil {
				return err
			}
			if *asJSON {
				b, _ := json.Marshal(r)
				_, err = fmt.Fprintln(stdout, string(b))
			} else {
				_, err = fmt.Fprintln(stdout, r)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// measure runs one configuration: a receiver process and a sender process
// in a FIFO directory of their own.
func measure(ctx context.Context, c config) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	dir, err := os.MkdirTemp("", "fcbench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "FIFO_PATH="+dir)

	recv := exec.Command(self, "-role", "recv", "-spin="+strconv.FormatBool(c.Spin))
	recv.Env = env
	recv.Stderr = os.Stderr
	out, err := recv.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	if err := recv.Start(); err != nil {
		return result{}, err
	}
	lines := bufio.NewReader(out)
	stopped := false
	stopRecv := func() {
		if stopped {
			return
		}
		stopped = true
		recv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { recv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			recv.Process.Kill()
			<-done
		}
	}
	defer stopRecv()
	ready := make(chan error, 1)
	go func() {
		line, err := lines.ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("receiver said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return result{}, fmt.Errorf("receiver: %w", err)
		}
	case <-time.After(10 * time.Second):
		return result{}, errors.New("receiver did not start within 10s")
	}

	cj, _ := json.Marshal(c)
	send := exec.CommandContext(ctx, self, "-role", "send")
	send.Env = append(env, "FCBENCH_CONFIG="+string(cj))
	send.Stderr = os.Stderr
	b, err := send.Output()
	if err != nil {
		return result{}, fmt.Errorf("sender: %w", err)
	}
	var rep senderReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return result{}, fmt.Errorf("sender's report %q: %w", b, err)
	}
	r := rep.result
	// The receiver reports its CPU time per message served as it exits.
	recvCPU := make(chan float64, 1)
	go func() {
		var perMsg float64
		line, _ := lines.ReadString('\n')
		fmt.Sscanf(line, "cpu_ns_per_msg %g", &perMsg)
		recvCPU <- perMsg
	}()
	stopRecv()
	var recvPerMsg float64
	select {
	case recvPerMsg = <-recvCPU:
	case <-time.After(5 * time.Second):
	}
	msgs := float64(c.N * c.Senders)
	senderPerMsg := float64(rep.SenderCPUNS) / msgs
	r.CPUUSPerMsg = (senderPerMsg + recvPerMsg) / 1e3
	if rep.ElapsedNS > 0 {
		r.CPUPct = 100 * (senderPerMsg + recvPerMsg) * msgs / float64(rep.ElapsedNS)
	}
	return r, nil
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// receive echoes every request until SIGTERM.
func receive(spin bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach("FCBENCH", simpl.WithSpin(spin))
	if err != nil {
		return err
	}
	defer ch.Close()
	fmt.Println("ready")
	cpu0, served := cpuTime(), 0
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				fmt.Printf("cpu_ns_per_msg %g\n", float64(cpuTime()-cpu0)/float64(max(served, 1)))
				return nil
			}
			return err
		}
		if !msg.IsProxy() {
			msg.Reply(msg.Data())
			served++
		}
	}
}

// sendAll runs c.Senders senders, each with its own name and connection,
// and prints the result as JSON.
func sendAll(c config, stdout io.Writer) error {
	t := simpl.FIFO
	if c.Transport == "shm" {
		t = simpl.SHM
	}
	type sender struct {
		conn *simpl.Conn
		lat  []time.Duration
		done atomic.Int64
	}
	ss := make([]*sender, c.Senders)
	for i := range ss {
		ch, err := simpl.Attach(fmt.Sprintf("FCBENCH_S%d", i), simpl.WithTransport(t), simpl.WithSpin(c.Spin))
		if err != nil {
			return err
		}
		defer ch.Close()
		conn, err := ch.Locate("FCBENCH")
		if err != nil {
			return err
		}
		ss[i] = &sender{conn: conn, lat: make([]time.Duration, 0, c.N)}
	}
	var (
		wg       sync.WaitGroup
		first    sync.Once
		firstAt  time.Time
		counts   = make([]int64, c.Senders)
		errMu    sync.Mutex
		firstErr error
	)
	start := make(chan struct{})
	var warm sync.WaitGroup // the clock starts when every sender is warm
	warm.Add(len(ss))
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			req, reply := make([]byte, c.Size), make([]byte, c.Size)
			// Warm up, uncounted: 100 round trips and at least warmUp, so
			// that both processes' Go runtimes have settled (the runtime's
			// monitor thread wakes every 20 us at first and backs off to
			// every 10 ms over the first milliseconds; in a short run its
			// early wake-ups, each taking a CPU from a spinner, are the
			// slowest 1% by themselves).
			w0 := time.Now()
			var err error
			for i := 0; err == nil && (i < min(100, c.N) || (c.N > 0 && time.Since(w0) < warmUp)); i++ {
				_, err = s.conn.Send(ctx, req, reply)
			}
			warm.Done()
			if err != nil {
				errMu.Lock()
				firstErr = cmp(firstErr, err)
				errMu.Unlock()
				return
			}
			<-start
			for range c.N {
				t0 := time.Now()
				if _, err := s.conn.Send(ctx, req, reply); err != nil {
					errMu.Lock()
					firstErr = cmp(firstErr, err)
					errMu.Unlock()
					return
				}
				s.lat = append(s.lat, time.Since(t0))
				s.done.Add(1)
			}
			first.Do(func() {
				firstAt = time.Now()
				for j, o := range ss {
					counts[j] = o.done.Load()
				}
			})
		}()
	}
	warm.Wait()
	t0, cpu0 := time.Now(), cpuTime()
	close(start)
	wg.Wait()
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	if firstErr != nil {
		return firstErr
	}
	var all []time.Duration
	var sum time.Duration
	for _, s := range ss {
		all = append(all, s.lat...)
		for _, d := range s.lat {
			sum += d
		}
	}
	slices.Sort(all)
	r := result{config: c}
	r.MedianUS = us(all[len(all)/2])
	r.P99US = us(all[len(all)*99/100])
	r.MeanUS = us(sum) / float64(len(all))
	var total int64
	for _, n := range counts {
		total += n
	}
	r.MsgsPerS = float64(total) / firstAt.Sub(t0).Seconds()
	if c.Senders > 1 {
		r.SlowestPct = 100 * float64(slices.Min(counts)) / float64(max(slices.Max(counts), 1))
	}
	b, _ := json.Marshal(senderReport{result: r, SenderCPUNS: int64(cpu), ElapsedNS: int64(elapsed)})
	_, err := fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
	return err
}

func cmp(have, err error) error {
	if have != nil {
		return have
	}
	return err
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
