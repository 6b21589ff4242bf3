// Command fcbench measures Send/Receive/Reply round trips between real
// processes: it starts an echo receiver process and a sender process (with
// one or more concurrent senders) in a private FIFO directory, and prints
// a table, one row per configuration as it is measured, fifo and shm side
// by side for each size:
//
//	SIZE    TRANSPORT  SPIN      N  MEDIAN µs   P99 µs  MEAN µs   MSGS/S  CPU µs/MSG  CPU %  VS FIFO
//	64 B    fifo       -     10000      10.52    31.20    11.80    84000       21.10    177
//	64 B    shm        on    10000       0.90     2.10     1.00   990000        1.90    190    11.7x
//
// N is the round trips each sender makes (after an uncounted warm-up);
// MEDIAN, P99 and MEAN their latency, from Send to its reply; MSGS/S the
// round trips per second of all senders together; CPU µs/MSG the CPU time
// both processes spent per round trip, and CPU % how many CPUs' worth they
// kept busy (100 per CPU: when it nears 100 times the CPU count, the
// machine, not the transport, limits the rate), both over the measured
// round trips alone (the sender reads its own CPU time and the
// receiver's, through the receiver process's CPU-time clock, when they
// start and end); P99 is the nearest rank, the ceil(0.99·n)-th of the n
// round trips; VS FIFO shm's median as a
// speed-up over fifo's at the same size. SPIN (shared memory only) is
// whether waits spin before they sleep. With several senders a SLOWEST %
// column is added: the slowest sender's completed round trips as a
// percentage of the fastest one's, taken when the first sender finishes
// (100 is perfectly fair). With no flags it runs both transports, 64 B to
// 1 MiB.
//
// The receiver and sender of each configuration run in a FIFO directory
// of their own, $TMPDIR/fcbench-PID-*, and die with fcbench however it
// ends (SIGTERM, PR_SET_PDEATHSIG; each checks that fcbench still lives);
// the directory a killed fcbench leaves, the next one removes. SIGINT or
// SIGTERM ends a run, the one line "interrupted"; a child's failure is
// reported in fcbench's one line, with what the child said.
//
// Every round trip is checked: the sender writes a stamp of the round into
// the request's first and last bytes and the receiver echoes the request,
// so a reply whose first and last bytes are not that stamp fails the run.
// What each side does with the message's bytes, which differs between the
// two APIs only in the copies the API makes:
//
//   - the copying API (default): the sender writes its two stamp bytes in
//     its own request buffer and calls Conn.Send, which copies the request
//     into the transport and the reply out of it into the sender's reply
//     buffer; the receiver reads the first and last bytes of Data and
//     answers with Reply(Data()), which copies the n bytes into the reply.
//   - -zerocopy: the sender writes its two stamp bytes in a Buffer
//     (Conn.Buffer, one per sender, set up before the warm-up) and calls
//     Buffer.Send, which returns the reply in place; the receiver reads the
//     first and last bytes of Data, writes them as the first and last bytes
//     of ReplyBuffer and answers with ReplyInPlace(n). Through shared
//     memory Data and ReplyBuffer are both the sender's lane, so the rest
//     of the reply is the request where it lies and no byte is copied;
//     through FIFOs ReplyBuffer is other memory, and the receiver copies
//     Data into it first (as an echo must). The TRANSPORT column then says
//     "shm-zc" or "fifo-zc", and the default sizes go up to 4 MiB.
//
// Across hosts (docs/network.md), with a gateway (fcgate) on each host:
// on the receiving host run "fcbench -serve NAME" (an echo receiver) and,
// for the raw NATS comparison, "fcbench -serve-nats URL" (an echo
// responder on the subject _GS_RAW.fcbench of the NATS server at URL);
// on the sending host, "fcbench -remote HOST:NAME" measures Sends to the
// remote name, through the gateways, and "-nats URL" NATS request/reply
// to the responder, through the same servers; given both, each size is
// measured both ways in turn, and a VS NATS column gives the remote
// Send's median latency as a multiple of NATS's. These modes use the
// host's FIFO_PATH, and their CPU columns count the whole machine's CPU
// time (every process of both hosts, on one machine), not only
// fcbench's.
//
// -thread-waits attaches both sides with simpl.WithThreadWaits(true), as
// the C library does: a Send waits for its reply on its calling thread,
// as the Receive does by default; -thread-waits=false attaches them with
// WithThreadWaits(false): a reader goroutine reads the receive FIFO, as
// before that default.
//
// -json prints one JSON object per configuration instead, with the same
// figures (median_us, p99_us, mean_us, msgs_per_s, cpu_us_per_msg,
// cpu_pct, slowest_pct; spin only for shm), for machines. -plot FILE
// (.png, .svg or .pdf) also draws the median and p99 latency against the
// message size, one line per transport. -progress D prints a line on
// stderr as each configuration starts and every D while it runs (by
// default every 10 s when stderr is a terminal, else never).
//
//	fcbench [-transport fifo|shm] [-zerocopy] [-thread-waits] [-size BYTES] [-n ROUNDS] [-spin=true|false] [-senders N] [-json] [-plot FILE] [-progress D]
//	fcbench [-remote HOST:NAME] [-nats URL] [-size BYTES] [-n ROUNDS] [-senders N] [-json] [-progress D]
//	fcbench -serve NAME | -serve-nats URL
package main

