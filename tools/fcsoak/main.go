// Command fcsoak is a soak and chaos test of gosimpl between real
// processes. It starts one receiver process and N sender processes in a
// private FIFO directory for T seconds. Each sender sends requests of
// random sizes, each carrying its sender id, pid, sequence number, random
// payload and a checksum; the receiver checks every request and answers it
// with a reply of the size asked for that echoes the sender id, pid,
// sequence number and request checksum, with its own random payload and
// checksum (some answers come later, from another goroutine). The sender
// checks the reply: a checksum that does not match is corrupt, a reply to
// another request is crossed.
//
// Meanwhile, at random intervals (-kill-every is the mean), it SIGKILLs a
// random sender or the receiver and starts it again at once. The first
// kill is a sender's and the second the receiver's, so even a short run
// exercises both. Senders count the failures this causes by kind
// (peer_gone, not_found, died: the receiver's process died and the sender
// gave up waiting, which the library does not notice by itself over FIFOs,
// deadline, rejected, closed, other), locate the receiver again and go
// on; the receiver counts its failed Replies (mostly to killed senders).
// Every child reports its counts to fcsoak ten times a second; a killed
// child's last report is what counts, so work it did not report is not
// counted at all rather than counted as lost. A sent message is one whose
// Send finished: sent is verified + corrupt + crossed + failed (the
// errors of Sends); failed Locates are counted apart, as no Send was made.
//
// At the end it stops the senders, then the receiver, and looks for what
// they left: anything in the FIFO directory, new /dev/shm entries that
// could be theirs, System V segments any of them created, and child
// processes not reaped. It prints a summary, one figure a line:
//
//	soak of 10.4s: transport auto, 8 senders, seed 42
//	sent              98765  verified + corrupt + crossed + failed
//	  verified        98000
//	  corrupt             0
//	  crossed             0
//	  failed            765  died 25, not_found 40, peer_gone 700
//	locates failed       40  not_found 40
//	received          98700  by the receiver
//	  corrupt             0
//	  crossed             0
//	replied           98600
//	replies failed       55  peer_gone 55
//	restarts             20  receiver 5, senders 15
//	leaked                0  FIFOs 0, /dev/shm 0, System V 0, processes 0
//	crashes               0
//	hangs                 0
//
// (or the same as JSON with -json) and fails, with a one-line cause, on
// any corrupt or crossed message, any leak, a child that exited by itself
// (a crash) or did not stop when asked (a hang), or when no reply at all
// was verified. -seed replays the sizes and payloads, and the choice and
// spacing of kills, though not their timing relative to the messages.
// -progress D prints the counts so far on stderr every D (by default
// every 10 s when stderr is a terminal, else never).
//
// The first SIGINT, SIGTERM or SIGHUP ends a run early, in order, as its
// time running out would (children stopped, leak checks, summary), but
// the run does not pass: the summary's first line says "(interrupted, of
// T asked)" (-json: "interrupted": true, duration_asked, seconds_asked)
// and fcsoak exits 1 with the one line "interrupted after X of T" (and
// the cause of any real failure). A second such signal ends fcsoak at
// once. The children die with fcsoak however it ends (SIGTERM,
// PR_SET_PDEATHSIG); the FIFO directory ($TMPDIR/fcsoak-PID-*) and the
// binary's copy for nobody ($TMPDIR/fcsoak-bin-PID-*) a killed fcsoak
// leaves, the next one removes.
//
// The chaos options (-chaos for all) add attacker processes, run as the
// nobody user when fcsoak runs as root (the receiver then attaches with
// mode 0666 so that they reach it), else as fcsoak's own user: -stray
// writes stray bytes into the receiver's receive FIFO, -flood holds idle
// connections to its shm socket, -lanes takes as many of its shm lanes as
// one process can, -big sends big requests to a receiver slow over them
// while fcsoak watches its resident set (-max-rss), and -squat forges
// NAME.PID entries with other users' pids. Each adds its counts to the
// summary; a legitimate Send with no answer within its deadline from a
// live receiver fails the run (docs/soak.md).
//
//	fcsoak [-senders N] [-duration T] [-max-size BYTES] [-kill-every D] [-transport fifo|shm|auto] [-seed N] [-json] [-progress D] [-chaos] [-stray] [-flood] [-lanes] [-big] [-squat] [-stray-every D] [-flood-conns N] [-lanes-max N] [-big-size BYTES] [-big-senders N] [-big-delay D] [-max-rss BYTES]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
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
	"github.com/gosimpl/gosimpl/tools/internal/cli"
)

const usage = "usage: fcsoak [-senders N] [-duration T] [-max-size BYTES] [-kill-every D] [-transport fifo|shm|auto] [-seed N] [-json] [-progress D] [-chaos] [-stray] [-flood] [-lanes] [-big] [-squat] [-stray-every D] [-flood-conns N] [-lanes-max N] [-big-size BYTES] [-big-senders N] [-big-delay D] [-max-rss BYTES]"

