package main

// The chaos options: attacker processes that run beside the receiver and
// the senders, as the nobody user when fcsoak runs as root, and try what
// issue 16 found a hostile local user can do to a receiver.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// The attacks, in the order they are listed and started.
var attackKinds = []string{"stray", "flood", "lanes", "big", "squat"}

// attackName is the name an attacker that sends attaches. The receiver
// takes requests of attackMagic only from these.
func attackName(kind string) string { return "FCSOAK_A_" + kind }

// atkMagic begins a big request ("ATCK"); its layout is a request's.
const atkMagic = 0x4b435441

// The squatter makes a forged entry every squatEvery on average and keeps
// squatMax of them at a time.
const (
	squatEvery = 50 * time.Millisecond
	squatMax   = 256
)

// nobodyUID is the user attackers become when fcsoak runs as root;
// floodUID the flood's, another stranger (a uid with no account): per-user
// limits keep one user's flood from starving another user's lanes, and the
// attackers of one user would otherwise mostly hold up each other.
const (
	nobodyUID = 65534
	floodUID  = 65533
)

// attackOptions are the attackers' settings, from fcsoak's flags.
type attackOptions struct {
	strayEvery time.Duration // mean interval between stray writes
	floodConns int           // connections the flood holds at once
	lanesMax   int           // Conns the lane grabber holds at most
	bigSize    int           // bytes of a big request
	bigSenders int           // big requests in flight at once
	bigDelay   time.Duration // how long the receiver dawdles over each
}

// attackCounts is what attackers report, within counts.
type attackCounts struct {
	StrayWrites   int64            `json:"stray_writes,omitempty"`
	StrayBytes    int64            `json:"stray_bytes,omitempty"`
	StrayErrors   map[string]int64 `json:"stray_errors,omitempty"`
	FloodConnects int64            `json:"flood_connects,omitempty"`
	FloodHeld     int64            `json:"flood_held,omitempty"` // most held at once
	FloodErrors   map[string]int64 `json:"flood_errors,omitempty"`
	LanesHeld     int64            `json:"lanes_held,omitempty"` // most held at once
	LaneConnects  int64            `json:"lane_connects,omitempty"`
	LaneErrors    map[string]int64 `json:"lane_errors,omitempty"`
	BigSent       int64            `json:"big_sent,omitempty"`
	BigVerified   int64            `json:"big_verified,omitempty"`
	BigErrors     map[string]int64 `json:"big_errors,omitempty"`
	BigReceived   int64            `json:"big_received,omitempty"` // by the receiver
	ForgedMade    int64            `json:"forged_made,omitempty"`
	ForgedHeld    int64            `json:"forged_held,omitempty"` // forged receive FIFOs held open, most at once
	ForgedErrors  map[string]int64 `json:"forged_errors,omitempty"`
}

func (a *attackCounts) maps() []*map[string]int64 {
	return []*map[string]int64{&a.StrayErrors, &a.FloodErrors, &a.LaneErrors, &a.BigErrors, &a.ForgedErrors}
}

// addAttack adds c's attack counts to a's: totals add up, the most held at
// once is the largest of any one process.
func (a *attackCounts) addAttack(c *attackCounts) {
	a.StrayWrites += c.StrayWrites
	a.StrayBytes += c.StrayBytes
	a.FloodConnects += c.FloodConnects
	a.FloodHeld = max(a.FloodHeld, c.FloodHeld)
	a.LanesHeld = max(a.LanesHeld, c.LanesHeld)
	a.LaneConnects += c.LaneConnects
	a.BigSent += c.BigSent
	a.BigVerified += c.BigVerified
	a.BigReceived += c.BigReceived
	a.ForgedMade += c.ForgedMade
	a.ForgedHeld = max(a.ForgedHeld, c.ForgedHeld)
	mine, theirs := a.maps(), c.maps()
	for i, m := range theirs {
		for k, n := range *m {
			if *mine[i] == nil {
				*mine[i] = map[string]int64{}
			}
			(*mine[i])[k] += n
		}
	}
}

// errKind names an attacker's error for the report: the errno when there
// is one, else the library's kind.
func errKind(err error) string {
	var no syscall.Errno
	if errors.As(err, &no) {
		if s := unix.ErrnoName(no); s != "" {
			return s
		}
	}
	return kindOf(err)
}

// attack runs the attacker kind until SIGTERM.
func attack(kind string, o childOptions, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	reg, err := naming.Open("")
	if err != nil {
		return err
	}
	rep := newReporter(stdout)
	defer rep.close()
	rng := rand.New(rand.NewPCG(o.seed, 3))
	switch kind {
	case "stray":
		return stray(ctx, reg, o, rng, rep)
	case "flood":
		return flood(ctx, reg, o, rep)
	case "lanes":
		return lanes(ctx, reg, o, rep)
	case "big":
		return big(ctx, o, rng, rep)
	case "squat":
		return squat(ctx, reg, o, rng, rep)
	}
	return fmt.Errorf("-attack %q: internal flag", kind)
}

