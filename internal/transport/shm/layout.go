package shm

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/naming"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// A lane is one sender's message buffer: a sealed memfd the sender creates
// and passes to the receiver over the lane's Unix socket. A lane carries one
// message at a time. Its first 64 bytes are the header (native-endian
// 32-bit words); the request is written at offset 64 and the reply over it.
//
//	offset  word     written by          meaning
//	0       state    both (CAS)          laneIdle/Posted/Taken/Answered/Abandoned
//	4       swait    both                how the sender sleeps: 0 awake, 1 on
//	                                     this word (futex), 2 on the lane's
//	                                     nudge pipe (a byte, never waited for);
//	                                     cleared by whoever wakes it
//	8       nbytes   sender, receiver    request size; reply size once answered
//	12      maxReply sender              largest reply the sender accepts
//	16      code     receiver            0 or a failure code, set before Answered
//	20      origin   sender              bytes of the request's origin, written
//	                                     after the request (0: none; see below)
//	24      prio     sender              the sending thread's scheduling policy
//	                                     and priority (0: none; see below)
//	28      ticket   sender              the request's arrival number, from the
//	                                     bell's ticket word; not believed: the
//	                                     receiver numbers arrivals itself
//	32..63  reserved (a proxy lane's ring words: see below)
//	64      data     both                request, then reply
//
// A host's gateway, Sending on behalf of a program on another host, says
// so in the origin (transport.WithOrigin): origin bytes of
// transport.AppendOrigin's encoding right after the request's nbytes. The
// receiver reads them, at most transport.MaxOrigin, only when asked
// (Cred), and the layer above believes them only of the gateway's
// process. Senders that set none leave the word 0.
//
// A sender that carries its priority (Options.Priority) writes it in prio
// as encodePrio does: bit 31 set, the policy in bits 8..15, the level
// plus 128 in bits 0..7. The receiver reads it when it takes the request
// (and, in priority order, while the request waits): a word with bits
// outside those, a policy it does not know or a level out of its policy's
// range is a corrupt header (codeBadHeader). It believes the priority only
// of a sender of its own user or root (a sender of another user the mode
// admits counts as carrying none): inheriting a priority raises the
// receiver's thread, which such a sender could not do itself.
//
// The data area is where both APIs meet, and the zero-copy one never
// leaves it: a Buffer's Bytes are data[0:size], the request the receiver
// reads (Data) is data[0:nbytes] and the reply it writes in place
// (ReplyBuffer) data[0:maxReply], in its own mapping of the same memfd,
// and the sender reads the reply as data[0:nbytes] again. The receiver
// takes those bounds from the header only after checking them against
// its mapping's length (take: nbytes and maxReply at most the data area,
// the origin within what follows the request), so a sender's header can
// never make either side reach past the lane. The copying calls (Send,
// Reply) copy into and out of the data area; CopiedBytes counts what
// they copy. A lane's size is laneSize's: the header and the largest
// message the lane must hold, rounded up to a power of two (a 4 MiB
// Buffer gets an 8 MiB lane); a memfd's pages are allocated as they are
// first touched, so the rounding costs address space, not memory, and a
// Buffer reused for frames of one size touches the same pages each time.
//
// Ordering: the sender writes data, nbytes, maxReply, origin, prio and
// ticket before it
// stores Posted; the receiver reads them only after its CAS Posted->Taken. The
// receiver writes the reply, nbytes and code before its CAS Taken->Answered;
// the sender reads them only after it loads Answered. Go's atomics are
// sequentially consistent, so the plain copies are ordered by the state
// word. A sleeper stores its flag (swait, or the bell's sleepers count)
// before it looks again at what it waits for, and a waker changes that
// first and reads the flag after, so a wake is never lost. The sender
// sleeps on swait rather than state so that its own process (context end,
// Close, receiver death) can wake it by clearing the word, which a futex
// wait cannot miss. Flags in such a pattern are set with read-modify-write
// operations (Swap, Add), never plain stores: only those are full fences
// in every build (under the race detector a store is a mere release).
const (
	HeaderSize = 64

	offState    = 0
	offSWait    = 4
	offNBytes   = 8
	offMaxReply = 12
	offCode     = 16
	offOrigin   = 20
	offPrio     = 24
	offTicket   = 28
)