// chaosHelp ends -h: who the attackers are.
const chaosHelp = `chaos options:
  Each attack runs in a process of its own, as the nobody user (uid 65534;
  the flood as uid 65533) when fcsoak runs as root, else as fcsoak's own
  user. As another user, the FIFO
  directory is opened to every user as /var/tmp is (mode 1777) and the
  receiver attaches with mode 0666 when an attack must reach it (all but
  -squat); the summary says which. A Send with no answer within 10s from a
  live receiver (hung, or dropped without an answer) fails the run.
`

func main() {
	cli.Exit("fcsoak", run(os.Args[1:], os.Stdout))
}

// Time limits on the children. They bound hangs; nothing is expected to
// come near them.
const (
	startTimeout = 30 * time.Second // the first receiver's first report
	stopTimeout  = 30 * time.Second // every sender, then the receiver, once asked to stop
	maxCrashes   = 20               // give up early after this many
)

// report is fcsoak's result: the children's counts (see counts) summed,
// and what fcsoak saw itself.
type report struct {
	counts
	ReceiverRestarts int     `json:"receiver_restarts"`
	SenderRestarts   int     `json:"sender_restarts"`
	LeakedFIFOs      int     `json:"leaked_fifos"`
	LeakedShm        int     `json:"leaked_shm"`
	LeakedSysV       int     `json:"leaked_sysv"`
	LeakedProcs      int     `json:"leaked_procs"`
	Crashes          int     `json:"crashes"`
	Hangs            int     `json:"hangs"`
	Duration         string  `json:"duration"`
	Seconds          float64 `json:"seconds"`
	// A run a signal ended early: how long it was asked to run.
	Interrupted   bool    `json:"interrupted"`
	DurationAsked string  `json:"duration_asked"`
	SecondsAsked  float64 `json:"seconds_asked"`
	Transport     string  `json:"transport"`
	Senders       int     `json:"senders"`
	Seed          uint64  `json:"seed"`

	// The chaos options.
	Attacks       []string `json:"attacks"`        // the attacks enabled, if any
	AttackUID     int      `json:"attack_uid"`     // the user the attackers ran as
	ReceiverPerm  string   `json:"receiver_perm"`  // the receiver's mode: 0600, or 0666 for attackers of another user
	MaxRSS        int64    `json:"max_rss"`        // the receiver's largest VmRSS seen, in bytes
	RSSLimit      int64    `json:"rss_limit"`      // the bound on it, 0 for none
	ForgedRemoved int      `json:"forged_removed"` // forged FIFOs fcsoak removed at the end

	// What went wrong first, for the one-line cause.
	FirstBad   string `json:"first_bad,omitempty"`
	FirstOther string `json:"first_other,omitempty"`
	FirstCrash string `json:"first_crash,omitempty"`
	FirstHang  string `json:"first_hang,omitempty"`
	Leaks      string `json:"leaks,omitempty"`
}

