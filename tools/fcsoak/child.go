package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// The names the children attach.
const recvName = "FCSOAK"

func senderName(id int) string { return "FCSOAK_S" + strconv.Itoa(id) }

const (
	// reportEvery is how often a child reports its counts.
	reportEvery = 100 * time.Millisecond
	// sendTimeout bounds one Send to a receiver that lives but does not
	// answer.
	sendTimeout = 10 * time.Second
	// watchEvery is how often a sender checks that the process it sends
	// to still runs, and deathGrace how long it then still waits for a
	// reply that receiver may have sent before it died (as fcsend does).
	watchEvery = 50 * time.Millisecond
	deathGrace = 500 * time.Millisecond
	// locateRetry is the pause after a failed Locate.
	locateRetry = 10 * time.Millisecond
)

// counts is what a child reports, one JSON object a line, each line the
// totals of the process so far, changed under one lock so that every line
// adds up. Every Send a sender finished is counted in sent and in exactly
// one of verified, corrupt, crossed (replies) and send_errors; a failed
// Locate (no Send) in locate_errors only. The receiver counts the requests
// it received, the bad ones among them (corrupt_requests,
// crossed_requests: it rejects them, so their senders count them as
// rejected Sends), and its Replies, done or failed.
type counts struct {
	Sent            int64            `json:"sent,omitempty"`
	Verified        int64            `json:"verified,omitempty"`
	Corrupt         int64            `json:"corrupt,omitempty"`
	Crossed         int64            `json:"crossed,omitempty"`
	SendErrors      map[string]int64 `json:"send_errors,omitempty"`
	LocateErrors    map[string]int64 `json:"locate_errors,omitempty"`
	Received        int64            `json:"received,omitempty"`
	CorruptRequests int64            `json:"corrupt_requests,omitempty"`
	CrossedRequests int64            `json:"crossed_requests,omitempty"`
	Replied         int64            `json:"replied,omitempty"`
	ReplyErrors     map[string]int64 `json:"reply_errors,omitempty"`
	Bad             string           `json:"bad,omitempty"`   // the first corrupt or crossed message
	Other           string           `json:"other,omitempty"` // the first error of kind "other"
	attackCounts
}

// bad is the number of corrupt and crossed messages c counts.
func (c *counts) bad() int64 { return c.Corrupt + c.Crossed + c.CorruptRequests + c.CrossedRequests }

// reporter writes a child's counts every reportEvery, at once after
// anything corrupt or crossed (so a kill right after cannot hide it), and
// at exit.
type reporter struct {
	mu   sync.Mutex
	w    io.Writer
	c    counts
	stop chan struct{}
	done chan struct{}
}

func newReporter(w io.Writer) *reporter {
	r := &reporter{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	r.c.SendErrors = make(map[string]int64)
	r.c.LocateErrors = make(map[string]int64)
	r.c.ReplyErrors = make(map[string]int64)
	r.mu.Lock()
	r.writeLocked() // the first line says the child is up
	r.mu.Unlock()
	go func() {
		defer close(r.done)
		t := time.NewTicker(reportEvery)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.mu.Lock()
				r.writeLocked()
				r.mu.Unlock()
			}
		}
	}()
	return r
}

// writeLocked writes one line in one write, which a pipe keeps whole.
func (r *reporter) writeLocked() {
	b, _ := json.Marshal(&r.c)
	r.w.Write(append(b, '\n'))
}

// update changes the counts under the lock; a bad outcome is written out
// at once.
func (r *reporter) update(f func(c *counts)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := r.c.bad()
	f(&r.c)
	if r.c.bad() != bad {
		r.writeLocked()
	}
}

// fail counts err, of kind, in errs (one of c's maps, chosen by pick);
// what, "send", "locate" or "reply", prefixes the first of kind other.
func (r *reporter) fail(pick func(c *counts) map[string]int64, what, kind string, err error, also func(c *counts)) {
	r.update(func(c *counts) {
		pick(c)[kind]++
		if kind == "other" && c.Other == "" {
			c.Other = oneLine(what + ": " + err.Error())
		}
		if also != nil {
			also(c)
		}
	})
}