import (
	"bufio"
	"bytes"
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

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/netdirect"
	"github.com/gosimpl/gosimpl/tools/internal/cli"
	"github.com/nats-io/nats.go"
)

// warmUp is the least time each sender runs before it is measured.
const warmUp = 50 * time.Millisecond

const usage = "usage: fcbench [-transport fifo|shm] [-zerocopy] [-thread-waits] [-remote HOST:NAME] [-nats URL] [-size BYTES] [-n ROUNDS] [-spin=true|false] [-senders N] [-json] [-plot FILE] [-progress D] | -serve NAME | -serve-nats URL"

// columns is what -h says about the table.
const columns = `columns:
  N           round trips per sender, after an uncounted warm-up
  MEDIAN, P99, MEAN
              round-trip latency, from Send to its reply, in µs
  MSGS/S      round trips per second, all senders together
  CPU µs/MSG  CPU time of both processes per round trip, over the measured round trips
  CPU %       CPUs kept busy, 100 per CPU: near 100 times the CPU count, the machine sets the rate
  SLOWEST %   (-senders 2 or more) the slowest sender's round trips as a percentage of the
              fastest one's when the first finished: 100 is fair
  VS FIFO     shm's median latency as a speed-up over fifo's at the same size
  VS NATS     (-remote with -nats) the remote Send's median latency as a multiple of
              NATS request/reply's at the same size
With -remote or -nats the CPU columns count the whole machine's CPU time, every process's,
and FIFO_PATH is used: the host's, where its gateway is (so is it by -serve).
`

func main() {
	cli.Exit("fcbench", run(os.Args[1:], os.Stdout))
}

// config is one measured configuration.
type config struct {
	Transport string `json:"transport"`          // fifo, shm, net (-remote) or nats (-nats)
	Target    string `json:"target,omitempty"`   // net: the remote name
	URL       string `json:"url,omitempty"`      // nats: the server`
	Spin      *bool  `json:"spin,omitempty"`     // shm only: spinning means nothing to FIFOs
	ZeroCopy  bool   `json:"zerocopy,omitempty"` // -zerocopy: Buffer, ReplyBuffer and ReplyInPlace
	// -thread-waits=BOOL: both sides attach with
	// simpl.WithThreadWaits(BOOL); nil: neither says (the default).
	ThreadWaits *bool `json:"thread_waits,omitempty"`
	Senders     int   `json:"senders"`
	Size        int   `json:"size"`
	N           int   `json:"n"`

	recvSpin bool // -spin, for the receiver (not sent to the sender process)
}

// maxRounds bounds -n: each round trip's time is kept, 8 bytes a round
// per sender.
const maxRounds = 10_000_000

func (c config) spin() bool { return c.Spin == nil || *c.Spin }

