package fifo

import (
	"errors"
	"sync"

	"github.com/gosimpl/gosimpl/internal/errs"
	"github.com/gosimpl/gosimpl/internal/sys"

	"github.com/gosimpl/gosimpl/transport"
)

// Request is one message received on the FIFO transport, and its
// transport.Handle (one Request per message: the id is not used). Its
// data is a copy taken when it was received; the copy is recycled once the
// request is answered, and Data returns nil from then on. Safe for
// concurrent use: the first answer wins and later ones return ErrReplied
// (or ErrClosed after the endpoint closed).
type Request struct {
	ep   *Endpoint
	seg  *rseg
	hdr  header
	buf  *[]byte      // the copy's buffer, for a small request
	big  *sys.Mapping // the copy's mapping, for a large one
	data []byte       // the copy, once made (see copy.go)

	mu     sync.Mutex
	done   bool
	closed bool // answered by Close
	// gen names the message the Request holds now: the id its
	// transport.Request carries. An answered Request is reused for a
	// later message (see Endpoint.newRequest) with gen one higher, so
	// that a copy naming the earlier message finds it answered.
	gen uint64
}

var _ transport.Handle = (*Request)(nil)

// Data is the request's bytes, valid until the request is answered; nil
// after. A large request is copied out of the sender's segment by the
// first call (see copy.go).
func (r *Request) Data(id uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return nil
	}
	r.copyData()
	return r.data
}

// Sender is the sending identity and its pid, as the sender wrote them.
func (r *Request) Sender(id uint64) (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return "", 0 // another message's now
	}
	return r.hdr.whom, r.hdr.pid
}

// Cred is the sending process as the kernel recorded it when that process
// created the segment the request came in: its pid (shm_cpid), uid
// (shm_perm.cuid) and gid (shm_perm.cgid). Receive returns a request only
// when the header's pid is that creator's and the creator still runs,
// holding that uid among its real, effective, saved and file-system uids
// (see trust.go), so the pid is Sender's. The gid is the creator's
// effective group at the segment's creation, not checked since. A relayed
// request came in the original sender's segment and names the original
// sender. ok is always true.
func (r *Request) Cred(id uint64) (c transport.Cred, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return transport.Cred{}, false // another message's now
	}
	cr := r.seg.cr
	return transport.Cred{PID: cr.pid, UID: int(cr.uid), GID: int(cr.gid)}, true
}

// MaxReply is the largest reply the sender accepts.
func (r *Request) MaxReply(id uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return 0
	}
	return r.hdr.ybytes
}

// SegmentID is the System V segment the request came in (for tests and
// tools that show it).
func (r *Request) SegmentID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seg.id
}

func (r *Request) answeredErr() error {
	if r.closed {
		return errs.Errorf("reply: %w", transport.ErrClosed)
	}
	return transport.ErrReplied
}

// Reply writes data over the sender's segment and wakes the sender. A reply
// larger than MaxReply is not truncated: the sender gets ErrReplyTooLarge,
// the request counts as answered, and Reply says so too.
func (r *Request) Reply(id uint64, data []byte) error { return r.reply(id, data, len(data)) }

// ReplyBuffer is where a reply can be written in place: MaxReply bytes of
// the sender's segment (Data is a copy and does not change). Valid until
// the request is answered; nil once answered.
func (r *Request) ReplyBuffer(id uint64) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done || id != r.gen {
		return nil
	}
	r.copyData() // before a reply in place can overwrite the request
	return r.seg.data(r.hdr.ybytes)
}

// ReplyInPlace answers with the first n bytes of ReplyBuffer, as Reply
// does.
func (r *Request) ReplyInPlace(id uint64, n int) error {
	if n < 0 {
		return errs.Errorf("%w: reply of %d bytes", transport.ErrBadMessage, n)
	}
	return r.reply(id, nil, n)
}

// reply answers with n bytes: data, or what is already in place when data
// is nil.
func (r *Request) reply(id uint64, data []byte, n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return transport.ErrReplied
	}
	if r.done {
		return r.answeredErr()
	}
	defer r.finish()
	if n > r.hdr.ybytes {
		r.seg.put(offNBytes, codeReplyLarge)
		r.ringSender(-1)
		return errs.Errorf("reply to %s (pid %d): %w", r.hdr.whom, r.hdr.pid, transport.ReplyTooLarge(n, r.hdr.ybytes))
	}
	if data != nil {
		copy(r.seg.data(n), data)
	}
	r.seg.put(offNBytes, int32(n))
	return r.ringSender(0)
}

// ReplyError answers with a failure: the sender's Send returns ErrRejected.
func (r *Request) ReplyError(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return transport.ErrReplied
	}
	if r.done {
		return r.answeredErr()
	}
	defer r.finish()
	r.seg.put(offNBytes, codeRejected)
	return r.ringSender(-1)
}

