package fifo

import (
	"bytes"
	"encoding/binary"
	"github.com/gosimpl/gosimpl/internal/errs"
	"hash/fnv"
	"math"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// The message buffer is a System V segment owned by the sender, laid out
// as C SIMPL 3.x lays it out (native-endian int32 fields):
//
//	0          32     36        40       44       48
//	+----------+------+---------+--------+--------+---------------------+
//	| whom     | pid  | shmsize | nbytes | ybytes | data (request, then |
//	| NUL-term |      |         |        |        | the reply over it)  |
//	+----------+------+---------+--------+--------+---------------------+
//
// The sender writes the header and request, then rings the receiver's FIFO
// with the segment id. The receiver reads, writes the reply over the data,
// sets nbytes and rings the sender's reply FIFO. The FIFO write and read
// (system calls on one pipe) order every access to the segment: a side
// touches the segment only between reading a doorbell and writing the next.
const (
	offWhom    = 0
	whomLen    = 32
	offPID     = 32
	offShmSize = 36
	offNBytes  = 40
	offYBytes  = 44
	HeaderSize = 48
)

// Failure codes a gosimpl receiver leaves in nbytes when it rings -1, so a
// gosimpl sender can say why. C SIMPL senders ignore nbytes on failure; a
// C receiver leaves nbytes >= 0, read as a plain rejection.
const (
	codeRejected   = -2 // ReplyError
	codeClosed     = -3 // receiver detached before replying
	codeTooLarge   = -4 // request larger than the receiver accepts
	codeReplyLarge = -5 // reply larger than ybytes
	codeBadHeader  = -6 // header failed the receiver's checks
)

// codeErr is the sender's error for code, from a send of size bytes with
// a maxReply-byte reply buffer (the wire tells no other size).
func codeErr(code int32, size, maxReply int) error {
	switch code {
	case codeClosed:
		return errs.Errorf("%w: receiver detached before replying", transport.ErrPeerGone)
	case codeTooLarge:
		return transport.TooLarge(size, -1)
	case codeReplyLarge:
		return transport.ReplyTooLarge(-1, maxReply)
	case codeBadHeader:
		return errs.Errorf("%w: receiver refused the header", transport.ErrBadMessage)
	}
	return transport.ErrRejected
}

// segment is one attached System V segment: a sender's own buffer, or a
// sender's buffer as a receiver sees it. Every access is bounds-checked
// against the mapping. Not safe for concurrent use; the doorbell protocol
// gives one side at a time the right to touch it.
type segment struct {
	id  int
	mem []byte // the whole mapping, HeaderSize + capacity bytes
}

func (s *segment) capacity() int { return len(s.mem) - HeaderSize }

func (s *segment) get(off int) int32 {
	return int32(binary.NativeEndian.Uint32(s.mem[off : off+4]))
}

func (s *segment) put(off int, v int32) {
	binary.NativeEndian.PutUint32(s.mem[off:off+4], uint32(v))
}

// header is the sender's header as a receiver read it once (the sender
// could change the segment at any time; every later decision uses this
// copy).
type header struct {
	whom   string
	pid    int
	nbytes int
	ybytes int
}

// readHeader reads and checks the header of a segment attached by a
// receiver. whom must be a NUL-terminated name usable in a file name, pid
// positive, nbytes within the segment and ybytes non-negative (a ybytes
// larger than the segment is capped to it).
func (s *segment) readHeader() (header, error) {
	if len(s.mem) < HeaderSize {
		return header{}, errs.Errorf("%w: segment of %d bytes is smaller than the %d-byte header", transport.ErrBadMessage, len(s.mem), HeaderSize)
	}
	raw := s.mem[offWhom : offWhom+whomLen]
	end := bytes.IndexByte(raw, 0)
	if end < 0 {
		return header{}, errs.Errorf("%w: sender name is not NUL-terminated", transport.ErrBadMessage)
	}
	h := header{
		whom:   string(raw[:end]),
		pid:    int(s.get(offPID)),
		nbytes: int(s.get(offNBytes)),
		ybytes: int(s.get(offYBytes)),
	}
	if err := checkWhom(h.whom); err != nil {
		return header{}, err
	}
	if h.pid <= 0 {
		return h, errs.Errorf("%w: sender pid %d", transport.ErrBadMessage, h.pid)
	}
	if h.nbytes < 0 || h.nbytes > s.capacity() {
		return h, errs.Errorf("%w: message size %d outside the %d-byte segment", transport.ErrBadMessage, h.nbytes, s.capacity())
	}
	if h.ybytes < 0 {
		return h, errs.Errorf("%w: reply limit %d", transport.ErrBadMessage, h.ybytes)
	}
	h.ybytes = min(h.ybytes, s.capacity())
	return h, nil
}

// checkWhom accepts a sender identity: a name, or an auxiliary identity
// (name#k, k >= 1, as naming.AuxWhom makes them). Nothing else may follow
// the '#': the identity becomes part of the reply FIFO's path.
func checkWhom(whom string) error {
	if err := naming.CheckSender(whom); err != nil {
		return errs.Errorf("%w: %w", transport.ErrBadMessage, err)
	}
	return nil
}

// writeHeader fills a sender's own segment for one Send. Callers ensure
// the data fits.
func (s *segment) writeHeader(whom string, pid, shmsize, nbytes, ybytes int) {
	clear(s.mem[offWhom : offWhom+whomLen])
	copy(s.mem[offWhom:offWhom+whomLen-1], whom)
	s.put(offPID, int32(pid))
	s.put(offShmSize, int32(shmsize))
	s.put(offNBytes, int32(nbytes))
	s.put(offYBytes, int32(ybytes))
}

// data returns the first n data bytes; n must be within capacity.
func (s *segment) data(n int) []byte { return s.mem[HeaderSize : HeaderSize+n] }

// The claim: gosimpl's answer to "who rang?", which the wire cannot tell.
// A doorbell is a bare segment id and a FIFO carries no credentials, so a
// receiver whose FIFO other users may write (a public receiver, 0666 or
// 0660) could be rung with another process's segment id, and would read,
// answer or rewrite a message that was never sent to it, with its own
// rights (a root receiver can attach any segment). So a gosimpl sender
// ends its own segments with a 24-byte trailer, past the data it declares
// in the header (C peers never look there):
//
//	len-24  holder: the pid of the process a relay handed the request
//	        over to, 0 while it is with the receiver the sender rang
//	len-16  magic (trailerMagic)
//	len-8   claim: the token of the receiver the request is for, 0 once taken
//
// The sender sets the claim, after the request and before ringing; a
// relaying receiver sets it to the relay target's token before ringing
// that. A public receiver takes a request only by swapping its own token
// for 0 (an atomic compare-and-swap in the shared page), so a segment id
// rung at it is served only if it was meant for it, and once. Only the
// segment's users can write the claim; see Endpoint.accept for when it is
// required. The token (receiverToken) hashes the receive FIFO's device and
// inode with the receiver's pid.
const (
	trailerSize  = 24
	offMagic     = 16 // from the end, as are the two below
	offClaim     = 8
	offHolder    = 24
	trailerMagic = uint64(0x316c706d69736f67) // "gosimpl1" in little-endian bytes
)

// hasTrailer tells whether the segment ends with a gosimpl trailer. Only
// a whole number of 8-byte words can (mappings are page-aligned, so the
// words are aligned too).
func (s *segment) hasTrailer() bool {
	n := len(s.mem)
	return n%8 == 0 && n >= HeaderSize+trailerSize && atomic.LoadUint64(sys.Uint64At(s.mem, n-offMagic)) == trailerMagic
}

// room is how many data bytes a sender's own segment holds (its trailer
// excluded).
func (s *segment) room() int { return s.capacity() - trailerSize }

// setClaim marks the segment's request as meant for the receiver with
// token (0: for none).
func (s *segment) setClaim(token uint64) {
	n := len(s.mem)
	atomic.StoreUint64(sys.Uint64At(s.mem, n-offMagic), trailerMagic)
	atomic.StoreUint64(sys.Uint64At(s.mem, n-offClaim), token)
}

// The holder: who has the request now. Over FIFOs a relay hands the
// request over whole, as C SIMPL does: the relayer rings the next
// receiver with the same segment and is done with it, and that receiver
// answers the sender directly. A sender watches the process it rang to
// notice a dead receiver (watch.go), and that process may well exit
// before the next one answers. So a gosimpl relayer writes the next
// receiver's pid here before ringing it, and a sender whose receiver has
// exited without answering waits on for the holder, if there is one and
// it is alive (see Conn.Send). A C SIMPL relayer writes nothing here: the
// sender then fails with ErrPeerGone when the relayer exits, as a C
// SIMPL sender would wait forever.
//
// A relayer that lives on would leave its sender watching it, not the
// process now holding the request, whose death the sender would then not
// notice. So a sender that understands it tags the word (holderTag, in
// its upper 32 bits, which no pid reaches and random data matches once
// in 2^32), and a gosimpl relayer that finds the tag keeps it and, once
// the next receiver is rung, rings the sender's reply FIFO with
// relayedNotice, never an answer: the sender looks at the holder again
// and watches it. While the relayer rings, the word carries
// holderPending too, cleared once the ring has succeeded (a failed ring
// puts the word back): a notice that comes late, from an earlier relay,
// and finds the word pending is passed over, so a sender never follows a
// holder that may not get the request. A late notice that finds the
// word settled names the sender's current request's holder (or 0, the
// receiver it rang), and looking again is harmless. A sender without
// the tag (of a build before it) gets no notices.
//
//	63            32 31        30             0
//	+---------------+---------+---------------+
//	|   holderTag   | pending |      pid      |  (a tagged word)
//	+---------------+---------+---------------+

const (
	holderTag     = uint64(0x676f736e) << 32 // "gosn": the sender takes relayedNotice
	holderPending = uint64(1) << 31          // a relayer is ringing the pid
	holderPIDMask = holderPending - 1
	relayedNotice = int32(-2) // a reply doorbell meaning "look at the holder again"
)

// resetHolder records that the request is with the receiver the sender
// rang, and that the sender takes relayedNotice. The segment must have a
// trailer.
func (s *segment) resetHolder() { s.storeHolderWord(holderTag) }

// holderWord is the holder word as it is: a pid, or a tagged word.
func (s *segment) holderWord() uint64 {
	return atomic.LoadUint64(sys.Uint64At(s.mem, len(s.mem)-offHolder))
}

// storeHolderWord writes the holder word.
func (s *segment) storeHolderWord(w uint64) {
	atomic.StoreUint64(sys.Uint64At(s.mem, len(s.mem)-offHolder), w)
}

// settleHolder clears holderPending from w, if the word is still w.
func (s *segment) settleHolder(w uint64) {
	atomic.CompareAndSwapUint64(sys.Uint64At(s.mem, len(s.mem)-offHolder), w, w&^holderPending)
}

// tagged tells whether holder word w is a tagged one.
func tagged(w uint64) bool { return w&^(holderPending|holderPIDMask) == holderTag }

// holder is the pid recorded last, pending or not; 0 for none or for a
// value no pid can be (the word is in memory the receivers may write).
func (s *segment) holder() int {
	v := s.holderWord()
	if tagged(v) {
		return int(v & holderPIDMask)
	}
	if v > math.MaxInt32 {
		return 0
	}
	return int(v)
}

// holderIsPending tells whether a relayer is ringing the holder.
func (s *segment) holderIsPending() bool {
	v := s.holderWord()
	return tagged(v) && v&holderPending != 0
}

// takeClaim takes the request for the receiver with token: true if it was
// meant for it and not yet taken. The segment must have a trailer.
func (s *segment) takeClaim(token uint64) bool {
	return atomic.CompareAndSwapUint64(sys.Uint64At(s.mem, len(s.mem)-offClaim), token, 0)
}

// fifoToken fstats the receive FIFO fd and returns the token of
// the receiver pid that owns it (see receiverToken), and the FIFO's mode
// and group.
func fifoToken(fd, pid int) (token uint64, mode, gid uint32, err error) {
	var dev, ino uint64
	dev, ino, mode, gid, err = sys.FileID(fd)
	return receiverToken(dev, ino, pid), mode, gid, err
}

// receiverToken names one receiver in a claim: its receive FIFO, by device
// and inode, and its pid. A sender computes it from the FIFO it opened, the
// receiver from the FIFO it made. Never 0.
func receiverToken(dev, ino uint64, pid int) uint64 {
	h := fnv.New64a()
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], dev)
	binary.LittleEndian.PutUint64(b[8:], ino)
	binary.LittleEndian.PutUint64(b[16:], uint64(pid))
	h.Write(b[:])
	return max(h.Sum64(), 1)
}
