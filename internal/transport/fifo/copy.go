package fifo

import "github.com/gosimpl/gosimpl/internal/sys"

// What a receiver copies, and when. A request is copied out of its
// sender's segment before the receiver's program sees it, so that a sender
// changing its segment later cannot change what was read. How much memory
// that takes is bounded, whatever senders do:
//
//   - A request of eagerCopy bytes or less is copied by the reader as soon
//     as it is accepted (it is in hand when Receive takes it). A larger one
//     is copied only when the program first asks for its bytes
//     (Request.Data, or ReplyBuffer, which would otherwise let the reply
//     overwrite the request before it is read).
//   - A copy of up to pooledCopy bytes goes into a buffer from a free list,
//     and back to the list when the request is answered. The lists are
//     bounded: at most smallBuffers buffers of up to eagerCopy bytes and
//     mediumBuffers of up to pooledCopy bytes (6 MiB in all) stay with the
//     process between requests.
//   - A larger copy goes into an anonymous mapping, not the Go heap. When
//     the request is answered the endpoint keeps one such mapping, the
//     largest, for the next large request (mapping and faulting in fresh
//     memory for every message made an 8 MiB round trip three times
//     slower); the janitor unmaps it once a round (sweepEvery) has passed
//     without it being used, so the memory of a large message goes back to
//     the system within two rounds, rather than staying in the Go heap
//     until a garbage collection, and then in the process until the
//     runtime returns it.
//
// The reader holds at most one request it has accepted and Receive has not
// taken (see readAhead), so it copies at most eagerCopy bytes ahead of
// Receive; memory for larger requests is spent only by the program's own
// Receives, one copy per request it holds unanswered.
const (
	eagerCopy     = smallRequest
	pooledCopy    = 1 << 20
	smallBuffers  = 32
	mediumBuffers = 4
)

var (
	smallBufs  = make(chan *[]byte, smallBuffers)
	mediumBufs = make(chan *[]byte, mediumBuffers)
)

// freeList is the list for buffers of n bytes (nil above pooledCopy).
func freeList(n int) chan *[]byte {
	switch {
	case n <= eagerCopy:
		return smallBufs
	case n <= pooledCopy:
		return mediumBufs
	}
	return nil
}

// getBuf returns a buffer of n bytes (n <= pooledCopy) from its free
// list, or a new one.
func getBuf(n int) *[]byte {
	list := freeList(n)
	select {
	case p := <-list:
		if cap(*p) >= n {
			*p = (*p)[:n]
			return p
		}
		putBuf(p)
	default:
	}
	c := 512
	if list == mediumBufs {
		c = pooledCopy
	}
	b := make([]byte, n, max(n, c))
	return &b
}

// putBuf returns p to its free list, or to the garbage collector when the
// list is full.
func putBuf(p *[]byte) {
	if p == nil {
		return
	}
	list := freeList(cap(*p))
	if list == nil {
		return
	}
	select {
	case list <- p:
	default:
	}
}

// copyData copies the request out of the segment, once: into a buffer from
// a free list, or into a mapping of its own (or, if no mapping can be
// made, the Go heap). The reader calls it for small requests before
// posting them; otherwise r.mu is held.
func (r *Request) copyData() {
	if r.data != nil || r.done {
		return
	}
	n := r.hdr.nbytes
	if n <= pooledCopy {
		r.buf = getBuf(n)
		r.data = *r.buf
	} else if m := r.ep.bigBuffer(n); m != nil {
		r.big = m
		r.data = m.Bytes(0, n)
	} else {
		r.data = make([]byte, n)
	}
	copy(r.data, r.seg.data(n))
}

// freeData lets go of the copy. r.mu is held (or r is not shared yet).
func (r *Request) freeData() {
	r.data = nil
	putBuf(r.buf)
	r.buf = nil
	if r.big != nil {
		r.ep.putBig(r.big)
		r.big = nil
	}
}

// bigBuffer returns a private mapping of at least n bytes: the endpoint's
// spare if it is large enough, else a new one (nil if none can be made).
func (e *Endpoint) bigBuffer(n int) *sys.Mapping {
	e.spareMu.Lock()
	if m := e.spare; m != nil && m.Len() >= n {
		e.spare = nil
		e.spareUsed = true
		e.spareMu.Unlock()
		return m
	}
	e.spareMu.Unlock()
	m, err := sys.NewPrivate(n)
	if err != nil {
		return nil
	}
	return m
}

// putBig keeps m as the endpoint's spare if it is the larger, and unmaps
// the other.
func (e *Endpoint) putBig(m *sys.Mapping) {
	e.spareMu.Lock()
	if !e.spareGone && (e.spare == nil || e.spare.Len() < m.Len()) {
		m, e.spare = e.spare, m
	}
	e.spareUsed = true
	e.spareMu.Unlock()
	if m != nil {
		m.Unmap()
	}
}

// dropSpare unmaps the spare mapping if it has not been used since the
// janitor's last round, or for good if closing.
func (e *Endpoint) dropSpare(closing bool) {
	e.spareMu.Lock()
	var m *sys.Mapping
	if !e.spareUsed || closing {
		m, e.spare = e.spare, nil
	}
	e.spareGone = e.spareGone || closing
	e.spareUsed = false
	e.spareMu.Unlock()
	if m != nil {
		m.Unmap()
	}
}