// badRequest counts a request the receiver found corrupt or crossed.
func (r *reporter) badRequest(kind int, detail string) {
	r.update(func(c *counts) {
		if kind == crossedReply {
			c.CrossedRequests++
		} else {
			c.CorruptRequests++
		}
		if c.Bad == "" {
			c.Bad = oneLine(detail)
		}
	})
}

// close writes the final counts.
func (r *reporter) close() {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	r.writeLocked()
	r.mu.Unlock()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// errDied and errDeadline are the causes a sender gives its own Sends.
var (
	errDied     = errors.New("receiver process died before replying")
	errDeadline = errors.New("no reply within " + sendTimeout.String())
)

// kindOf names an error for the report.
func kindOf(err error) string {
	switch {
	case errors.Is(err, errDied):
		return "died"
	case errors.Is(err, errDeadline), errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, simpl.ErrPeerGone):
		return "peer_gone"
	case errors.Is(err, simpl.ErrNotFound):
		return "not_found"
	case errors.Is(err, simpl.ErrRejected):
		return "rejected"
	case errors.Is(err, simpl.ErrClosed):
		return "closed"
	case errors.Is(err, simpl.ErrTooManyLanes):
		return "too_many_lanes"
	case errors.Is(err, simpl.ErrUnreachable):
		return "unreachable"
	case errors.Is(err, simpl.ErrTooLarge):
		return "too_large"
	}
	return "other"
}

// options are what the parent tells a child.
type childOptions struct {
	id        int
	seed      uint64
	maxSize   int
	transport string
	inject    string // receiver: "corrupt" or "cross" every 50th reply, to test fcsoak itself
	open      bool   // receiver: attach with mode 0666, for attackers of another user
	senders   int    // how many senders there are
	attack    attackOptions
}

func (o childOptions) attach(name string) (*simpl.Channel, error) {
	var opts []simpl.Option
	switch o.transport {
	case "fifo":
		opts = append(opts, simpl.WithTransport(simpl.FIFO))
	case "shm":
		opts = append(opts, simpl.WithTransport(simpl.SHM))
	case "auto":
		opts = append(opts, simpl.WithTransport())
	}
	if o.open {
		opts = append(opts, simpl.WithPerm(0o666))
	}
	return simpl.Attach(name, opts...)
}

// chacha is a fast generator of payload bytes.
func chacha(rng *rand.Rand) *rand.ChaCha8 {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], rng.Uint64())
	}
	return rand.NewChaCha8(seed)
}

// randomSize is a message size from hdrLen to max: half the time small
// (under 512 bytes), otherwise uniform over the whole range.
func randomSize(rng *rand.Rand, max int) int {
	if rng.IntN(2) == 0 {
		return hdrLen + rng.IntN(min(512, max-hdrLen+1))
	}
	return hdrLen + rng.IntN(max-hdrLen+1)
}

