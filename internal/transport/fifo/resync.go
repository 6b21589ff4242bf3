package fifo

import (
	"encoding/binary"
	"errors"
	"math"
	"sync/atomic"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// Resynchronising the doorbell stream (issue 16, item 3).
//
// Doorbells are 4-byte writes, each atomic (a FIFO write of at most
// PIPE_BUF bytes never interleaves with another), so the receive FIFO
// holds a whole number of them unless someone allowed to write it wrote
// something else: one stray byte would otherwise shift every later
// doorbell by a byte, for good. The reader detects it cheaply:
//
//   - It reads each doorbell with one read of up to 4 bytes. A read
//     returns what the pipe holds, up to 4 bytes, so fewer than 4 means
//     the pipe held only those: complete writes of less than a doorbell,
//     a stray.
//   - After a 4-byte read it asks the FIFO how many bytes wait (FIONREAD:
//     one system call, no allocation). Honest writes are whole doorbells,
//     so anything but a multiple of 4 means a stray write is in the pipe,
//     or in the 4 bytes just read.
//   - A count that is a multiple of 4 does not prove the stream aligned:
//     two stray writes whose lengths add up to whole doorbells (2 + 2
//     bytes around a doorbell, say), or a stray whose complement lands
//     between the read and the count, leave it so, and the reader would
//     read a stray and half a doorbell as one word, and lose the
//     doorbell. So a word that names nothing a sender could have rung
//     (plausible: no segment this receiver can attach, no proxy up to
//     65535) is checked again (recheck): the FIFO is drained after it as
//     below, and the stretch is resynchronised from if it is not whole
//     doorbells or holds a claimed request at an offset no aligned
//     stream puts one; else its words are served as they came.
//
// Then it resynchronises (resync): it drains what the FIFO holds now,
// without waiting and at most resyncMax bytes, after the bytes in hand.
// A read that returns less than it asked for emptied the pipe, so the
// next byte starts a fresh write: the reader is aligned again, whatever
// the stretch drained held. In that stretch:
//
//   - A gosimpl sender's request is found for sure: its segment carries a
//     claim naming this receiver (segment.go). Every offset is probed, so
//     such a request is served wherever the stray put it, once (the claim
//     is taken by compare-and-swap), even on a private receiver, which
//     otherwise does not need the claim: a segment found here by its
//     claim, or a stale one whose claim is spent, is never served twice.
//   - For the rest (C senders, which have no trailer, and proxies) the
//     reader picks the split that explains the stretch best (splitStretch):
//     one stray write of length len%4 at some 4-byte boundary, whole
//     doorbells before and after it. Words are rated by plausibility, and
//     only plausible words of the best split are delivered; where two
//     splits explain it equally well, the words they disagree on are
//     dropped rather than delivered with a wrong value.
//
// Whatever is not delivered is counted in Dropped, each resync in
// Misaligned. The cost of a stray write is thus at most the proxies and C
// requests written in the same instant; never the channel, and never a
// gosimpl sender's request that reached the FIFO.

// resyncMax bounds one drain: the default capacity of a pipe (16 pages),
// plus the doorbell in hand.
const resyncMax = 64<<10 + 4

// Ratings of a word found in a misaligned stretch: how well it explains
// the bytes it sits on.
const (
	rateNone       = 0 // nothing a sender would write (it is dropped)
	rateProxy      = 1 // a proxy up to 65535
	rateSmallProxy = 2 // a proxy up to 255
	rateSegment    = 3 // a segment without a claim, as a C sender's
	rateClaimed    = 8 // a segment whose claim is this receiver's
)

// word is a doorbell found in a stretch: its offset and value.
type word struct {
	off int
	v   int32
}

// splitStretch finds the doorbells in buf, a stretch of complete writes
// (or one cut at resyncMax), by the best explanation of it: one stray
// write of len(buf)%4 bytes at a 4-byte boundary k, whole doorbells
// before k and after the stray. rate scores a word at an offset (never
// negative). It appends to out the words every best split agrees on whose
// rating is above rateNone, in order, and returns them and how many words
// of a split were not delivered.
func splitStretch(buf []byte, rate func(off int, v int32) int, out []word) ([]word, int) {
	n := len(buf)
	t := n % 4
	perSplit := (n - t) / 4
	if perSplit == 0 {
		return out, 0
	}
	at := func(off int) int32 { return int32(binary.NativeEndian.Uint32(buf[off:])) }
	// score of split k, k = 0, 4, ..., n-t: the words before k plus those
	// after k+t. Computed from prefix sums of the two alignments.
	pre := make([]int, perSplit+1)  // pre[i]: words 0..i-1 aligned at 0
	post := make([]int, perSplit+1) // post[i]: words i.. aligned at t
	for i := range perSplit {
		pre[i+1] = pre[i] + rate(4*i, at(4*i))
	}
	for i := perSplit - 1; i >= 0; i-- {
		post[i] = post[i+1] + rate(4*i+t, at(4*i+t))
	}
	best, lo, hi := -1, 0, 0 // best score; the first and last split with it
	last := perSplit
	if t == 0 {
		last = 0 // no stray to place: one split
	}
	for i := 0; i <= last; i++ {
		switch s := pre[i] + post[i]; {
		case s > best:
			best, lo, hi = s, i, i
		case s == best:
			hi = i
		}
	}
	// The best splits (lo..hi; any between that scored less still lies
	// between) agree on the words before lo and on those after hi.
	delivered := 0
	for i := range lo {
		if v := at(4 * i); rate(4*i, v) > rateNone {
			out = append(out, word{4 * i, v})
			delivered++
		}
	}
	for i := hi; i < perSplit; i++ {
		if v := at(4*i + t); rate(4*i+t, v) > rateNone {
			out = append(out, word{4*i + t, v})
			delivered++
		}
	}
	return out, perSplit - delivered
}

// rateProxyWord rates a negative v as a proxy: the smaller, the likelier.
func rateProxyWord(v int32) int {
	switch {
	case v >= 0 || v == math.MinInt32:
		return rateNone
	case v >= -255:
		return rateSmallProxy
	case v >= -65535:
		return rateProxy
	}
	return rateNone
}

// probe kinds, memoised per resync.
const (
	probeNone    = iota + 1 // no segment this receiver can attach
	probeC                  // a segment without a trailer
	probeSpent              // a trailer whose claim is not this receiver's
	probeClaimed            // a claim for this receiver
)

// probeSegment tells what segment id is to this receiver, attaching it
// for a moment without keeping it (the claim is read, not taken).
func (e *Endpoint) probeSegment(id int32) int {
	if id < 0 { // 0 is a segment id, the first of an IPC namespace
		return probeNone
	}
	mem, err := sys.ShmAttach(int(id))
	if err != nil {
		return probeNone
	}
	defer sys.ShmDetach(mem)
	s := segment{id: int(id), mem: mem}
	switch {
	case !s.hasTrailer():
		return probeC
	case atomic.LoadUint64(sys.Uint64At(mem, len(mem)-8)) == e.token:
		return probeClaimed
	}
	return probeSpent
}

// resync drains the receive FIFO fd after the misaligned bytes in hand
// (short: a read returned fewer than 4 bytes, all the pipe held then) and
// returns the doorbells to serve, in the order they came. A positive word
// among them is to be dispatched with mustClaim. It counts what it drops.
// Only the reader calls it.
func (e *Endpoint) resync(fd int, hand []byte, short bool) []word {
	e.misaligned.Add(1)
	buf := e.drain(fd, hand)
	start := 0
	if short {
		start = len(hand) // complete writes shorter than a doorbell: stray
	}
	return e.findWords(buf[start:], e.prober())
}

// recheck checks the doorbell stream after the reader read a word that
// names nothing this receiver could serve (see plausible) while the FIFO
// held whole doorbells by count. Two stray writes whose lengths add up to
// a multiple of 4 (2 + 2 bytes, say), or one whose complement was written
// between the reader's read and its count, leave that count aligned and
// the stream not: the word in hand is then a stray and part of a
// doorbell, and so are the words after it, up to the next stray. So it
// drains the FIFO after hand as resync does, and if the stretch is not a
// whole number of doorbells, or holds a request claimed for this receiver
// at an offset that is not one (which no aligned stream does), it is
// resynchronised from as resync does: the words returned are to be
// dispatched with mustClaim (true). Otherwise the stream was aligned
// after all (a proxy above 65535, a forged or stale doorbell), and the
// words are returned as they came, hand first, to be dispatched as usual.
func (e *Endpoint) recheck(fd int, hand []byte) ([]word, bool) {
	buf := e.drain(fd, hand)
	probe := e.prober()
	if len(buf)%4 == 0 {
		misaligned := false
		for off := 1; off+4 <= len(buf) && !misaligned; off++ {
			v := int32(binary.NativeEndian.Uint32(buf[off:]))
			misaligned = off%4 != 0 && v >= 0 && probe(v) == probeClaimed
		}
		if !misaligned {
			words := make([]word, 0, len(buf)/4)
			for off := 0; off < len(buf); off += 4 {
				words = append(words, word{off, int32(binary.NativeEndian.Uint32(buf[off:]))})
			}
			return words, false
		}
	}
	e.misaligned.Add(1)
	return e.findWords(buf, probe), true
}

// errNoSegment: a doorbell names no segment this receiver can attach.
var errNoSegment = errors.New("which this receiver cannot attach")

// plausible tells whether v, read as a doorbell, is one a sender could
// have rung: a proxy up to 65535, or a segment this receiver has attached
// or could attach. It allocates nothing.
func (e *Endpoint) plausible(v int32) bool {
	if v < 0 {
		return rateProxyWord(v) > rateNone
	}
	e.mu.Lock()
	_, ok := e.segs[int(v)]
	e.mu.Unlock()
	if ok {
		return true
	}
	_, err := sys.ShmStat(int(v))
	return err == nil
}

// drain reads what the receive FIFO fd holds now, without waiting and at
// most resyncMax bytes, after the bytes in hand, and returns it all (in
// e.rbuf). A read that returns less than it asked for emptied the pipe,
// so the bytes after the last start a fresh write.
func (e *Endpoint) drain(fd int, hand []byte) []byte {
	if e.rbuf == nil {
		e.rbuf = make([]byte, 0, resyncMax)
	}
	buf := append(e.rbuf[:0], hand...)
	for len(buf) < cap(buf) {
		want := cap(buf) - len(buf)
		n, err := sys.ReadNonblock(fd, buf[len(buf):cap(buf)])
		if err != nil || n <= 0 {
			break
		}
		buf = buf[:len(buf)+n]
		if n < want {
			break // the pipe is empty: the next byte starts a write
		}
	}
	return buf
}

// prober returns what probeSegment tells of a word, memoised for one
// stretch.
func (e *Endpoint) prober() func(int32) int {
	memo := make(map[int32]int)
	return func(v int32) int {
		k, ok := memo[v]
		if !ok {
			k = e.probeSegment(v)
			memo[v] = k
		}
		return k
	}
}

// findWords finds the doorbells of a misaligned stretch (see the top of
// this file) and returns them in order; it counts what it drops.
func (e *Endpoint) findWords(stretch []byte, probe func(int32) int) []word {
	var found []word
	// Claimed requests, at any offset.
	claimedAt := make(map[int]bool)
	for off := 0; off+4 <= len(stretch); off++ {
		v := int32(binary.NativeEndian.Uint32(stretch[off:]))
		if v >= 0 && probe(v) == probeClaimed {
			claimedAt[off] = true
		}
	}
	rate := func(off int, v int32) int {
		if v < 0 {
			return rateProxyWord(v)
		}
		switch probe(v) {
		case probeClaimed:
			if claimedAt[off] {
				return rateClaimed
			}
		case probeC:
			return rateSegment
		}
		return rateNone
	}
	var dropped int
	found, dropped = splitStretch(stretch, rate, found)
	// Claimed requests the split left out: served all the same (their
	// claim says they are real), in order.
	inSplit := make(map[int32]bool)
	for _, w := range found {
		inSplit[w.v] = true
	}
	for off := range claimedAt {
		v := int32(binary.NativeEndian.Uint32(stretch[off:]))
		if !inSplit[v] {
			inSplit[v] = true
			found = append(found, word{off, v})
		}
	}
	sortWords(found)
	// A segment named twice is served once (the claim sees to that for
	// gosimpl senders); the rest of what it is named is not counted here.
	e.dropped.Add(int64(dropped))
	return found
}

// sortWords orders words by offset (few, nearly sorted: insertion).
func sortWords(ws []word) {
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && ws[j].off < ws[j-1].off; j-- {
			ws[j], ws[j-1] = ws[j-1], ws[j]
		}
	}
}

// aligned tells, after a read of n bytes from the receive FIFO fd,
// whether the doorbell stream is still aligned: 4 bytes were read and the
// FIFO holds whole doorbells. It allocates nothing.
func aligned(fd, n int) bool {
	if n != 4 {
		return false
	}
	left, err := sys.PipeBuffered(fd)
	return err != nil || left%4 == 0
}

// Misaligned counts the times the receive FIFO held something other than
// whole doorbells (a stray write by someone allowed to write it), each of
// which the reader resynchronised from.
func (e *Endpoint) Misaligned() int64 { return e.misaligned.Load() }

// putClaim gives back a claim this receiver took (token for 0), when it
// could not check the request for want of descriptors and tries again.
func (s *segment) putClaim(token uint64) {
	atomic.CompareAndSwapUint64(sys.Uint64At(s.mem, len(s.mem)-8), 0, token)
}
