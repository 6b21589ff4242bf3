package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/nats-io/nats.go"
)

// Messages larger than one NATS message go in chunks of at most Limit
// bytes. The first chunk is the message as it would be whole (the
// request, or the ok answer) with HeaderSize, the whole size. The side
// taking it answers with an acknowledgement (StatusMore) that names a
// subject of its own for the rest, under its inbox: the chunks of one
// request so reach the gateway of the queue group that took the first
// one, and no other. Each chunk after the first says where its data goes
// (HeaderOffset) and must come in order; each is acknowledged with how
// much has arrived. The sending side keeps at most window chunks
// unacknowledged, so neither side holds more than that of a message in
// flight beyond the message itself.
//
// A request in chunks is delivered only when all of it has arrived (and
// its id was new when its first chunk came). One whose chunks stop
// coming for the silence time is dropped and counted (Stats.Partial),
// never delivered. A reply in chunks whose acknowledgements stop coming
// is given up by the receiving host's gateway; the requesting one, whose
// chunks stop coming, tells its program the outcome is unknown (the
// request was delivered, its reply lost).

// DefaultMaxBytes is the default of WithMaxBytes.
const DefaultMaxBytes = 256 << 20

// window is how many chunks the sender of a message in chunks may have
// out beyond what the other side acknowledged.
const window = 4

// WithMaxBytes bounds the bytes a gateway holds for messages larger than
// one NATS message (default 256 MiB): the requests and replies in chunks
// being put together or sent, and reply buffers larger than one NATS
// message, both ways. A request that would take more is answered
// StatusFull, having sent or delivered nothing; one that costs more than
// n alone always is. (Messages that fit in one NATS message are bounded
// by WithMaxInflight and WithMaxInbound.)
func WithMaxBytes(n int64) Option {
	return func(o *Options) error {
		if n < 1 {
			return fmt.Errorf("gateway: most bytes held %d: must be 1 or more", n)
		}
		o.maxBytes = n
		return nil
	}
}

// The ways a message in chunks stops before it is whole.
var (
	errSilence = errors.New("gateway: the other side fell silent")
	errGaveUp  = errors.New("gateway: closing, gave up on what was in flight")
	errStopped = errors.New("gateway: the answer came")
)

// cost is what a request of size bytes, whose sender takes a reply of up
// to maxReply bytes, reserves of WithMaxBytes: each of the two where it
// is larger than one NATS message.
func (g *Gateway) cost(size, maxReply int) int64 {
	var c int64
	if size > g.limit {
		c += int64(size)
	}
	if r := min(maxReply, netwire.MaxPayload); r > g.limit {
		c += int64(r)
	}
	return c
}

// reserve takes n bytes of WithMaxBytes, if that many are free.
func (g *Gateway) reserve(n int64) bool {
	if n == 0 {
		return true
	}
	for {
		cur := g.held.Load()
		if cur+n > g.o.maxBytes {
			return false
		}
		if g.held.CompareAndSwap(cur, cur+n) {
			for {
				p := g.mostHeld.Load()
				if cur+n <= p || g.mostHeld.CompareAndSwap(p, cur+n) {
					return true
				}
			}
		}
	}
}

// release gives back what reserve took.
func (g *Gateway) release(n int64) { g.held.Add(-n) }

// fullKiB is the detail of StatusFull: WithMaxBytes in KiB, as a detail
// holds 32 bits.
func (g *Gateway) fullKiB() int { return int(min(g.o.maxBytes>>10, 1<<32-1)) }

// streamSubject is the subject of the gateway's own that the chunks or
// acknowledgements of stream k come to.
func (g *Gateway) streamSubject(k uint64) string {
	return g.inbox + ".c." + strconv.FormatUint(k, 10)
}

// addStream routes what comes to streamSubject(k) to h until
// dropStream(k), and returns k (unguessable).
func (g *Gateway) addStream(h func(*nats.Msg)) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := unguessable()
	for g.streams[k] != nil {
		k = unguessable()
	}
	g.streams[k] = h
	return k
}

// inboxOf is the inbox prefix (netwire.Inbox and ".") of the host whose
// answer subject to is: to's first two tokens. Only subjects under the
// sending host's inbox are answered (onRequest).
func inboxOf(to string) string {
	i := strings.IndexByte(to, '.')
	if i < 0 {
		return to + "."
	}
	j := strings.IndexByte(to[i+1:], '.')
	if j < 0 {
		return to + "."
	}
	return to[:i+1+j+1]
}

func (g *Gateway) dropStream(k uint64) {
	g.mu.Lock()
	delete(g.streams, k)
	g.mu.Unlock()
}

// onStream takes a message on a stream's subject: a chunk or an
// acknowledgement.
func (g *Gateway) onStream(m *nats.Msg) {
	tok := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	k, err := strconv.ParseUint(tok, 10, 64)
	g.mu.Lock()
	h := g.streams[k]
	g.mu.Unlock()
	if err != nil || h == nil {
		g.stats.stray.Add(1) // late: the message was given up
		return
	}
	h(m)
}

// flow is what the sender of a message in chunks hears back: how much
// has arrived and where the rest goes. A waiter holds one for its
// request, and its final answer under the same lock.
type flow struct {
	mu    sync.Mutex
	got   int       // bytes the other side has
	peer  string    // the other side's inbox prefix: to must begin with it
	to    string    // where the chunks go; "" until the first acknowledgement
	bad   error     // an acknowledgement it could not read
	final *nats.Msg // the answer to a request, once it came
	note  chan struct{}
}

// newFlow is the flow of a message in chunks to the host whose inbox
// prefix (netwire.Inbox and ".") is peer: its acknowledgements may send
// the chunks nowhere else.
func newFlow(peer string) flow { return flow{peer: peer, note: make(chan struct{}, 1)} }