// swait values: how a waiting sender is to be woken.
const (
	swaitNone  = 0
	swaitFutex = 1 // FUTEX_WAKE on swait
	swaitPipe  = 2 // write a byte to the lane's nudge pipe
)

// A sender whose process has other Sends in flight parks its goroutine in
// Go, reading the lane's nudge pipe through the poller, instead of its
// thread on swait: a thread asleep in FUTEX_WAIT keeps its processor from
// the process's other goroutines until the kernel returns, and with a fast
// receiver it returns so soon that the runtime never hands the processor
// over, so one sender could starve the others. The receiver creates the
// pipe and keeps the write end, non-blocking: the sender holds only the
// read end and cannot make a nudge wait (a full pipe drops it).

// Lane states.
const (
	laneIdle      = 0
	lanePosted    = 1
	laneTaken     = 2
	laneAnswered  = 3
	laneAbandoned = 4
)

// The bell is the receiver's page, mapped by every sender: a sequence word
// that senders bump (the receiver's futex word), a count of receivers
// asleep on it, and a bitmap with one bit per lane that has a message.
//
//	offset  word      written by   meaning
//	0       seq       senders      bumped after each posted message
//	4       sleepers  receiver     receivers asleep in FUTEX_WAIT on seq
//	8       ticket    senders      bumped for each message posted: its
//	                               arrival number (lane word ticket), kept
//	                               for older receivers; a receiver numbers
//	                               arrivals with a count of its own
//	12      server    receiver     the thread serving the lanes with
//	                               priority inheritance (0: none)
//	16      srank     receiver,    that thread's rank (transport.Prio.Rank;
//	                  senders      0: none); a sender that carries a higher
//	                               one raises it (compare-and-swap) and then
//	                               the thread, and the receiver settles it
//	                               again on each Receive and Reply
//	20..63  reserved
//	64      ready     senders set, bit i: lane i was posted
//	                  receiver clears
//
// A sender changes the server thread's priority only with its own
// privileges (the kernel's checks of sched_setattr), and only if the
// thread belongs to the receiver's process (tgkill with signal 0), so a
// receiver that writes another thread's id there raises nothing.
// Every sender the mode admits maps the bell writable, as it does for the
// ready bits, so a hostile one can write these words too: the worst it
// does is to make other senders skip a raise (a high srank), or raise
// another thread of the receiver's process (a wrong server), until the
// receiver publishes again at its next request or answer. The receiver
// keeps a raise only as the priority its thread really runs at, never
// as the word says: a written srank raises nothing by itself.
const (
	bellSize     = 4096
	offSeq       = 0
	offSleepers  = 4
	offTicket8   = 8
	offServer    = 12
	offSRank     = 16
	offReady     = 64
	MaxLanes     = 4096
	readyWords   = MaxLanes / 64
	minLaneSize  = 4096
	MaxLaneBytes = HeaderSize + 256<<20 // the largest memfd a receiver maps as a lane
	// MaxLaneData is the most a lane carries, a request (with its
	// origin) or a reply: lanes come in powers of two (laneSize), the
	// largest 256 MiB with its header.
	MaxLaneData = 256<<20 - HeaderSize
)

// Failure codes a receiver leaves in a lane's code word.
const (
	codeOK         = 0
	codeRejected   = 1
	codeClosed     = 2
	codeTooLarge   = 3
	codeReplyLarge = 4
	codeBadHeader  = 5
)

// codeErr is the sender's error for code, from a send of n bytes with a
// maxReply-byte reply buffer; size is what the receiver left in nbytes
// with it: its limit for codeTooLarge, the reply it tried for
// codeReplyLarge.
func codeErr(code uint32, n, maxReply, size int) error {
	switch code {
	case codeRejected:
		return transport.ErrRejected // says it all, and costs no allocation
	case codeClosed:
		return errs.Errorf("receiver detached: %w", transport.ErrPeerGone)
	case codeTooLarge:
		return errs.Errorf("send: %w", transport.TooLarge(n, size))
	case codeReplyLarge:
		return errs.Errorf("send: %w", transport.ReplyTooLarge(size, maxReply))
	case codeBadHeader:
		return errs.Errorf("receiver found a corrupt lane header: %w", transport.ErrBadMessage)
	}
	return errs.Errorf("receiver answered with unknown code %d: %w", code, transport.ErrBadMessage)
}