// receiverPID is the live receiver's pid, or 0.
// processAlive tells whether process pid exists (a zombie counts: it has
// not been reaped).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func receiverPID(reg *naming.Registry) int {
	e, err := reg.Lookup(recvName)
	if err != nil {
		return 0
	}
	return e.PID
}

// sleepExp waits an exponentially distributed time of mean d, or until ctx
// ends (false).
func sleepExp(ctx context.Context, rng *rand.Rand, d time.Duration) bool {
	t := time.NewTimer(max(time.Duration(rng.ExpFloat64()*float64(d)), time.Microsecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pause waits d or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// stray writes 1 to 7 random bytes at a time into the receiver's receive
// FIFO, at random intervals (mean strayEvery): the doorbell stream is
// 4-byte words, so most writes misalign it and a 4-byte one is a forged
// doorbell.
func stray(ctx context.Context, reg *naming.Registry, o childOptions, rng *rand.Rand, rep *reporter) error {
	for sleepExp(ctx, rng, o.attack.strayEvery) {
		pid := receiverPID(reg)
		if pid == 0 {
			continue
		}
		f, err := os.OpenFile(reg.ReceivePath(recvName, pid), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			rep.update(func(c *counts) { bump(&c.StrayErrors, errKind(err)) })
			continue
		}
		b := make([]byte, 1+rng.IntN(7))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		n, err := f.Write(b)
		f.Close()
		rep.update(func(c *counts) {
			if n > 0 {
				c.StrayWrites++
				c.StrayBytes += int64(n)
			}
			if err != nil {
				bump(&c.StrayErrors, errKind(err))
			}
		})
	}
	return nil
}

func bump(m *map[string]int64, k string) {
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[k]++
}

// floodBackoff is how long a flood connection closed sooner than this
// waits before it connects again.
const floodBackoff = 50 * time.Millisecond

// flood holds floodConns idle connections to the receiver's shm socket,
// sending nothing on them; one the receiver closes (or loses by dying) is
// made again, to the receiver of the moment.
func flood(ctx context.Context, reg *naming.Registry, o childOptions, rep *reporter) error {
	var addr atomic.Pointer[string]
	findAddr := func() {
		if pid := receiverPID(reg); pid != 0 {
			a := shm.Address(reg.Dir(), recvName, pid)
			addr.Store(&a)
		}
	}
	findAddr()
	var held atomic.Int64
	var wg sync.WaitGroup
	for range o.attack.floodConns {
		wg.Go(func() {
			for ctx.Err() == nil {
				a := addr.Load()
				if a == nil {
					pause(ctx, 20*time.Millisecond)
					continue
				}
				c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: *a, Net: "unixpacket"})
				if err != nil {
					rep.update(func(c *counts) { bump(&c.FloodErrors, errKind(err)) })
					pause(ctx, 20*time.Millisecond)
					continue
				}
				n := held.Add(1)
				rep.update(func(c *counts) { c.FloodConnects++; c.FloodHeld = max(c.FloodHeld, n) })
				stop := context.AfterFunc(ctx, func() { c.Close() })
				since := time.Now()
				var b [64]byte
				c.Read(b[:]) // until the receiver closes it or goes, or we stop
				stop()
				c.Close()
				held.Add(-1)
				if time.Since(since) < floodBackoff {
					// Refused at once: again in a moment, not in a
					// loop that only burns the CPU both sides share.
					pause(ctx, floodBackoff)
				}
			}
		})
	}
	for pause(ctx, 50*time.Millisecond) {
		findAddr()
	}
	wg.Wait()
	return nil
}

// lanes takes as many shm lanes of the receiver as it can from one
// process: Conns located one after another, each setting up a lane, held
// idle, up to lanesMax. When the receiver is restarted it lets the dead
// Conns go and grabs again.
func lanes(ctx context.Context, reg *naming.Registry, o childOptions, rep *reporter) error {
	ch, err := simpl.Attach(attackName("lanes"), simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	defer ch.Close()
	var conns []*simpl.Conn
	drop := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
	}
	defer drop()
	for ctx.Err() == nil {
		pid := receiverPID(reg)
		if len(conns) > 0 && conns[0].PID() != pid {
			drop()
		}
		if pid == 0 || len(conns) >= o.attack.lanesMax {
			pause(ctx, 50*time.Millisecond)
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := ch.Locate(lctx, recvName)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				rep.update(func(cn *counts) { bump(&cn.LaneErrors, errKind(err)) })
				pause(ctx, 20*time.Millisecond)
			}
			continue
		}
		if c.PID() != pid {
			c.Close()
			continue
		}
		conns = append(conns, c)
		n := int64(len(conns))
		rep.update(func(cn *counts) { cn.LaneConnects++; cn.LanesHeld = max(cn.LanesHeld, n) })
	}
	return nil
}