// MarshalJSON writes every count, zeros and empty maps included: a
// machine reading the report finds each field it knows.
func (r *report) MarshalJSON() ([]byte, error) {
	type plain report // without this method
	c := r.counts
	for _, m := range append([]*map[string]int64{&c.SendErrors, &c.LocateErrors, &c.ReplyErrors}, c.attackCounts.maps()...) {
		if *m == nil {
			*m = map[string]int64{}
		}
	}
	return json.Marshal(struct {
		Sent            int64            `json:"sent"`
		Verified        int64            `json:"verified"`
		Corrupt         int64            `json:"corrupt"`
		Crossed         int64            `json:"crossed"`
		Failed          int64            `json:"failed"`
		SendErrors      map[string]int64 `json:"send_errors"`
		LocateErrors    map[string]int64 `json:"locate_errors"`
		Received        int64            `json:"received"`
		CorruptRequests int64            `json:"corrupt_requests"`
		CrossedRequests int64            `json:"crossed_requests"`
		Replied         int64            `json:"replied"`
		ReplyErrors     map[string]int64 `json:"reply_errors"`
		HungSends       int64            `json:"hung_sends"`
		StrayWrites     int64            `json:"stray_writes"`
		StrayBytes      int64            `json:"stray_bytes"`
		StrayErrors     map[string]int64 `json:"stray_errors"`
		FloodConnects   int64            `json:"flood_connects"`
		FloodHeld       int64            `json:"flood_held"`
		FloodErrors     map[string]int64 `json:"flood_errors"`
		LanesHeld       int64            `json:"lanes_held"`
		LaneConnects    int64            `json:"lane_connects"`
		LaneErrors      map[string]int64 `json:"lane_errors"`
		BigSent         int64            `json:"big_sent"`
		BigVerified     int64            `json:"big_verified"`
		BigErrors       map[string]int64 `json:"big_errors"`
		BigReceived     int64            `json:"big_received"`
		ForgedMade      int64            `json:"forged_made"`
		ForgedHeld      int64            `json:"forged_held"`
		ForgedErrors    map[string]int64 `json:"forged_errors"`
		Attacks         []string         `json:"attacks"`
		*plain
	}{c.Sent, c.Verified, c.Corrupt, c.Crossed, sum(c.SendErrors), c.SendErrors, c.LocateErrors,
		c.Received, c.CorruptRequests, c.CrossedRequests, c.Replied, c.ReplyErrors, c.SendErrors["deadline"],
		c.StrayWrites, c.StrayBytes, c.StrayErrors, c.FloodConnects, c.FloodHeld, c.FloodErrors,
		c.LanesHeld, c.LaneConnects, c.LaneErrors, c.BigSent, c.BigVerified, c.BigErrors, c.BigReceived,
		c.ForgedMade, c.ForgedHeld, c.ForgedErrors, append([]string{}, r.Attacks...), (*plain)(r)})
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// kinds is m as "a 1, b 2", by kind.
func kinds(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// String is the summary a person reads: a line a figure, labels on the
// left, figures aligned right, what a figure is made of after it.
func (r *report) String() string {
	type row struct {
		label  string
		n      int64
		detail string
	}
	rows := []row{
		{"sent", r.Sent, "verified + corrupt + crossed + failed"},
		{"  verified", r.Verified, ""},
		{"  corrupt", r.Corrupt, ""},
		{"  crossed", r.Crossed, ""},
		{"  failed", sum(r.SendErrors), kinds(r.SendErrors)},
		{"locates failed", sum(r.LocateErrors), kinds(r.LocateErrors)},
		{"received", r.Received, "by the receiver"},
		{"  corrupt", r.CorruptRequests, ""},
		{"  crossed", r.CrossedRequests, ""},
		{"replied", r.Replied, ""},
		{"replies failed", sum(r.ReplyErrors), kinds(r.ReplyErrors)},
		{"restarts", int64(r.ReceiverRestarts + r.SenderRestarts), fmt.Sprintf("receiver %d, senders %d", r.ReceiverRestarts, r.SenderRestarts)},
		{"leaked", int64(r.LeakedFIFOs + r.LeakedShm + r.LeakedSysV + r.LeakedProcs),
			fmt.Sprintf("FIFOs %d, /dev/shm %d, System V %d, processes %d", r.LeakedFIFOs, r.LeakedShm, r.LeakedSysV, r.LeakedProcs)},
		{"crashes", int64(r.Crashes), ""},
		{"hangs", int64(r.Hangs), ""},
	}
	on := func(kind string) bool { return slices.Contains(r.Attacks, kind) }
	withErrs := func(detail string, m map[string]int64) string {
		if len(m) > 0 {
			detail += "; errors " + kinds(m)
		}
		return detail
	}
	if on("stray") {
		rows = append(rows, row{"stray writes", r.StrayWrites, withErrs(fmt.Sprintf("%d bytes", r.StrayBytes), r.StrayErrors)})
	}
	if on("flood") {
		rows = append(rows, row{"flood connects", r.FloodConnects, withErrs(fmt.Sprintf("held at most %d", r.FloodHeld), r.FloodErrors)})
	}
	if on("lanes") {
		rows = append(rows, row{"lanes held", r.LanesHeld, withErrs(fmt.Sprintf("at most; %d located", r.LaneConnects), r.LaneErrors)})
	}
	if on("big") {
		rows = append(rows, row{"big sent", r.BigSent, withErrs(fmt.Sprintf("verified %d", r.BigVerified), r.BigErrors)})
	}
	if on("squat") {
		rows = append(rows, row{"forged made", r.ForgedMade, withErrs(fmt.Sprintf("held open %d, removed at end %d", r.ForgedHeld, r.ForgedRemoved), r.ForgedErrors)})
	}
	if len(r.Attacks) > 0 {
		limit := "no limit"
		if r.RSSLimit > 0 {
			limit = fmt.Sprintf("limit %d MiB", r.RSSLimit>>20)
		}
		rows = append(rows, row{"receiver MiB", r.MaxRSS >> 20, "largest VmRSS seen; " + limit})
	}
	lw, nw := 0, 0
	for _, x := range rows {
		lw = max(lw, len(x.label))
		nw = max(nw, len(strconv.FormatInt(x.n, 10)))
	}
	var b strings.Builder
	ran := r.Duration
	if r.Interrupted {
		ran += " (interrupted, of " + r.DurationAsked + " asked)"
	}
	fmt.Fprintf(&b, "soak of %s: transport %s, %d senders, seed %d\n", ran, r.Transport, r.Senders, r.Seed)
	if len(r.Attacks) > 0 {
		fmt.Fprintf(&b, "chaos: %s\n", r.chaosText())
	}
	for _, x := range rows {
		line := fmt.Sprintf("%-*s  %*d  %s", lw, x.label, nw, x.n, x.detail)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// chaosText says which attacks ran, as whom, and the receiver's mode.
func (r *report) chaosText() string {
	who := fmt.Sprintf("as nobody (uid %d)", r.AttackUID)
	if slices.Contains(r.Attacks, "flood") && len(r.Attacks) > 1 {
		who = fmt.Sprintf("as nobody (uid %d; the flood as uid %d)", r.AttackUID, floodUID)
	}
	if r.AttackUID == os.Getuid() {
		who = fmt.Sprintf("as the same user (uid %d)", r.AttackUID)
	}
	return fmt.Sprintf("%s %s; receiver mode %s", strings.Join(r.Attacks, ", "), who, r.ReceiverPerm)
}

// failure is the one-line cause of a failed run, or nil.
func (r *report) failure() error {
	switch {
	case r.bad() > 0:
		return fmt.Errorf("%d corrupt and %d crossed messages; first: %s",
			r.Corrupt+r.CorruptRequests, r.Crossed+r.CrossedRequests, r.FirstBad)
	case r.LeakedFIFOs+r.LeakedShm+r.LeakedSysV+r.LeakedProcs > 0:
		return fmt.Errorf("leaked %d FIFOs, %d /dev/shm entries, %d System V segments, %d processes: %s",
			r.LeakedFIFOs, r.LeakedShm, r.LeakedSysV, r.LeakedProcs, r.Leaks)
	case r.SendErrors["deadline"] > 0:
		return fmt.Errorf("%d Sends had no answer within %v from a live receiver (hung, or dropped without an answer)", r.SendErrors["deadline"], sendTimeout)
	case r.BigErrors["deadline_dead_receiver"] > 0:
		return fmt.Errorf("%d big requests had no answer within %v from a receiver that had died (its death went unnoticed)", r.BigErrors["deadline_dead_receiver"], sendTimeout)
	case r.BigErrors["deadline"] > 0:
		return fmt.Errorf("%d big requests had no answer within %v from a live receiver (hung, or dropped without an answer)", r.BigErrors["deadline"], sendTimeout)
	case r.RSSLimit > 0 && r.MaxRSS > r.RSSLimit:
		return fmt.Errorf("the receiver's resident set reached %d MiB, over the limit of %d MiB (-max-rss)", r.MaxRSS>>20, r.RSSLimit>>20)
	case r.Crashes > 0:
		return fmt.Errorf("%d children exited by themselves; first: %s", r.Crashes, r.FirstCrash)
	case r.Hangs > 0:
		return fmt.Errorf("%d children did not stop within %v; first: %s", r.Hangs, stopTimeout, r.FirstHang)
	case r.Verified == 0:
		return errors.New("no reply was verified")
	}
	return nil
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fcsoak", flag.ContinueOnError)
	senders := fs.Int("senders", 8, "sender processes")
	duration := fs.Duration("duration", 10*time.Second, "how long to run")
	maxSize := fs.Int("max-size", 64<<10, "largest request and reply, in bytes")
	killEvery := fs.Duration("kill-every", 500*time.Millisecond, "mean interval between SIGKILLs (0: none)")
	transport := fs.String("transport", "", "fifo, shm or auto (default: $GOSIMPL_TRANSPORT, else auto)")
	seed := fs.Uint64("seed", 0, "random seed (0: pick one)")
	asJSON := fs.Bool("json", false, "print the summary as a JSON object")
	progress := fs.Duration("progress", 0, "print the counts so far on stderr every `D` (default: 10s when stderr is a terminal, else never)")
	role := fs.String("role", "", "internal: recv or send")
	id := fs.Int("id", 0, "internal: the sender's number")
	inject := fs.String("inject", "", "internal: make the receiver corrupt or cross every 50th reply, to test fcsoak itself")
	attackKind := fs.String("attack", "", "internal: the attacker's kind")
	openPerm := fs.Bool("open", false, "internal: the receiver attaches with mode 0666")
	on := map[string]*bool{
		"stray": fs.Bool("stray", false, "chaos: write stray bytes (1 to 7 at a time) into the receiver's receive FIFO at random intervals"),
		"flood": fs.Bool("flood", false, "chaos: hold -flood-conns idle connections to the receiver's shm socket, reconnecting as it restarts"),
		"lanes": fs.Bool("lanes", false, "chaos: one process takes as many of the receiver's shm lanes as it can (up to -lanes-max Conns)"),
		"big":   fs.Bool("big", false, "chaos: send -big-size requests, -big-senders at a time, to a receiver slow over each (-big-delay); fail if its RSS passes -max-rss"),
		"squat": fs.Bool("squat", false, "chaos: make forged NAME.PID and YNAME.PID FIFOs (another user's pid) for the receiver's, the senders' and random names"),
	}
	all := fs.Bool("chaos", false, "chaos: all of -stray, -flood, -lanes, -big and -squat (with -transport fifo, all but -flood and -lanes)")
	var ao attackOptions
	fs.DurationVar(&ao.strayEvery, "stray-every", 100*time.Millisecond, "mean interval between stray writes (-stray)")
	fs.IntVar(&ao.floodConns, "flood-conns", 1000, "idle connections the flood holds at once (-flood)")
	fs.IntVar(&ao.lanesMax, "lanes-max", 5000, "most Conns, each a lane, the lane grabber holds (-lanes)")
	fs.IntVar(&ao.bigSize, "big-size", 8<<20, "bytes of a big request (-big), at most 64 MiB")
	fs.IntVar(&ao.bigSenders, "big-senders", 4, "big requests in flight at once (-big)")
	fs.DurationVar(&ao.bigDelay, "big-delay", 20*time.Millisecond, "how long the receiver dawdles over each big request (-big)")
	maxRSS := fs.Int64("max-rss", 0, "fail if the receiver's resident set passes this many `bytes` (default with -big: 64 MiB + (-big-senders + 6) × -big-size + 2 × -senders × -max-size; otherwise no limit)")
	if help, err := cli.ParsePrivate(fs, args, usage, stdout, chaosHelp); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New(usage)
	}
	if *transport == "" {
		*transport = os.Getenv("GOSIMPL_TRANSPORT")
		if *transport == "" {
			*transport = "auto"
		}
	}
	switch *transport {
	case "fifo", "shm", "auto":
	default:
		return fmt.Errorf("-transport %q: want fifo, shm or auto", *transport)
	}
	if *maxSize < hdrLen || *maxSize > 64<<20 {
		return fmt.Errorf("-max-size %d: want %d to %d", *maxSize, hdrLen, 64<<20)
	}
	switch *inject {
	case "", "corrupt", "cross":
	default:
		return fmt.Errorf("-inject %q: internal flag", *inject)
	}
	switch {
	case ao.strayEvery <= 0:
		return fmt.Errorf("-stray-every %v: must be more than 0", ao.strayEvery)
	case ao.bigDelay < 0:
		return fmt.Errorf("-big-delay %v: must be 0 or more", ao.bigDelay)
	case ao.floodConns < 1 || ao.floodConns > 100000:
		return fmt.Errorf("-flood-conns %d: want 1 to 100000", ao.floodConns)
	case ao.lanesMax < 1 || ao.lanesMax > 100000:
		return fmt.Errorf("-lanes-max %d: want 1 to 100000", ao.lanesMax)
	case ao.bigSize < hdrLen || ao.bigSize > 64<<20:
		return fmt.Errorf("-big-size %d: want %d to %d", ao.bigSize, hdrLen, 64<<20)
	case ao.bigSenders < 1 || ao.bigSenders > 64:
		return fmt.Errorf("-big-senders %d: want 1 to 64", ao.bigSenders)
	case *maxRSS < 0:
		return fmt.Errorf("-max-rss %d: must be 0 or more", *maxRSS)
	}
	co := childOptions{id: *id, seed: *seed, maxSize: *maxSize, transport: *transport, inject: *inject, open: *openPerm, senders: *senders, attack: ao}
	switch *role {
	case "recv":
		return receive(co, stdout)
	case "send":
		return send(co, stdout)
	case "attack":
		return attack(*attackKind, co, stdout)
	case "":
	default:
		return fmt.Errorf("-role %q: internal flag", *role)
	}
	switch {
	case *senders < 1 || *senders > 256:
		return fmt.Errorf("-senders %d: want 1 to 256", *senders)
	case *duration <= 0:
		return fmt.Errorf("-duration %v: must be more than 0", *duration)
	case *killEvery < 0:
		return fmt.Errorf("-kill-every %v: must be 0 or more", *killEvery)
	case *progress < 0:
		return fmt.Errorf("-progress %v: must be 0 or more", *progress)
	}
	var attacks []string
	for _, k := range attackKinds {
		// -chaos over FIFOs alone leaves out the attacks on shm.
		shmOnly := k == "flood" || k == "lanes"
		if *on[k] || (*all && !(shmOnly && *transport == "fifo")) {
			attacks = append(attacks, k)
		}
	}
	if *transport == "fifo" && (*on["flood"] || *on["lanes"]) {
		return errors.New("-flood and -lanes attack the shm transport: use -transport shm or auto")
	}
	if *maxRSS == 0 && slices.Contains(attacks, "big") {
		*maxRSS = defaultMaxRSS(ao.bigSize, ao.bigSenders, *senders, *maxSize)
	}
	if !isSet(fs, "progress") && sys.IsTerminal(os.Stderr) {
		*progress = 10 * time.Second
	}
	if *seed == 0 {
		*seed = rand.Uint64()>>1 | 1
	}
	// The first SIGINT, SIGTERM or SIGHUP ends the run early, in order
	// (the summary marks it interrupted); after it they have their
	// default effect again, so that a second ^C ends fcsoak at once (its
	// children die with it: PR_SET_PDEATHSIG).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	context.AfterFunc(ctx, stop)
	s := &soak{
		senders:   *senders,
		duration:  *duration,
		killEvery: *killEvery,
		opts:      childOptions{seed: *seed, maxSize: *maxSize, transport: *transport, inject: *inject, senders: *senders, attack: ao},
		attacks:   attacks,
		rng:       rand.New(rand.NewPCG(*seed, 0)),
		pids:      make(map[int]bool),
		exited:    make(chan *proc),
		progress:  *progress,
		r: report{
			counts:    counts{SendErrors: map[string]int64{}, LocateErrors: map[string]int64{}, ReplyErrors: map[string]int64{}},
			Transport: *transport, Senders: *senders, Seed: *seed,
			Attacks: attacks, AttackUID: -1, ReceiverPerm: "0600", RSSLimit: *maxRSS,
			DurationAsked: duration.String(), SecondsAsked: duration.Seconds(),
		},
	}
	if s.progress > 0 {
		fmt.Fprintf(os.Stderr, "fcsoak: %d senders for %v, transport %s, %s, seed %d\n", s.senders, s.duration, *transport, killText(s.killEvery), *seed)
	}
	if len(attacks) > 0 {
		s.setupChaos()
		if s.progress > 0 {
			fmt.Fprintf(os.Stderr, "fcsoak: chaos: %s\n", s.r.chaosText())
		}
	}
	if err := s.run(ctx); err != nil {
		return err
	}
	r := &s.r
	if *asJSON {
		b, _ := json.Marshal(r)
		if _, err := fmt.Fprintln(stdout, string(b)); err != nil {
			return err
		}
	} else if _, err := fmt.Fprint(stdout, r); err != nil {
		return err
	}
	err := r.failure()
	if r.Interrupted {
		// Not a pass: the run was cut short.
		if err != nil {
			return fmt.Errorf("interrupted after %s of %s; %w", r.Duration, r.DurationAsked, err)
		}
		return fmt.Errorf("interrupted after %s of %s", r.Duration, r.DurationAsked)
	}
	return err
}

// soak is one run: the children and the totals.
type soak struct {
	senders   int
	duration  time.Duration
	killEvery time.Duration
	progress  time.Duration // how often to print the counts so far; 0: never
	opts      childOptions
	rng       *rand.Rand
	attacks   []string // the chaos options enabled

	asNobody bool    // the attackers run as nobody
	attack   []*proc // the current attackers, by attacks' order
	recvPID  atomic.Int64
	maxRSS   atomic.Int64

	self   string
	dir    string
	env    []string
	recv   *proc   // the current receiver
	send   []*proc // the current senders, by id
	pids   map[int]bool
	spawns int // children started, for their seeds
	exited chan *proc
	live   int // children started and not yet seen in exited
	r      report
}

// proc is one child process, one incarnation of the receiver or a sender.
type proc struct {
	id     int    // the sender's number; -1 for the receiver; -2 for an attacker
	attack string // the attacker's kind
	cmd    *exec.Cmd
	stderr cli.Tail
	first  chan struct{} // closed at its first report

	mu   sync.Mutex
	last counts // its last report

	// Owned by the goroutine running soak.run.
	killed bool // SIGKILLed by us
	termed bool // asked to stop
	gone   bool // exited, waited for and accounted
}

func (p *proc) String() string {
	if p.attack != "" {
		return fmt.Sprintf("%s attacker (pid %d)", p.attack, p.cmd.Process.Pid)
	}
	if p.id < 0 {
		return fmt.Sprintf("receiver (pid %d)", p.cmd.Process.Pid)
	}
	return fmt.Sprintf("sender %d (pid %d)", p.id, p.cmd.Process.Pid)
}

func (s *soak) run(ctx context.Context) (err error) {
	if s.self, err = os.Executable(); err != nil {
		return err
	}
	cli.SweepStale("fcsoak-bin") // copies of the binary killed runs left (shareWithNobody)
	if s.dir, err = cli.PrivateDir("fcsoak"); err != nil {
		return err
	}
	defer os.RemoveAll(s.dir)
	if s.asNobody {
		cleanup, err := s.shareWithNobody()
		if err != nil {
			return err
		}
		defer cleanup()
	}
	s.env = append(os.Environ(), "FIFO_PATH="+s.dir, "GOSIMPL_TRANSPORT="+s.opts.transport)
	if os.Getenv("GORACE") == "" {
		// Race-enabled children (under go test -race) exit at once;
		// a race still makes them exit 66, which is a crash.
		s.env = append(s.env, "GORACE=atexit_sleep_ms=0")
	}
	shmBefore := shmNames()
	start := time.Now()
	defer func() {
		// Whatever happened, no child outlives fcsoak.
		for s.live > 0 {
			for _, p := range append(append([]*proc{s.recv}, s.send...), s.attack...) {
				if p != nil && !p.gone {
					p.cmd.Process.Kill()
				}
			}
			s.account(<-s.exited)
		}
	}()

	if s.recv, err = s.spawn(-1); err != nil {
		return err
	}
	select {
	case <-s.recv.first:
	case <-ctx.Done():
		return fmt.Errorf("interrupted before the run started (%v)", context.Cause(ctx))
	case p := <-s.exited:
		s.account(p)
		return fmt.Errorf("the receiver exited before it started: %s", p.exitCause())
	case <-time.After(startTimeout):
		return fmt.Errorf("the receiver did not start within %v", startTimeout)
	}
	s.send = make([]*proc, s.senders)
	for i := range s.send {
		if s.send[i], err = s.spawn(i); err != nil {
			return err
		}
	}

	stopSampling := s.sampleRSS()
	for _, kind := range s.attacks {
		p, err := s.spawnAttacker(kind)
		if err != nil {
			return err
		}
		s.attack = append(s.attack, p)
	}

	if err := s.chaos(ctx, time.After(s.duration)); err != nil {
		return err
	}
	if err := s.stopAttackers(); err != nil {
		return err
	}
	if err := s.settle(); err != nil {
		return err
	}
	if err := s.stop(); err != nil {
		return err
	}
	stopSampling()
	d := time.Since(start)
	s.r.Duration = d.Round(100 * time.Millisecond).String()
	s.r.Seconds = d.Seconds()
	s.r.ForgedRemoved = s.removeForged()
	s.checkLeaks(shmBefore)
	return nil
}

// spawn starts a child: the receiver (id -1) or sender id.
func (s *soak) spawn(id int) (*proc, error) {
	s.spawns++
	args := []string{"-role", "send", "-id", strconv.Itoa(id)}
	if id < 0 {
		args = []string{"-role", "recv"}
		if s.opts.inject != "" {
			args = append(args, "-inject", s.opts.inject)
		}
		if s.opts.open {
			args = append(args, "-open")
		}
	}
	seed := s.opts.seed*1_000_003 + uint64(s.spawns)
	return s.start(&proc{id: id, first: make(chan struct{})}, args, seed)
}

// start starts p, a child with args (and the settings every child gets).
func (s *soak) start(p *proc, args []string, seed uint64) (*proc, error) {
	args = append(args, "-seed", strconv.FormatUint(seed, 10),
		"-max-size", strconv.Itoa(s.opts.maxSize), "-transport", s.opts.transport,
		"-senders", strconv.Itoa(s.senders))
	args = append(args, s.opts.attack.args()...)
	p.cmd = exec.Command(s.self, args...)
	p.cmd.Env = s.env
	p.cmd.Stderr = &p.stderr
	// A process group of its own: a ^C at the terminal stops fcsoak, which
	// then stops its children in order, rather than every child at once.
	// SIGTERM when fcsoak exits, however it exits (PR_SET_PDEATHSIG: set
	// after the change of user, which would clear it; the child checks
	// that fcsoak still lives): none outlives a killed fcsoak.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if p.attack != "" && s.asNobody {
		uid := uint32(nobodyUID)
		if p.attack == "flood" {
			uid = floodUID
		}
		p.cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: uid}
		p.cmd.Dir = "/"
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	s.pids[p.cmd.Process.Pid] = true
	s.live++
	if p.id == -1 && p.attack == "" {
		s.recvPID.Store(int64(p.cmd.Process.Pid))
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 1<<20)
		started := false
		for sc.Scan() {
			var c counts
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				continue // a line cut short by a kill; pipes keep lines whole, but still
			}
			p.mu.Lock()
			p.last = c
			p.mu.Unlock()
			if !started {
				started = true
				close(p.first)
			}
		}
		io.Copy(io.Discard, out)
		p.cmd.Wait()
		s.exited <- p
	}()
	return p, nil
}