// wordInt is a header word the other process wrote, as an int. Where int
// is 32 bits a word over math.MaxInt32 would turn negative and slip past
// every "larger than" check; it saturates instead, so those checks see it
// as too large.
func wordInt(v uint32) int {
	if uint64(v) > uint64(math.MaxInt) {
		return math.MaxInt
	}
	return int(v)
}

// laneWords are a lane's header words, taken once from its mapping.
type laneWords struct {
	state, swait, nbytes, maxReply, code, origin *atomic.Uint32
	prio, ticket                                 *atomic.Uint32
	data                                         []byte // capacity: the whole data area
}

func wordsOf(m *sys.Mapping) laneWords {
	return laneWords{
		state:    m.Uint32(offState),
		swait:    m.Uint32(offSWait),
		nbytes:   m.Uint32(offNBytes),
		maxReply: m.Uint32(offMaxReply),
		code:     m.Uint32(offCode),
		origin:   m.Uint32(offOrigin),
		prio:     m.Uint32(offPrio),
		ticket:   m.Uint32(offTicket),
		data:     m.Bytes(HeaderSize, m.Len()-HeaderSize),
	}
}

// bellWords are the bell's words, taken once from its mapping.
type bellWords struct {
	seq, sleepers, ticket, srank *atomic.Uint32
	server                       *atomic.Int32
	ready                        [readyWords]*atomic.Uint64
	// slept is the receiver's own (not in the mapping): set when Sleep
	// returns, so that a poll after a sleep that finds no ready bit
	// looks at every lane (see Endpoint.scanAll).
	slept atomic.Bool
}

// maxSleep bounds a receiver's sleep on the bell. Every sender the mode
// admits maps the bell writable, so a hostile one can clear other
// senders' ready bits, or the sleepers count that tells them to wake
// the receiver: a receiver that slept until woken, and looked only at
// lanes whose bits are set, would then never see their requests. So it
// wakes at least this often, and after any sleep that brings no ready
// bit it looks at every lane: such a sender can delay the others by up
// to this much, and never hang them.
const maxSleep = 100 * time.Millisecond

func bellOf(m *sys.Mapping) *bellWords {
	b := &bellWords{seq: m.Uint32(offSeq), sleepers: m.Uint32(offSleepers),
		ticket: m.Uint32(offTicket8), srank: m.Uint32(offSRank), server: m.Int32(offServer)}
	for i := range b.ready {
		b.ready[i] = m.Uint64(offReady + 8*i)
	}
	return b
}

// ring marks lane idx ready and wakes a sleeping receiver.
func (b *bellWords) ring(idx int) {
	b.ready[idx/64].Or(1 << (idx % 64))
	b.seq.Add(1)
	if b.sleepers.Load() != 0 {
		sys.FutexWake(b.seq, 1)
	}
}

// The bell is the receive queue's transport.Bell: the queue sleeps on seq,
// counted in sleepers.
var _ transport.Bell = (*bellWords)(nil)

// Arm counts a sleeper and returns the sequence to sleep on.
func (b *bellWords) Arm() uint32 {
	seq := b.seq.Load()
	b.sleepers.Add(1)
	return seq
}

// Sleep waits on the futex while seq is unchanged, at most maxSleep.
func (b *bellWords) Sleep(seq uint32) {
	sys.FutexWait(b.seq, seq, maxSleep)
	b.slept.Store(true)
}

// Disarm uncounts the sleeper.
func (b *bellWords) Disarm() { b.sleepers.Add(^uint32(0)) }

// Ring bumps the sequence and wakes a sleeper if one is counted.
func (b *bellWords) Ring() {
	b.seq.Add(1)
	if b.sleepers.Load() != 0 {
		sys.FutexWake(b.seq, 1)
	}
}