// big sends requests of bigSize bytes, bigSenders at a time, each checked
// by the receiver and answered with a checked small reply; the receiver
// dawdles over each (bigDelay), so they pile up in front of it.
func big(ctx context.Context, o childOptions, rng *rand.Rand, rep *reporter) error {
	ch, err := o.attach(attackName("big"))
	if err != nil {
		return err
	}
	defer ch.Close()
	var wg sync.WaitGroup
	for i := range o.attack.bigSenders {
		fill := chacha(rng)
		wg.Go(func() {
			req, reply := make([]byte, o.attack.bigSize), make([]byte, hdrLen)
			pid := uint32(os.Getpid())
			var conn *simpl.Conn
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				if conn == nil {
					c, err := ch.Locate(ctx, recvName)
					if err != nil {
						pause(ctx, locateRetry)
						continue
					}
					conn = c
				}
				fill.Read(req[hdrLen:])
				h := header{magic: atkMagic, id: uint32(i), pid: pid, seq: seq, extra: hdrLen}
				h.csum = seal(req, h)
				sctx, cancel := context.WithTimeout(ctx, sendTimeout)
				n, err := conn.Send(sctx, req, reply)
				cancel()
				if err != nil {
					if ctx.Err() == nil {
						kind := kindOf(err)
						if kind == "deadline" && !processAlive(conn.PID()) {
							// The library missed the receiver's death: a
							// hang of its own kind.
							kind = "deadline_dead_receiver"
						}
						rep.update(func(c *counts) { c.BigSent++; bump(&c.BigErrors, kind) })
					}
					conn.Close()
					conn = nil
					continue
				}
				outcome, detail := checkReply(reply[:n], h)
				rep.update(func(c *counts) {
					c.BigSent++
					c.tally(outcome, &c.BigVerified, "big request: "+detail)
				})
			}
		})
	}
	wg.Wait()
	return nil
}

// squat makes forged entries in the FIFO directory at random intervals
// (mean squatEvery): NAME.PID and YNAME.PID FIFOs, mode 0666, for the
// receiver's name, the senders' names and random names, with the pid of a
// process of another user (pid 1, and fcsoak itself when the attacker is
// nobody), holding the receive FIFOs open as a receiver would. It keeps
// squatMax at a time, removing its oldest; fcsoak removes the rest at the
// end.
func squat(ctx context.Context, reg *naming.Registry, o childOptions, rng *rand.Rand, rep *reporter) error {
	type forged struct {
		path string
		f    *os.File
	}
	var made []forged
	var held int64
	pids := []int{1}
	if ppid := os.Getppid(); uidOf(ppid) != os.Getuid() {
		pids = append(pids, ppid) // fcsoak, another user's process
	}
	defer func() {
		for _, m := range made {
			if m.f != nil {
				m.f.Close()
			}
		}
	}()
	for sleepExp(ctx, rng, squatEvery) {
		var name string
		switch rng.IntN(3) {
		case 0:
			name = recvName
		case 1:
			name = senderName(rng.IntN(max(o.senders, 1)))
		default:
			name = fmt.Sprintf("SQ%d", rng.IntN(1000))
		}
		pid := pids[rng.IntN(len(pids))]
		recv := rng.IntN(4) != 0
		path := reg.ReceivePath(name, pid)
		if !recv {
			path = filepath.Join(reg.Dir(), "Y"+name+"."+strconv.Itoa(pid))
		}
		if len(made) >= squatMax {
			old := made[0]
			made = made[1:]
			if old.f != nil {
				old.f.Close()
				held--
			}
			os.Remove(old.path)
		}
		if err := unix.Mkfifo(path, 0o666); err != nil {
			if !errors.Is(err, unix.EEXIST) {
				rep.update(func(c *counts) { bump(&c.ForgedErrors, errKind(err)) })
			}
			continue
		}
		unix.Chmod(path, 0o666) // whatever the umask
		m := forged{path: path}
		if recv {
			if f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0); err == nil {
				m.f = f
				held++
			}
		}
		made = append(made, m)
		h := held
		rep.update(func(c *counts) { c.ForgedMade++; c.ForgedHeld = max(c.ForgedHeld, h) })
	}
	return nil
}

// rssOf is process pid's resident set (VmRSS) in bytes, or 0.
func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// uidOf is the owner of process pid, or -1.
func uidOf(pid int) int {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