// receive is the receiver process: it checks every request and answers it
// with a reply of the size asked for, tied to the request, most at once
// and some later from another goroutine, until SIGTERM.
func receive(o childOptions, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ch, err := o.attach(recvName)
	if err != nil {
		return err
	}
	rep := newReporter(stdout)
	rng := rand.New(rand.NewPCG(o.seed, 1))
	fill := chacha(rng)
	buf := make([]byte, o.maxSize)
	var (
		wg      sync.WaitGroup
		answers atomic.Int64
	)
	answer := func(m simpl.Message, h header, b []byte, fill *rand.ChaCha8) {
		fill.Read(b[hdrLen:])
		rh := header{magic: repMagic, id: h.id, pid: h.pid, seq: h.seq, extra: h.csum}
		inject := o.inject != "" && answers.Add(1)%50 == 0
		if inject && o.inject == "cross" {
			rh.seq++
		}
		seal(b, rh)
		if inject && o.inject == "corrupt" {
			b[len(b)-1] ^= 0x40
		}
		if err := m.Reply(b); err != nil {
			kind := "other"
			if errors.Is(err, simpl.ErrPeerGone) {
				kind = "peer_gone" // the sender was killed or gave up
			}
			rep.fail(func(c *counts) map[string]int64 { return c.ReplyErrors }, "reply", kind, err, nil)
			return
		}
		rep.update(func(c *counts) { c.Replied++ })
	}
	for {
		m, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			ch.Close()
			return fmt.Errorf("receive: %w", err)
		}
		if m.Proxy() > 0 {
			continue
		}
		rep.update(func(c *counts) { c.Received++ })
		name, pid := m.Sender()
		if isAttacker(name, "big") {
			rep.update(func(c *counts) { c.BigReceived++ })
			// Slow over big requests: the library holds what comes
			// meanwhile.
			time.Sleep(o.attack.bigDelay)
			h, err := open(m.Data(), atkMagic)
			switch {
			case err != nil:
				rep.badRequest(corruptReply, fmt.Sprintf("big request from %s pid %d: %v", name, pid, err))
			case int(h.pid) != pid:
				rep.badRequest(crossedReply, fmt.Sprintf("big request of %v arrived as from %s pid %d", h, name, pid))
				err = errors.New("crossed")
			case int(h.extra) != hdrLen || m.MaxReply() < hdrLen:
				rep.badRequest(corruptReply, fmt.Sprintf("big request of %v asks for a %d-byte reply; the sender takes %d", h, h.extra, m.MaxReply()))
				err = errors.New("corrupt")
			}
			if err != nil {
				m.ReplyError()
				continue
			}
			answer(m, h, buf[:hdrLen], fill)
			continue
		}
		h, err := open(m.Data(), reqMagic)
		switch {
		case err != nil:
			rep.badRequest(corruptReply, fmt.Sprintf("request from %s pid %d: %v", name, pid, err))
		case int(h.pid) != pid || (name != senderName(int(h.id)) && !naming.IsAuxOf(name, senderName(int(h.id)))):
			rep.badRequest(crossedReply, fmt.Sprintf("request of %v arrived as from %s pid %d", h, name, pid))
			err = errors.New("crossed")
		case int(h.extra) < hdrLen || int(h.extra) > min(m.MaxReply(), o.maxSize):
			rep.badRequest(corruptReply, fmt.Sprintf("request of %v asks for a %d-byte reply; the sender takes %d", h, h.extra, m.MaxReply()))
			err = errors.New("corrupt")
		}
		if err != nil {
			m.ReplyError()
			continue
		}
		if rng.IntN(8) == 0 {
			// Answer later, out of order with other senders' requests.
			delay := time.Duration(rng.IntN(2000)) * time.Microsecond
			f := chacha(rng)
			wg.Go(func() {
				time.Sleep(delay)
				answer(m, h, make([]byte, h.extra), f)
			})
			continue
		}
		answer(m, h, buf[:h.extra], fill)
	}
	wg.Wait()
	err = ch.Close()
	rep.close()
	return err
}

// isAttacker reports whether name is the attacker kind's (or one of its
// auxiliary names, for its concurrent Sends).
func isAttacker(name, kind string) bool {
	a := attackName(kind)
	return name == a || naming.IsAuxOf(name, a)
}