// result is what the sender process reports.
type result struct {
	config
	MedianUS   float64  `json:"median_us"`
	P99US      float64  `json:"p99_us"`
	MeanUS     float64  `json:"mean_us"`
	MsgsPerS   float64  `json:"msgs_per_s"`
	SlowestPct *float64 `json:"slowest_pct,omitempty"` // with 2 or more senders
	// CPU time of both processes per round trip, and how many CPUs they
	// kept busy: cpu_pct near 100 times the CPU count means the machine,
	// not the transport, set the rate.
	CPUUSPerMsg float64 `json:"cpu_us_per_msg"`
	CPUPct      float64 `json:"cpu_pct"`
}

// senderReport is what the sender process tells the parent.
type senderReport struct {
	result
	SenderCPUNS  int64 `json:"sender_cpu_ns"`
	RecvCPUNS    int64 `json:"recv_cpu_ns"`    // the local receiver's, over the same window
	MachineCPUNS int64 `json:"machine_cpu_ns"` // every process's, for -remote and -nats
	ElapsedNS    int64 `json:"elapsed_ns"`
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	transport := fs.String("transport", "", "`fifo or shm` (default: both)")
	size := fs.Int("size", -1, "message and reply size in `BYTES` (default: 64, 4096, 65536 and 1048576; with -zerocopy 4194304 too)")
	zeroCopy := fs.Bool("zerocopy", false, "send from a Buffer and answer in place (ReplyBuffer, ReplyInPlace): the zero-copy calls")
	n := fs.Int("n", 0, "`ROUNDS` per sender (default: 10000, 1000 at 1 MiB and above)")
	spin := fs.Bool("spin", true, "shm: spin a little before sleeping in each wait")
	threadWaits := fs.Bool("thread-waits", false, "true: both sides attach with simpl.WithThreadWaits(true), as the C library does (Sends wait on their threads too); false: WithThreadWaits(false) (a reader goroutine reads the FIFO); unset: the default")
	senders := fs.Int("senders", 1, "`N` concurrent senders to the one receiver (2 or more add the SLOWEST % column)")
	asJSON := fs.Bool("json", false, "print one JSON object per configuration instead of the table")
	plotFile := fs.String("plot", "", "also draw the latency against the size into `FILE` (.png, .svg or .pdf)")
	progress := fs.Duration("progress", 0, "print progress on stderr every `D` (default: 10s when stderr is a terminal, else never)")
	remote := fs.String("remote", "", "measure Sends to `HOST:NAME`, a remote fcbench -serve, through the hosts' gateways")
	natsURL := fs.String("nats", "", "measure NATS request/reply through the server at `URL` to a fcbench -serve-nats")
	serve := fs.String("serve", "", "echo every request to `NAME` until SIGTERM, for -remote on another host")
	serveNATS := fs.String("serve-nats", "", "echo every request on "+rawSubject+" at the NATS server `URL` until SIGTERM, for -nats")
	role := fs.String("role", "", "internal: recv or send")
	if help, err := cli.ParsePrivate(fs, args, usage, stdout, cli.NATSHelp+columns); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	switch {
	case *serve != "":
		return receive(*serve, *spin, *zeroCopy, waitOpts(fs, *threadWaits), stdout)
	case *serveNATS != "":
		return serveRaw(*serveNATS, stdout)
	}
	switch *role {
	case "recv", "send":
		// Gone with the fcbench that started it (SIGTERM when the thread
		// that started it exits), which must still be the parent.
		parent, err := strconv.Atoi(os.Getenv("FCBENCH_PARENT"))
		if err != nil {
			return fmt.Errorf("-role %s: FCBENCH_PARENT %q: internal", *role, os.Getenv("FCBENCH_PARENT"))
		}
		if err := sys.SetPdeathsig(syscall.SIGTERM, parent); err != nil {
			return fmt.Errorf("-role %s: %w", *role, err)
		}
	}
	switch *role {
	case "recv":
		return receive(receiverName, *spin, *zeroCopy, waitOpts(fs, *threadWaits), stdout)
	case "send":
		var c config
		if err := json.Unmarshal([]byte(os.Getenv("FCBENCH_CONFIG")), &c); err != nil {
			return fmt.Errorf("sender config: %w", err)
		}
		if c.Senders < 1 || c.Senders > 256 || c.Size < 0 || c.Size > 64<<20 || c.N < 1 || c.N > maxRounds {
			return fmt.Errorf("sender config: %d senders, %d bytes, %d rounds: want 1 to 256, 0 to %d, 1 to %d", c.Senders, c.Size, c.N, 64<<20, maxRounds)
		}
		every, _ := time.ParseDuration(os.Getenv("FCBENCH_PROGRESS"))
		// Progress goes to fcbench's stderr as it is (fd 3); this
		// process's stderr is fcbench's to fold into its one line.
		progressOut := io.Writer(os.Stderr)
		if os.Getenv("FCBENCH_PROGRESS_FD") == "3" {
			progressOut = os.NewFile(3, "progress")
		}
		recvPID, _ := strconv.Atoi(os.Getenv("FCBENCH_RECV_PID"))
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return sendAll(ctx, c, recvPID, every, stdout, progressOut)
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
	if *remote != "" || *natsURL != "" {
		if *transport != "" {
			return errors.New("-transport: not with -remote or -nats")
		}
		if *zeroCopy {
			return errors.New("-zerocopy: not with -remote or -nats")
		}
		transports = nil
		if *remote != "" {
			n, err := naming.Parse(*remote)
			if err != nil || n.Host == "" {
				return fmt.Errorf("-remote %q: want HOST:NAME", *remote)
			}
			transports = append(transports, "net")
		}
		if *natsURL != "" {
			transports = append(transports, "nats")
		}
	}
	sizes := []int{64, 4 << 10, 64 << 10, 1 << 20}
	if *zeroCopy {
		sizes = append(sizes, 4<<20)
	}
	if *size >= 0 {
		if *size > 64<<20 {
			return fmt.Errorf("-size %d: at most %d", *size, 64<<20)
		}
		sizes = []int{*size}
	}
	switch {
	case *n < 0 || *n > maxRounds:
		return fmt.Errorf("-n %d: must be 0 to %d (each round trip's time is kept)", *n, maxRounds)
	case *senders < 1 || *senders > 256:
		return fmt.Errorf("-senders %d: want 1 to 256", *senders)
	case *progress < 0:
		return fmt.Errorf("-progress %v: must be 0 or more", *progress)
	}
	if !isSet(fs, "progress") && sys.IsTerminal(os.Stderr) {
		*progress = 10 * time.Second
	}
	if *plotFile != "" {
		if err := checkPlotFile(*plotFile); err != nil {
			return err
		}
	}
	var configs []config
	for _, size := range sizes {
		for _, t := range transports {
			c := config{Transport: t, ZeroCopy: *zeroCopy, Senders: *senders, Size: size, N: *n, recvSpin: *spin}
			if isSet(fs, "thread-waits") {
				c.ThreadWaits = threadWaits
			}
			switch t {
			case "net":
				c.Target = *remote
			case "nats":
				c.URL = *natsURL
			}
			if t == "shm" {
				c.Spin = spin
			}
			if c.N == 0 {
				c.N = 10000
				if size >= 1<<20 {
					c.N = 1000
				}
			}
			configs = append(configs, c)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := newTable(stdout, *senders > 1, *remote != "" && *natsURL != "")
	if *asJSON {
		out = jsonLines(stdout)
	}
	var results []result
	for i, c := range configs {
		if *progress > 0 {
			fmt.Fprintf(os.Stderr, "fcbench: %d of %d: %s, %s, %d round trips per sender\n", i+1, len(configs), c.Transport, sizeText(c.Size), c.N)
		}
		r, err := measure(ctx, c, *progress)
		if err != nil {
			return err
		}
		results = append(results, r)
		if err := out(r, results); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	if *plotFile != "" {
		return plotLatency(*plotFile, results)
	}
	return nil
}

// waitOpts is simpl.WithThreadWaits(on) when -thread-waits was given,
// else nothing (the default).
func waitOpts(fs *flag.FlagSet, on bool) []simpl.Option {
	if !isSet(fs, "thread-waits") {
		return nil
	}
	return []simpl.Option{simpl.WithThreadWaits(on)}
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// An output prints r, the last of results.
type output func(r result, results []result) error

func jsonLines(w io.Writer) output {
	return func(r result, _ []result) error {
		b, _ := json.Marshal(r)
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
}

// column is one of the table's: its title and width, its cells aligned
// left (text) or right (numbers).
type column struct {
	title string
	width int
	left  bool
}

// newTable prints results as rows of a table whose columns have fixed
// widths, so that each row can be printed as soon as it is measured.
func newTable(w io.Writer, slowest, vsNATS bool) output {
	cols := []column{{"SIZE", 7, true}, {"TRANSPORT", 9, true}, {"SPIN", 4, true}, {"N", 7, false},
		{"MEDIAN µs", 9, false}, {"P99 µs", 9, false}, {"MEAN µs", 9, false}, {"MSGS/S", 9, false},
		{"CPU µs/MSG", 10, false}, {"CPU %", 5, false}}
	if slowest {
		cols = append(cols, column{"SLOWEST %", 9, false})
	}
	vsTitle := "VS FIFO"
	if vsNATS {
		vsTitle = "VS NATS"
	}
	cols = append(cols, column{vsTitle, 7, false})
	line := func(cells []string) error {
		var b strings.Builder
		for i, c := range cols {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", max(0, c.width-len([]rune(cells[i]))))
			if c.left {
				b.WriteString(cells[i] + pad)
			} else {
				b.WriteString(pad + cells[i])
			}
		}
		_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		return err
	}
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	header := false
	return func(r result, results []result) error {
		if !header {
			header = true
			if err := line(titles); err != nil {
				return err
			}
		}
		spin := "-"
		if r.Spin != nil {
			spin = map[bool]string{true: "on", false: "off"}[*r.Spin]
		}
		tname := r.Transport
		if r.ZeroCopy {
			tname += "-zc"
		}
		cells := []string{sizeText(r.Size), tname, spin, strconv.Itoa(r.N),
			fmt.Sprintf("%.2f", r.MedianUS), fmt.Sprintf("%.2f", r.P99US), fmt.Sprintf("%.2f", r.MeanUS),
			fmt.Sprintf("%.0f", r.MsgsPerS), fmt.Sprintf("%.2f", r.CPUUSPerMsg), fmt.Sprintf("%.0f", r.CPUPct)}
		if slowest {
			cells = append(cells, fmt.Sprintf("%.0f", *r.SlowestPct))
		}
		vs := ""
		for _, f := range results {
			switch {
			case f.Size != r.Size || f.MedianUS <= 0 || r.MedianUS <= 0:
			case r.Transport == "shm" && f.Transport == "fifo":
				vs = fmt.Sprintf("%.1fx", f.MedianUS/r.MedianUS)
			case vsNATS && r.Transport == "net" && f.Transport == "nats":
				vs = fmt.Sprintf("%.2fx", r.MedianUS/f.MedianUS)
			case vsNATS && r.Transport == "nats" && f.Transport == "net":
				vs = fmt.Sprintf("%.2fx", f.MedianUS/r.MedianUS)
			}
		}
		return line(append(cells, vs))
	}
}

// sizeText is a size in bytes as a person reads it: 64 B, 4 KiB, 1 MiB.
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// measure runs one configuration: a receiver process and a sender process
// in a FIFO directory of their own. Both die with fcbench (SIGTERM when it
// exits, however it exits: PR_SET_PDEATHSIG), and a directory a killed
// fcbench left is removed by the next one (cli.PrivateDir).
func measure(ctx context.Context, c config, progress time.Duration) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	if c.Transport == "net" || c.Transport == "nats" {
		return measureRemote(ctx, self, c, progress)
	}
	dir, err := cli.PrivateDir("fcbench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "FIFO_PATH="+dir)

	recv := exec.Command(self, "-role", "recv", "-spin="+strconv.FormatBool(c.recvSpin), "-zerocopy="+strconv.FormatBool(c.ZeroCopy))
	if c.ThreadWaits != nil {
		recv.Args = append(recv.Args, "-thread-waits="+strconv.FormatBool(*c.ThreadWaits))
	}
	recv.Env = append(env, "FCBENCH_PARENT="+strconv.Itoa(os.Getpid()))
	recv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	recvErr := &cli.Tail{}
	recv.Stderr = recvErr
	// A pipe of our own rather than StdoutPipe, so that the receiver may
	// be waited for while its output is read.
	out, w, err := os.Pipe()
	if err != nil {
		return result{}, err
	}
	defer out.Close()
	recv.Stdout = w
	err = recv.Start()
	w.Close()
	if err != nil {
		return result{}, err
	}
	recvDone := make(chan struct{})
	var recvWait error
	go func() { recvWait = recv.Wait(); close(recvDone) }()
	stopped := false
	stopRecv := func() error {
		if !stopped {
			stopped = true
			recv.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-recvDone:
		case <-time.After(5 * time.Second):
			recv.Process.Kill()
			<-recvDone
			return errors.New("receiver: did not exit within 5s of SIGTERM")
		}
		if recvWait != nil {
			return childError("receiver", recvWait, recvErr)
		}
		recvErr.Forward(os.Stderr)
		return nil
	}
	defer stopRecv()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			if e := stopRecv(); e != nil {
				return result{}, e
			}
			return result{}, fmt.Errorf("receiver: %w", err)
		}
	case <-ctx.Done():
		return result{}, interrupted(ctx)
	case <-time.After(10 * time.Second):
		return result{}, errors.New("receiver did not start within 10s")
	}

	rep, err := runSender(ctx, self, append(env, "FCBENCH_RECV_PID="+strconv.Itoa(recv.Process.Pid)), c, progress)
	if err != nil {
		if ctx.Err() != nil {
			return result{}, interrupted(ctx)
		}
		// The sender failed: because the receiver died, if it has.
		select {
		case <-recvDone:
			return result{}, fmt.Errorf("%w; %v", childError("receiver", fmt.Errorf("exited during the run: %v", recvWait), recvErr), err)
		case <-time.After(time.Second):
		}
		return result{}, err
	}
	if err := stopRecv(); err != nil {
		return result{}, err
	}
	r := rep.result
	// Both processes' CPU time over the same window, the measured rounds.
	msgs := float64(c.N * c.Senders)
	cpu := float64(rep.SenderCPUNS + rep.RecvCPUNS)
	r.CPUUSPerMsg = cpu / msgs / 1e3
	if rep.ElapsedNS > 0 {
		r.CPUPct = 100 * cpu / float64(rep.ElapsedNS)
	}
	return r, nil
}

// interrupted is the error of a run ended by a signal (ctx's end).
func interrupted(ctx context.Context) error {
	return fmt.Errorf("interrupted (%v)", context.Cause(ctx))
}

// childError is a child's failure as one line: who, how it ended, and
// what it said last on stderr (without its "fcbench: ").
func childError(who string, err error, stderr *cli.Tail) error {
	if s := strings.TrimPrefix(stderr.LastLine(), "fcbench: "); s != "" {
		return fmt.Errorf("%s: %s (%v)", who, s, err)
	}
	return fmt.Errorf("%s: %v", who, err)
}

// runSender runs the sender process of configuration c, with environment
// env, and returns its report. When ctx ends the sender is asked to stop
// (SIGTERM), and killed 5 seconds later.
func runSender(ctx context.Context, self string, env []string, c config, progress time.Duration) (senderReport, error) {
	cj, _ := json.Marshal(c)
	send := exec.CommandContext(ctx, self, "-role", "send")
	send.Env = append(env, "FCBENCH_CONFIG="+string(cj), "FCBENCH_PROGRESS="+progress.String(),
		"FCBENCH_PARENT="+strconv.Itoa(os.Getpid()), "FCBENCH_PROGRESS_FD=3")
	send.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	send.Cancel = func() error { return send.Process.Signal(syscall.SIGTERM) }
	send.WaitDelay = 5 * time.Second
	send.ExtraFiles = []*os.File{os.Stderr} // its progress lines, as they come
	errb := &cli.Tail{}
	send.Stderr = errb
	b, err := send.Output()
	if err != nil {
		return senderReport{}, childError("sender", err, errb)
	}
	errb.Forward(os.Stderr)
	var rep senderReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return senderReport{}, fmt.Errorf("sender's report %q: %w", b, err)
	}
	return rep, nil
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration { return sys.CPUTime() }

// receiverName is the local receiver's name.
const receiverName = "FCBENCH"

// receive echoes every request to name until SIGTERM, with Reply or, with
// zeroCopy, in place (see the package comment for what each touches).
func receive(name string, spin, zeroCopy bool, waits []simpl.Option, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach(name, append(waits, simpl.WithSpin(spin))...)
	if err != nil {
		return err
	}
	defer ch.Close()
	fmt.Fprintln(stdout, "ready")
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if msg.Proxy() == 0 {
			echo(msg, zeroCopy)
		}
	}
}

// echo answers msg with its own request. Either way it reads the
// request's first and last bytes, as a receiver that looks at its data
// does; with zeroCopy it writes them into ReplyBuffer and answers in
// place, copying the rest of the request into ReplyBuffer only where that
// is other memory (FIFOs), else (the copying API) it answers with
// Reply(Data()). Its errors are the sender's to see.
func echo(msg simpl.Message, zeroCopy bool) {
	d := msg.Data()
	var first, last byte
	if n := len(d); n > 0 {
		first, last = d[0], d[n-1]
	}
	if !zeroCopy {
		msg.Reply(d)
		return
	}
	buf := msg.ReplyBuffer()
	n := len(d)
	if len(buf) < n {
		msg.ReplyInPlace(n) // fails the Send: its reply buffer is too small
		return
	}
	if n > 0 {
		if &buf[0] != &d[0] {
			copy(buf, d) // FIFOs: the reply goes to other memory
		}
		buf[0], buf[n-1] = first, last
	}
	msg.ReplyInPlace(n)
}

// stamp writes round's stamp into req's first and last bytes and returns
// them as the echo must bring them back.
func stamp(req []byte, round uint32) (first, last byte) {
	n := len(req)
	if n == 0 {
		return 0, 0
	}
	req[0], req[n-1] = byte(round), byte(round>>8)^0x5a
	return req[0], req[n-1]
}

// checkEcho checks a reply to a stamped request of n bytes: n bytes, with
// the stamp's first and last bytes.
func checkEcho(reply []byte, n int, first, last byte) error {
	if len(reply) != n {
		return fmt.Errorf("reply of %d bytes to a %d-byte request", len(reply), n)
	}
	if n > 0 && (reply[0] != first || reply[n-1] != last) {
		return fmt.Errorf("reply of %d bytes is not the request's echo (first and last bytes %d, %d; want %d, %d)",
			n, reply[0], reply[n-1], first, last)
	}
	return nil
}

// sendAll runs c.Senders senders, each with its own name and connection,
// until ctx ends, and prints the result as JSON; every progress (if not 0)
// it says on progressOut how far they are. With recvPID (not 0) it reads
// that receiver's CPU time too, over the same window as its own.
func sendAll(ctx context.Context, c config, recvPID int, progress time.Duration, stdout, progressOut io.Writer) error {
	// GOSIMPL_NATS: -remote straight to NATS, through a gateway of this
	// process's own, gone with it.
	defer netdirect.Close()
	type sender struct {
		send sendFunc
		lat  []time.Duration
		done atomic.Int64
	}
	ss := make([]*sender, c.Senders)
	var rawConn *nats.Conn
	if c.Transport == "nats" {
		nc, err := natsConnect(c.URL)
		if err != nil {
			return err
		}
		defer nc.Close()
		rawConn = nc
	}
	for i := range ss {
		var send sendFunc
		switch c.Transport {
		case "nats":
			send = rawSender(rawConn)
		default:
			var opts []simpl.Option
			target := receiverName
			if c.ThreadWaits != nil {
				opts = append(opts, simpl.WithThreadWaits(*c.ThreadWaits))
			}
			switch c.Transport {
			case "fifo":
				opts = append(opts, simpl.WithTransport(simpl.FIFO))
			case "shm":
				opts = append(opts, simpl.WithTransport(simpl.SHM))
			case "net":
				target = c.Target
			}
			ch, err := simpl.Attach(fmt.Sprintf("FCBENCH_S%d_%d", i, os.Getpid()), append(opts, simpl.WithSpin(c.spin()))...)
			if err != nil {
				return err
			}
			defer ch.Close()
			conn, err := ch.Locate(ctx, target)
			if err != nil {
				return err
			}
			var round uint32
			send = func(ctx context.Context, req, reply []byte) error {
				round++
				first, last := stamp(req, round)
				n, err := conn.Send(ctx, req, reply)
				if err != nil {
					return err
				}
				return checkEcho(reply[:n], len(req), first, last)
			}
			if c.ZeroCopy {
				b, err := conn.Buffer(ctx, c.Size)
				if err != nil {
					return err
				}
				defer b.Close()
				send = func(ctx context.Context, _, _ []byte) error {
					round++
					first, last := stamp(b.Bytes()[:c.Size], round)
					reply, err := b.Send(ctx, c.Size, c.Size)
					if err != nil {
						return err
					}
					return checkEcho(reply, c.Size, first, last)
				}
			}
			if c.Transport == "net" {
				// Across hosts the echo is checked too: a benchmark of
				// wrong answers measures nothing.
				send = func(ctx context.Context, req, reply []byte) error {
					n, err := conn.Send(ctx, req, reply)
					if err == nil && !bytes.Equal(reply[:n], req) {
						err = fmt.Errorf("reply of %d bytes from %s is not the request's %d", n, c.Target, len(req))
					}
					return err
				}
			}
		}
		ss[i] = &sender{send: send, lat: make([]time.Duration, 0, c.N)}
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
				err = s.send(ctx, req, reply)
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
				if err := s.send(ctx, req, reply); err != nil {
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
	m0, merr := machineCPU()
	r0, rerr := processCPU(recvPID)
	t0, cpu0 := time.Now(), cpuTime()
	close(start)
	if progress > 0 {
		stopProgress := make(chan struct{})
		progressDone := make(chan struct{})
		go func() {
			defer close(progressDone)
			t := time.NewTicker(progress)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
				}
				var done int64
				for _, s := range ss {
					done += s.done.Load()
				}
				fmt.Fprintf(progressOut, "fcbench: %s, %s: %d of %d round trips in %v\n",
					c.Transport, sizeText(c.Size), done, c.N*c.Senders, time.Since(t0).Round(time.Second))
			}
		}()
		defer func() { close(stopProgress); <-progressDone }()
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	r1, rerr1 := processCPU(recvPID)
	m1, merr1 := machineCPU()
	if merr == nil {
		merr = merr1
	}
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if firstErr != nil {
		return firstErr
	}
	if rerr = cmp(rerr, rerr1); rerr != nil {
		return fmt.Errorf("the receiver's CPU time: %w", rerr)
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
	r.P99US = us(all[rankIndex(len(all), 99, 100)])
	r.MeanUS = us(sum) / float64(len(all))
	var total int64
	for _, n := range counts {
		total += n
	}
	r.MsgsPerS = float64(total) / firstAt.Sub(t0).Seconds()
	if c.Senders > 1 {
		pct := 100 * float64(slices.Min(counts)) / float64(max(slices.Max(counts), 1))
		r.SlowestPct = &pct
	}
	rep := senderReport{result: r, SenderCPUNS: int64(cpu), RecvCPUNS: int64(r1 - r0), ElapsedNS: int64(elapsed)}
	if merr == nil {
		rep.MachineCPUNS = int64(m1 - m0)
	}
	b, _ := json.Marshal(rep)
	_, err := fmt.Fprintln(stdout, strings.TrimSpace(string(b)))
	return err
}

func cmp(have, err error) error {
	if have != nil {
		return have
	}
	return err
}

// rankIndex is the index, in n sorted values, of the fraction num/den's
// percentile by nearest rank: the ceil(n·num/den)-th value (at least the
// first), so that num/den of the values are at or below it.
func rankIndex(n, num, den int) int {
	return min(max((n*num+den-1)/den-1, 0), n-1)
}

// processCPU is process pid's CPU time so far, user and system, all its
// threads; 0 for pid 0 (no receiver process to read).
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return sys.ProcessCPU(pid)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