// chaos kills and restarts children until end or ctx ends.
func (s *soak) chaos(ctx context.Context, end <-chan time.Time) error {
	var kill <-chan time.Time
	next := func() {
		if s.killEvery > 0 {
			d := time.Duration(s.rng.ExpFloat64() * float64(s.killEvery))
			kill = time.After(max(d, time.Millisecond))
		}
	}
	next()
	kills := 0
	var tick <-chan time.Time
	if s.progress > 0 {
		t := time.NewTicker(s.progress)
		defer t.Stop()
		tick = t.C
	}
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			s.r.Interrupted = true
			return nil
		case <-end:
			if s.progress > 0 {
				s.printProgress(start, kills)
			}
			return nil
		case <-tick:
			s.printProgress(start, kills)
		case <-kill:
			next()
			var victim *proc
			switch {
			case kills == 1 || (kills > 1 && s.rng.IntN(4) == 0):
				victim = s.recv
			default:
				victim = s.send[s.rng.IntN(len(s.send))]
			}
			if victim.killed || victim.gone {
				continue // still on its way out
			}
			victim.killed = true
			victim.cmd.Process.Signal(syscall.SIGKILL)
			kills++
		case p := <-s.exited:
			s.account(p)
			if !p.killed {
				s.crashed(p)
			}
			if err := s.restart(p); err != nil {
				return err
			}
			if s.r.Crashes >= maxCrashes {
				return nil
			}
		}
	}
}