// send is a sender process: it sends requests of random sizes to the
// receiver, one at a time, and checks every reply, until SIGTERM. After a
// failed Send it closes the connection and locates the receiver again.
func send(o childOptions, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ch, err := o.attach(senderName(o.id))
	if err != nil {
		return err
	}
	reg, err := naming.Open("")
	if err != nil {
		ch.Close()
		return err
	}
	rep := newReporter(stdout)
	w := newWatch()
	defer w.close()
	rng := rand.New(rand.NewPCG(o.seed, 2))
	fill := chacha(rng)
	req, reply := make([]byte, o.maxSize), make([]byte, o.maxSize)
	pid := uint32(os.Getpid())
	var conn *simpl.Conn
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		if conn == nil {
			conn, err = ch.Locate(ctx, recvName)
			if err != nil {
				rep.fail(func(c *counts) map[string]int64 { return c.LocateErrors }, "locate", kindOf(err), err, nil)
				select {
				case <-ctx.Done():
				case <-time.After(locateRetry + time.Duration(rng.IntN(int(locateRetry)))):
				}
				continue
			}
			w.target(reg, conn)
		}
		b := req[:randomSize(rng, o.maxSize)]
		fill.Read(b[hdrLen:])
		h := header{magic: reqMagic, id: uint32(o.id), pid: pid, seq: seq, extra: uint32(randomSize(rng, o.maxSize))}
		h.csum = seal(b, h)
		n, err := w.send(conn, b, reply)
		if err != nil {
			rep.fail(func(c *counts) map[string]int64 { return c.SendErrors }, "send", kindOf(err), err, func(c *counts) { c.Sent++ })
			conn.Close()
			conn = nil
			continue
		}
		outcome, detail := checkReply(reply[:n], h)
		rep.update(func(c *counts) {
			c.Sent++
			c.tally(outcome, &c.Verified, detail)
		})
	}
	if conn != nil {
		conn.Close()
	}
	err = ch.Close()
	rep.close()
	return err
}

// watch ends a Send whose receiver process has died: over FIFOs the
// library does not notice that by itself (a receiver killed while holding
// the request never answers). Over shared memory the library should report
// ErrPeerGone within milliseconds, long before the watch gives up, so
// "died" errors there point at the library.
type watch struct {
	mu      sync.Mutex
	pid     int
	created time.Time
	gen     uint64                  // bumped by every Send
	cancel  context.CancelCauseFunc // of the Send in progress, or nil
	stop    chan struct{}
	done    chan struct{}
}

func newWatch() *watch {
	w := &watch{stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// target makes conn's process the one watched.
func (w *watch) target(reg *naming.Registry, conn *simpl.Conn) {
	var created time.Time
	if all, err := reg.Entries(conn.Name()); err == nil {
		for _, e := range all {
			if e.PID == conn.PID() {
				created = e.Created
			}
		}
	}
	w.mu.Lock()
	w.pid, w.created = conn.PID(), created
	w.mu.Unlock()
}

func (w *watch) send(conn *simpl.Conn, req, reply []byte) (int, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	tctx, tcancel := context.WithTimeoutCause(ctx, sendTimeout, errDeadline)
	w.mu.Lock()
	w.gen++
	w.cancel = cancel
	w.mu.Unlock()
	n, err := conn.Send(tctx, req, reply)
	w.mu.Lock()
	w.cancel = nil
	w.mu.Unlock()
	if err != nil && tctx.Err() != nil && errors.Is(err, tctx.Err()) {
		err = context.Cause(tctx)
	}
	tcancel()
	cancel(nil)
	return n, err
}

func (w *watch) run() {
	defer close(w.done)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		pid, created, gen, busy := w.pid, w.created, w.gen, w.cancel != nil
		w.mu.Unlock()
		if !busy || naming.Alive(pid, created) {
			continue
		}
		select {
		case <-w.stop:
			return
		case <-time.After(deathGrace):
		}
		w.mu.Lock()
		if w.gen == gen && w.cancel != nil {
			w.cancel(errDied)
		}
		w.mu.Unlock()
	}
}

func (w *watch) close() {
	close(w.stop)
	<-w.done
}

// tally counts a checked reply: in *verified if it was right, else as
// crossed or corrupt, the first of those described in c.Bad.
func (c *counts) tally(outcome int, verified *int64, detail string) {
	switch outcome {
	case okReply:
		*verified++
		return
	case crossedReply:
		c.Crossed++
	default:
		c.Corrupt++
	}
	if c.Bad == "" {
		c.Bad = oneLine(detail)
	}
}