// The bell is also the queue's ServingBell (priority order and
// inheritance).
var _ transport.ServingBell = (*bellWords)(nil)

// Ticket numbers one more arrival.
func (b *bellWords) Ticket() uint32 { return b.ticket.Add(1) }

// Server is the word holding the serving thread's id.
func (b *bellWords) Server() *atomic.Int32 { return b.server }

// ServerRank is the word holding the serving thread's rank.
func (b *bellWords) ServerRank() *atomic.Uint32 { return b.srank }

// encodePrio is p as the lane's prio word carries it (see the header
// drawing); p must be valid.
func encodePrio(p transport.Prio) uint32 {
	return 1<<31 | uint32(p.Policy)<<8 | uint32(p.Level+128)
}

// errBadPrio is a prio word that is not encodePrio's.
var errBadPrio = errs.Errorf("%w: bad priority word in a lane header", transport.ErrBadMessage)

// decodePrio reads a lane's prio word: ok is false for 0 (none); a word
// encodePrio cannot have written is errBadPrio.
func decodePrio(w uint32) (p transport.Prio, ok bool, err error) {
	if w == 0 {
		return p, false, nil
	}
	if w&^(1<<31|0xffff) != 0 || w&(1<<31) == 0 {
		return p, false, errBadPrio
	}
	p = transport.Prio{Policy: int(w >> 8 & 0xff), Level: int(w&0xff) - 128}
	if !p.Valid() {
		return transport.Prio{}, false, errBadPrio
	}
	return p, true, nil
}

// WakeAll bumps the sequence and wakes every sleeper.
func (b *bellWords) WakeAll() {
	b.seq.Add(1)
	sys.FutexWake(b.seq, 1<<30)
}

// laneSize is the memfd size for a lane that must hold need bytes of
// request or reply: a power of two, so a steady workload reuses its lanes.
func laneSize(need int) int {
	n := HeaderSize + need
	if n <= minLaneSize {
		return minLaneSize
	}
	return 1 << bits.Len(uint(n-1))
}

// Address is the abstract Unix socket a receiver with this name, pid and
// FIFO directory listens on. Abstract sockets vanish with their process,
// so nothing is left in the file system. It is the one place that knows
// the form (Listening and ReadListeners ask by it). The directory counts
// by what it is, not how it is spelled: "dir", "dir/", "//dir" and a
// symbolic link to it give one address.
func Address(dir, name string, pid int) string {
	return fmt.Sprintf(addrPrefix+"%016x/%s.%d", dirKey(dir), name, pid)
}

// dirKey names dir by its device and inode, hashed; a directory that
// cannot be looked up (it will fail elsewhere) by its cleaned path.
func dirKey(dir string) uint64 {
	h := fnv.New64a()
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			var b [16]byte
			binary.NativeEndian.PutUint64(b[:8], st.Dev)
			binary.NativeEndian.PutUint64(b[8:], st.Ino)
			h.Write(b[:])
			return h.Sum64()
		}
	}
	h.Write([]byte(filepath.Clean(dir)))
	return h.Sum64()
}

// addrPrefix begins every Address ('@': an abstract socket).
const addrPrefix = "@gosimpl/"

// The handshake on a new lane's socket (SOCK_SEQPACKET, native endian):
//
//	sender -> receiver: magic "GSL3", whom [32]byte NUL-padded, kind uint32; SCM_RIGHTS lane memfd
//	receiver -> sender: magic "GSL3", status int32, index uint32; SCM_RIGHTS bell memfd, nudge pipe read end
//
// (A refusal carries no descriptors; for the limits, index is the limit.)
// kind says what the lane carries for its whole life: laneMessages (Sends,
// one at a time: the header drawn at the top) or laneProxies (the Conn's
// proxy ring: see below). The receiver takes the kind from the hello,
// never from the lane's memory. "GSL2" peers, whose proxies went over the
// socket, are refused (ackBadHello), so a sender never writes proxies into
// a ring that nobody reads.
//
// After the handshake neither side writes on the socket again: each reads
// it only to learn that the other closed or died (a sender that writes
// anything there has broken the protocol, and its lane is dropped).
const (
	magic     = "GSL3"
	helloSize = 4 + 32 + 4
	ackSize   = 12
)