// Relay passes the request to another receiver by ringing its FIFO with the
// same segment id; that receiver answers the original sender directly.
// to must be a FIFO-transport Conn, else ErrNotSupported. If the doorbell
// cannot be written the request stays unanswered here.
func (r *Request) Relay(id uint64, to transport.Conn) error {
	c, ok := transport.Unwrap(to).(*Conn)
	if !ok {
		return errs.Errorf("%w: relay across transports", transport.ErrNotSupported)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen {
		return transport.ErrReplied
	}
	if r.done {
		return r.answeredErr()
	}
	// The request is now for the relay target, and no longer for anyone
	// if the doorbell cannot be written (see segment.go). A gosimpl
	// sender learns who holds it (the holder, segment.go) before the
	// target is rung: once rung, the target may answer, and the sender
	// reuse its segment for its next Send, at any moment. (Should this
	// process die between the two, the sender waits for the target, which
	// never got the request, until the target exits; the other order
	// would fail the sender though its request was alive, and a relay
	// hop after this one could be overwritten by this store.)
	trailer := r.seg.hasTrailer()
	var was, now uint64
	notify := false
	if trailer {
		was = r.seg.holderWord()
		now = uint64(c.pid)
		if notify = tagged(was); notify {
			now |= holderTag | holderPending // the sender's tag kept; see segment.go
		}
		r.seg.storeHolderWord(now)
		r.seg.setClaim(c.token)
	}
	if err := c.doorbell(int32(r.seg.id)); err != nil {
		if trailer {
			r.seg.setClaim(0)
			r.seg.storeHolderWord(was)
		}
		return err
	}
	if notify {
		// The sender watches this process: tell it to watch the holder.
		// (A sender gone meanwhile has nothing to be told, and one this
		// receiver cannot reach at once is not waited for: the notice
		// can be spared, the sender learning of the holder when this
		// process exits.)
		r.seg.settleHolder(now)
		_ = r.ep.ringOpt(r.hdr, relayedNotice, false)
	}
	r.finish()
	return nil
}

// Claim renumbers the unanswered request id: answers under id are then
// ErrReplied.
func (r *Request) Claim(id uint64) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.gen || r.done {
		return 0, false
	}
	r.gen++
	return r.gen, true
}

// Abort fails the request for its sender with ErrPeerGone, as when the
// receiver detaches.
func (r *Request) Abort(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == r.gen {
		r.answerClosedLocked()
	}
}

// answerClosed fails the request because the endpoint is closing.
func (r *Request) answerClosed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answerClosedLocked()
}

// answerClosedLocked is answerClosed with r.mu held.
func (r *Request) answerClosedLocked() {
	if r.done {
		return
	}
	r.seg.put(offNBytes, codeClosed)
	r.ringSender(-1)
	r.finish()
	r.closed = true
}

// ringSender rings the sender's reply FIFO with v. A sender found gone
// (killed while its request was held, say) will never send again from
// its segment: the segment, and the pidfd kept with it, go as soon as the
// request lets go of them (finish), not at the next sweep. r.mu is held.
func (r *Request) ringSender(v int32) error {
	err := r.ep.ring(r.hdr, v)
	if errors.Is(err, transport.ErrPeerGone) {
		r.ep.mu.Lock()
		r.seg.evict = true
		r.ep.mu.Unlock()
	}
	return err
}

// finish marks the request answered and releases what it held. r.mu is
// held.
func (r *Request) finish() {
	r.done = true
	e := r.ep
	e.mu.Lock()
	delete(e.pending, r)
	e.mu.Unlock()
	e.releaseSeg(r.seg)
	r.freeData()
	e.recycle(r)
}

// maxFreeRequests bounds the answered Requests an endpoint keeps for
// reuse: as many as are usually unanswered at once, and a few more.
const maxFreeRequests = 64

// newRequest is a Request for a message just accepted: an answered one
// reused (its gen one higher), or a new one. r.mu is held on return, so
// that a copy naming the earlier message waits until the new one is set
// up; the caller unlocks it.
func (e *Endpoint) newRequest(seg *rseg, h header) *Request {
	e.freeMu.Lock()
	var r *Request
	if n := len(e.freeReqs); n > 0 {
		r = e.freeReqs[n-1]
		e.freeReqs[n-1] = nil
		e.freeReqs = e.freeReqs[:n-1]
	}
	e.freeMu.Unlock()
	if r == nil {
		r = &Request{ep: e}
		r.mu.Lock()
		return r
	}
	r.mu.Lock()
	r.seg, r.hdr = seg, h
	r.done, r.closed = false, false
	r.gen++
	return r
}

// recycle keeps the answered r for newRequest. r.mu is held: the Request
// is not handed out again before it is unlocked.
func (e *Endpoint) recycle(r *Request) {
	e.freeMu.Lock()
	if len(e.freeReqs) < maxFreeRequests {
		e.freeReqs = append(e.freeReqs, r)
	}
	e.freeMu.Unlock()
}