func (f *flow) notify() {
	select {
	case f.note <- struct{}{}:
	default:
	}
}

// take reads an acknowledgement.
func (f *flow) take(m *nats.Msg) {
	a, err := parseAck(m)
	if err == nil && !strings.HasPrefix(a.chunksTo, f.peer) {
		err = fmt.Errorf("%w: %s %q: not the other side's inbox", errBadHeader, netwire.HeaderChunksTo, a.chunksTo)
	}
	f.mu.Lock()
	switch {
	case err != nil:
		if f.bad == nil {
			f.bad = err
		}
	case a.got > f.got:
		f.got, f.to = a.got, a.chunksTo
	}
	f.mu.Unlock()
	f.notify()
}

// pump sends data in chunks, the first sent bytes of it having gone
// already, as f's acknowledgements allow: at most window chunks beyond
// what has arrived. It returns how much it sent, and nil once all of
// data has arrived; or errStopped once stop (if not nil) says so after
// a message came; errSilence after the silence time without one; the
// error of a bad acknowledgement or a failed publish; errGaveUp when the
// gateway gives up on what is in flight.
func (g *Gateway) pump(f *flow, data []byte, sent int, stop func() bool) (int, error) {
	t := time.NewTimer(g.o.silence)
	defer t.Stop()
	for {
		f.mu.Lock()
		got, to, bad := f.got, f.to, f.bad
		f.mu.Unlock()
		switch {
		case bad != nil:
			return sent, bad
		case got > sent:
			return sent, fmt.Errorf("%w: %d bytes acknowledged of %d sent", errBadHeader, got, sent)
		case got == len(data):
			return sent, nil
		}
		for to != "" && sent < len(data) && sent-got < window*g.limit {
			n := min(g.limit, len(data)-sent)
			if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: chunkHeader(sent), Data: data[sent : sent+n]}); err != nil {
				return sent, err
			}
			sent += n
		}
		select {
		case <-f.note:
			if stop != nil && stop() {
				return sent, errStopped
			}
			t.Reset(g.o.silence)
		case <-t.C:
			return sent, errSilence
		case <-g.hard.Done():
			return sent, errGaveUp
		}
	}
}

// assembly is a message arriving in chunks: the first came with its
// size and is in buf; the others land after it, in order, each
// acknowledged.
type assembly struct {
	g      *Gateway
	self   string // the subject the chunks come to
	acksTo string // where acknowledgements go

	mu   sync.Mutex
	buf  []byte
	got  int
	err  error
	note chan struct{}
}

// newAssembly starts putting together a message of len(buf) bytes whose
// first chunk is first, acknowledging to acksTo: it takes the chunks on
// a stream of the gateway's own, and says so in its acknowledgement of
// the first. Call stop when done with it.
func (g *Gateway) newAssembly(buf, first []byte, acksTo string) (a *assembly, stop func()) {
	a = &assembly{g: g, acksTo: acksTo, buf: buf, got: copy(buf, first), note: make(chan struct{}, 1)}
	k := g.addStream(a.take)
	a.self = g.streamSubject(k) // before the acknowledgement that tells it
	a.ack(a.got)
	return a, func() { g.dropStream(k) }
}

func (a *assembly) ack(got int) {
	// A failed publish leaves the sender in silence: it gives up.
	_ = a.g.nc.PublishMsg(&nats.Msg{Subject: a.acksTo, Header: ackHeader(got, a.self)})
}

// take takes a chunk.
func (a *assembly) take(m *nats.Msg) {
	a.mu.Lock()
	if a.err != nil || a.got == len(a.buf) {
		a.mu.Unlock()
		return // given up, or whole: nothing more is taken
	}
	off, err := parseChunk(m, len(a.buf))
	if err == nil && off != a.got {
		err = fmt.Errorf("%w: a chunk at %d, want %d", errBadHeader, off, a.got)
	}
	if err != nil {
		a.err = err
	} else {
		a.got += copy(a.buf[off:], m.Data)
	}
	got := a.got
	a.mu.Unlock()
	if err == nil {
		a.ack(got)
	}
	select {
	case a.note <- struct{}{}:
	default:
	}
}

// wait waits until the message is whole (nil), a chunk is bad (its
// error), no chunk came for the silence time (errSilence), or the
// gateway gives up on what is in flight (errGaveUp).
func (a *assembly) wait() error {
	t := time.NewTimer(a.g.o.silence)
	defer t.Stop()
	for {
		a.mu.Lock()
		got, err := a.got, a.err
		a.mu.Unlock()
		if err != nil {
			return err
		}
		if got == len(a.buf) {
			return nil
		}
		select {
		case <-a.note:
			t.Reset(a.g.o.silence)
		case <-t.C:
			a.mu.Lock()
			a.err = errSilence // late chunks are not taken
			a.mu.Unlock()
			return errSilence
		case <-a.g.hard.Done():
			return errGaveUp
		}
	}
}

// answerChunks answers a request with an ok reply larger than one NATS
// message, in chunks to the requesting gateway's inbox as it
// acknowledges them.
func (g *Gateway) answerChunks(to string, data []byte) {
	f := newFlow(inboxOf(to))
	k := g.addStream(f.take)
	defer g.dropStream(k)
	h := answerHeader(netwire.StatusOK.String(), 0)
	h.Set(netwire.HeaderSize, strconv.Itoa(len(data)))
	h.Set(netwire.HeaderAcksTo, g.streamSubject(k))
	if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: h, Data: data[:g.limit]}); err != nil {
		return // the requester hears silence: outcome unknown, the truth
	}
	if _, err := g.pump(&f, data, g.limit, nil); err != nil {
		g.stats.partialReplies.Add(1)
	}
}