// Lane kinds, in the hello.
const (
	laneMessages = 0
	laneProxies  = 1
)

// Handshake statuses.
const (
	ackOK       = 0
	ackFull     = 1 // no free lane index; index: MaxLanes (0: out of other resources)
	ackBadLane  = 2 // memfd missing, unsealed or of a bad size
	ackBadHello = 3
	ackDenied   = 4 // peer credentials refused
	ackClosed   = 5 // the receiver is closing
	ackTooMany  = 6 // the sender's process holds as many lanes as allowed; index: that limit
	ackBusy     = 7 // handshakes in progress for the sender's user at the limit; index: the limit
	ackBusyAll  = 8 // handshakes in progress for all users at the limit; index: the limit
)

// A Conn's proxies (Trigger) travel in a lane of their own, its proxy
// lane, set up by its first Trigger (a handshake, the only time a
// Trigger waits) and kept until the Conn closes; it counts against the
// receiver's lanes per process like any other. It holds a ring of
// proxyRing entries that the sender fills and the receiver drains, and
// the bell is rung for each proxy as for a Send, so a proxy reaches a
// sleeping receiver with one futex wake and no socket. The header's
// message words are unused (the receiver ignores them: a proxy lane
// carries no Send).
//
//	offset  word     written by   meaning
//	0..31            nobody       (a message lane's words: unused)
//	32      ptail    sender       proxies written, counting from 0 and
//	                              wrapping at 2^32
//	36      phead    receiver     proxies taken, likewise
//	40      pcode    receiver     0, or codeBadRing: why it dropped the lane
//	44..63  reserved
//	64      ring     sender       proxyRing entries of 8 bytes: entry i%proxyRing
//	                              is proxy i, its low 32 bits the proxy
//	                              (1 or more), its high 32 bits its arrival
//	                              ticket from the bell's ticket word
//
// Trigger (one at a time per Conn) fails with ErrTooLarge when ptail -
// phead is proxyRing (the receiver is not reading), or more (a receiver
// that wrote a phead ahead of ptail): it never waits. The sender keeps
// its own count for ptail and never reads it back. Otherwise it stores
// entry ptail%proxyRing, then ptail+1, then sets the lane's ready bit
// and bumps the bell's sequence as a Send does (and wakes the receiver
// if it sleeps). The receiver loads ptail, then the
// entry at its own count of proxies taken, then stores that count + 1 in
// phead. All four are atomic and Go's atomics are sequentially
// consistent, so an entry is written before the receiver can see ptail
// cover it, and read before the sender can see phead free its slot: no
// entry is read half written or overwritten unread, and each is taken
// once, in the order written. A receiver that clears the ready bit
// before a ptail store sees the bit set again after it.
//
// The receiver trusts none of it: it keeps its own count of proxies taken
// (phead is only for the sender), and a ptail more than proxyRing ahead
// of that count (one behind it is ahead by nearly 2^32), or an entry with
// a proxy below 1, is a corrupt ring: the receiver writes codeBadRing in
// pcode and drops the lane. The sender loads pcode on every Trigger and
// the receiver stores it before it closes the lane's socket, so the
// sender's next Trigger reports ErrBadMessage. Every index the receiver
// uses is its count modulo proxyRing, within the mapping it checked at
// the handshake; the entry's ticket is not believed, as a lane's ticket
// word is not: in priority order the receiver numbers a proxy's arrival
// itself when it first sees it at the head of the ring.
// It takes one proxy per visit of the lane in its rotating scan (see
// pollLanes), so a sender with a full ring delays the others by no more
// than a sender of Sends does.
//
// When the lane's socket reports the sender gone (closed or dead), the
// receiver still delivers the proxies written before: those up to the
// ptail it reads then (a dead process writes nothing more; a ptail
// written later, through a copy of the memfd, is not believed), and
// releases the lane once they are taken.
//
// proxyRing is at least what a lane absorbed when proxies were socket
// packets posted by a reader goroutine (QueueDepth of the Queue, one in
// the reader's hands and a socket buffer's worth, 1303 on this kernel:
// TestProxyRingAbsorbs measures it).
const (
	proxyRing     = 2048
	offPTail      = 32
	offPHead      = 36
	offPCode      = 40
	offRing       = HeaderSize
	proxyLaneSize = 5 * 4096 // offRing + 8*proxyRing, in whole pages
)