// restart starts p's successor.
func (s *soak) restart(p *proc) error {
	if p.attack != "" {
		return s.restartAttacker(p)
	}
	q, err := s.spawn(p.id)
	if err != nil {
		return err
	}
	if p.id < 0 {
		s.recv = q
		s.r.ReceiverRestarts++
	} else {
		s.send[p.id] = q
		s.r.SenderRestarts++
	}
	return nil
}

// settle waits, once the kills have stopped, until every child killed
// last has been restarted and every child has attached its name (sent its
// first report). A SIGKILLed process leaves its FIFOs for the next
// process attaching its name to reap, so each name must end with a process
// that detaches cleanly; and one asked to stop before it has attached
// could not stop cleanly.
func (s *soak) settle() error {
	timeout := time.After(startTimeout)
	for {
		var starting *proc
		killed := false
		for _, p := range append([]*proc{s.recv}, s.send...) {
			switch {
			case p.killed:
				killed = true
			case !started(p):
				starting = p
			}
		}
		if !killed && starting == nil {
			return nil
		}
		var first chan struct{}
		if starting != nil {
			first = starting.first
		}
		select {
		case p := <-s.exited:
			s.account(p)
			if !p.killed {
				s.crashed(p)
			}
			if err := s.restart(p); err != nil {
				return err
			}
		case <-first:
		case <-timeout:
			return fmt.Errorf("children did not all start within %v after the last kill", startTimeout)
		}
	}
}