// codeBadRing in a proxy lane's pcode: the receiver found the ring
// corrupt and dropped the lane.
const codeBadRing = 6

// ringWords are a proxy lane's ring words, taken once from its mapping.
type ringWords struct {
	tail, head, code *atomic.Uint32
	m                *sys.Mapping
}

func ringOf(m *sys.Mapping) ringWords {
	return ringWords{tail: m.Uint32(offPTail), head: m.Uint32(offPHead), code: m.Uint32(offPCode), m: m}
}

// entry is the ring entry of proxy number i (any count: taken modulo
// proxyRing, so always within the ring).
func (r ringWords) entry(i uint32) *atomic.Uint64 {
	return r.m.Uint64(offRing + 8*int(i%proxyRing))
}

func encodeEntry(proxy int32, ticket uint32) uint64 {
	return uint64(ticket)<<32 | uint64(uint32(proxy))
}

// decodeEntry reads a ring entry; ok is false for a proxy below 1, which
// no Trigger writes.
func decodeEntry(e uint64) (proxy int, ticket uint32, ok bool) {
	p := int32(uint32(e))
	if p < 1 {
		return 0, 0, false
	}
	return int(p), uint32(e >> 32), true
}

func encodeHello(whom string, kind uint32) []byte {
	b := make([]byte, helloSize)
	copy(b, magic)
	copy(b[4:36], whom)
	binary.NativeEndian.PutUint32(b[36:], kind)
	return b
}

func decodeHello(b []byte) (string, uint32, error) {
	whom, err := decodeWhom(b)
	if err != nil {
		return "", 0, err
	}
	kind := binary.NativeEndian.Uint32(b[36:])
	if kind != laneMessages && kind != laneProxies {
		return "", 0, errs.Errorf("%w: unknown lane kind %d", transport.ErrBadMessage, kind)
	}
	return whom, kind, nil
}

// decodeWhom checks a hello's size and magic and reads its sender name.
func decodeWhom(b []byte) (string, error) {
	if len(b) != helloSize || string(b[:4]) != magic {
		return "", errs.Errorf("%w: bad lane hello (%d bytes)", transport.ErrBadMessage, len(b))
	}
	w := b[4:36]
	n := 0
	for n < len(w) && w[n] != 0 {
		n++
	}
	if n == len(w) {
		return "", errs.Errorf("%w: sender name not terminated", transport.ErrBadMessage)
	}
	for _, c := range w[n:] {
		if c != 0 {
			return "", errs.Errorf("%w: bytes after sender name", transport.ErrBadMessage)
		}
	}
	whom := string(w[:n])
	if err := naming.CheckSender(whom); err != nil {
		// One rule for every transport: what Message.Sender returns.
		return "", errs.Errorf("%w: lane hello: %w", transport.ErrBadMessage, err)
	}
	return whom, nil
}

func encodeAck(status int32, index int) []byte {
	b := make([]byte, ackSize)
	copy(b, magic)
	binary.NativeEndian.PutUint32(b[4:], uint32(status))
	binary.NativeEndian.PutUint32(b[8:], uint32(index))
	return b
}

func decodeAck(b []byte) (status int32, index int, err error) {
	if len(b) != ackSize || string(b[:4]) != magic {
		return 0, 0, errs.Errorf("%w: bad lane answer (%d bytes)", transport.ErrBadMessage, len(b))
	}
	status = int32(binary.NativeEndian.Uint32(b[4:]))
	index = wordInt(binary.NativeEndian.Uint32(b[8:])) // never negative, even where int is 32 bits
	if status == ackOK && index >= MaxLanes {
		return 0, 0, errs.Errorf("%w: lane index %d out of range", transport.ErrBadMessage, index)
	}
	return status, index, nil
}