func started(p *proc) bool {
	select {
	case <-p.first:
		return true
	default:
		return false
	}
}

// stop asks every sender to stop, then the receiver, which is restarted
// if it crashes until the senders are gone.
func (s *soak) stop() error {
	for _, p := range s.send {
		s.term(p)
	}
	senders := s.senders
	timeout := time.After(stopTimeout)
	for senders > 0 {
		select {
		case p := <-s.exited:
			s.account(p)
			if p.id < 0 {
				if !p.killed {
					s.crashed(p)
				}
				if err := s.restart(p); err != nil {
					return err
				}
				continue
			}
			if p != s.send[p.id] {
				continue // an old incarnation: its successor is what we wait for
			}
			s.stopped(p)
			senders--
		case <-timeout:
			for _, p := range s.send {
				if !p.gone && !p.killed {
					s.hung(p)
				}
			}
			timeout = nil
		}
	}
	s.term(s.recv)
	timeout = time.After(stopTimeout)
	for s.live > 0 {
		select {
		case p := <-s.exited:
			s.account(p)
			if p == s.recv {
				s.stopped(p)
			}
		case <-timeout:
			if !s.recv.gone && !s.recv.killed {
				s.hung(s.recv)
			}
			timeout = nil
		}
	}
	return nil
}

// term asks p to stop (a killed p is already stopping).
func (s *soak) term(p *proc) {
	if !p.killed {
		p.termed = true
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// stopped checks how a child asked to stop ended: exit 0, or SIGTERM
// itself if it came before the child set up its handler.
func (s *soak) stopped(p *proc) {
	if p.killed {
		return
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if p.cmd.ProcessState.ExitCode() == 0 || (ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
		return
	}
	s.crashed(p)
}

func (s *soak) hung(p *proc) {
	s.r.Hangs++
	if s.r.FirstHang == "" {
		s.r.FirstHang = p.String()
	}
	p.killed = true
	p.cmd.Process.Kill()
}

func (s *soak) crashed(p *proc) {
	s.r.Crashes++
	if s.r.FirstCrash == "" {
		s.r.FirstCrash = fmt.Sprintf("%v: %s", p, p.exitCause())
	}
}

func (p *proc) exitCause() string {
	cause := p.cmd.ProcessState.String()
	if e := p.stderr.LastLine(); e != "" {
		cause += ": " + e
	}
	return cause
}

// account adds p's last report to the totals.
func (s *soak) account(p *proc) {
	s.live--
	p.gone = true
	p.mu.Lock()
	c := p.last
	p.mu.Unlock()
	r := &s.r
	r.add(&c)
	if r.FirstBad == "" && c.Bad != "" {
		r.FirstBad = fmt.Sprintf("%v: %s", p, c.Bad)
	}
	if r.FirstOther == "" && c.Other != "" {
		r.FirstOther = fmt.Sprintf("%v: %s", p, c.Other)
	}
}

// add adds c's counts to r's.
func (r *counts) add(c *counts) {
	r.Sent += c.Sent
	r.Verified += c.Verified
	r.Corrupt += c.Corrupt
	r.Crossed += c.Crossed
	r.Received += c.Received
	r.CorruptRequests += c.CorruptRequests
	r.CrossedRequests += c.CrossedRequests
	r.Replied += c.Replied
	for _, m := range [][2]map[string]int64{{r.SendErrors, c.SendErrors}, {r.LocateErrors, c.LocateErrors}, {r.ReplyErrors, c.ReplyErrors}} {
		for k, n := range m[1] {
			m[0][k] += n
		}
	}
	r.addAttack(&c.attackCounts)
}

// printProgress prints the counts so far on stderr: those of the children
// gone and the last report of each live one.
func (s *soak) printProgress(start time.Time, kills int) {
	c := counts{SendErrors: map[string]int64{}, LocateErrors: map[string]int64{}, ReplyErrors: map[string]int64{}}
	c.add(&s.r.counts)
	for _, p := range append([]*proc{s.recv}, s.send...) {
		if p != nil && !p.gone {
			p.mu.Lock()
			last := p.last
			p.mu.Unlock()
			c.add(&last)
		}
	}
	fmt.Fprintf(os.Stderr, "fcsoak: %v of %v: sent %d, verified %d, corrupt %d, crossed %d, failed %d, kills %d\n",
		time.Since(start).Round(time.Second), s.duration, c.Sent, c.Verified, c.Corrupt+c.CorruptRequests,
		c.Crossed+c.CrossedRequests, sum(c.SendErrors), kills)
}

func killText(every time.Duration) string {
	if every == 0 {
		return "no kills"
	}
	return fmt.Sprintf("a kill every %v on average", every)
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkLeaks looks for what the children left once all of them are gone.
func (s *soak) checkLeaks(shmBefore map[string]bool) {
	var all []string
	add := func(n *int, what []string) {
		*n = len(what)
		all = append(all, what...)
	}
	add(&s.r.LeakedFIFOs, fifoLeaks(s.dir))
	if shmBefore != nil {
		add(&s.r.LeakedShm, shmLeaks(shmBefore, s.pids))
	}
	add(&s.r.LeakedSysV, sysvLeaks(s.pids))
	add(&s.r.LeakedProcs, childProcs())
	if len(all) > 10 {
		all = append(all[:10], fmt.Sprintf("and %d more", len(all)-10))
	}
	s.r.Leaks = strings.Join(all, ", ")
}
