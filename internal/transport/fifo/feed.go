package fifo

import (
	"encoding/binary"
	"syscall"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// Reading the receive FIFO on Receive's thread (Options.ThreadReceive).
//
// Without ThreadReceive a goroutine reads the receive FIFO (readLoop) and
// posts each request to the queue, where Receive takes it. A Receive
// called from a C thread (through the C library) then wakes through
// three threads: the one Go's poller wakes for the FIFO, which runs the
// reader, and the C thread the runtime hands the request to; C SIMPL's
// own receiver wakes once. With ThreadReceive the endpoint has no reader
// goroutine and is its queue's Feeder (transport.Feeder): a Receive with
// nothing to take reads the next doorbell itself (Feed) and, when the
// FIFO is empty, waits for it in a ppoll of the FIFO on its own thread
// (Wait). The FIFO is opened outside Go's poller, so a doorbell wakes
// that thread and nothing else.
//
// While the queue's Source (shared memory) has senders, a Receive sleeps
// on the Source's futex, which a FIFO cannot wake: the endpoint then
// watches the FIFO from a goroutine through a second descriptor in Go's
// poller (Watch) and rings the futex (Queue.Notify) when a doorbell
// comes. That costs the hand-off the watch avoids elsewhere, only for
// FIFO requests to a receiver that shared-memory senders use at the same
// time, and nothing for the shared-memory ones: Feed looks at the FIFO
// only when the watch saw it gain something.
//
// Doorbells stay in the FIFO until a Receive asks, as C SIMPL leaves
// them; the reader goroutine instead reads up to two ahead (readAhead).
//
// Feed, Wait and Watch are called by one Receive at a time (the queue's)
// and by Close; feedMu orders them with Close, after which they do
// nothing. Wake may be called by anyone.

// Feed reads and serves the next doorbell, if the FIFO holds one now
// (transport.Feeder). A request or proxy it read is handed straight to
// the Receive that called it (see post) rather than through the queue.
func (e *Endpoint) Feed() (transport.Request, int, bool) {
	if e.watchOn.Load() && !e.maybe.Load() {
		// Watching, and nothing came: what a Receive sleeping on the
		// shared-memory futex pays for the FIFO at each poll, without the
		// lock. (maybe stays true while resynchronised words wait.)
		return transport.Request{}, 0, false
	}
	e.feedMu.Lock()
	defer e.feedMu.Unlock()
	if e.feedClosed {
		return transport.Request{}, 0, false
	}
	e.feeding = true
	defer func() { e.feeding = false }()
	for {
		if len(e.fedWords) > 0 {
			if !e.q.TakeCredit(e.credit, e.done) {
				return transport.Request{}, 0, false // closing: Close answers them
			}
			w := e.fedWords[0]
			e.fedWords = e.fedWords[1:]
			e.dispatch(w.v, false, e.fedClaim)
			if e.hasFed {
				return e.takeFed()
			}
			continue
		}
		if e.watchOn.Load() && !e.maybe.Swap(false) {
			return transport.Request{}, 0, false
		}
		var b [4]byte
		n, left := 0, 0
		var rerr, lerr error
		if err := e.rxFD.Control(func(fd int) {
			n, rerr = sys.ReadNonblock(fd, b[:])
			if n > 0 {
				left, lerr = sys.PipeBuffered(fd)
			}
		}); err != nil || rerr != nil || n == 0 {
			return transport.Request{}, 0, false
		}
		if left > 0 && e.watchOn.Load() {
			e.maybe.Store(true) // more to read before the next sleep
		}
		if n != 4 || (lerr == nil && left%4 != 0) {
			// Not whole doorbells: resynchronise (resync.go) and serve
			// what it finds, one a Feed.
			e.rxFD.Control(func(fd int) { e.fedWords = e.resync(fd, b[:n], n < 4) })
			e.fedClaim = true
			e.maybe.Store(true) // words to serve: not skipped while watching
			continue
		}
		v := int32(binary.NativeEndian.Uint32(b[:]))
		if !e.q.TakeCredit(e.credit, e.done) {
			e.fedWords, e.fedClaim = append(e.fedWords[:0], word{0, v}), false
			e.maybe.Store(true)
			return transport.Request{}, 0, false
		}
		if _, nothing := e.dispatchRead(v); nothing {
			// A word that names nothing: check the stream (recheck).
			var words []word
			mustClaim := false
			e.rxFD.Control(func(fd int) { words, mustClaim = e.recheck(fd, b[:]) })
			e.fedWords, e.fedClaim = words, mustClaim
			e.maybe.Store(true)
			continue
		}
		if e.hasFed {
			return e.takeFed()
		}
		// Read and dropped (see dispatch): read on.
	}
}

// takeFed hands over what post kept for the Receive feeding.
func (e *Endpoint) takeFed() (transport.Request, int, bool) {
	r, p := e.fedReq, e.fedProxy
	e.fedReq, e.fedProxy, e.hasFed = transport.Request{}, 0, false
	return r, p, true
}

// post delivers a request, or a proxy (req the zero Request), read from
// the FIFO, in the credit slot the reader holds: to the queue, or, when a
// Receive's thread is reading (Feed), to that Receive. It reports false,
// the slot given back, when the queue is closed.
func (e *Endpoint) post(req transport.Request, proxy int) bool {
	if e.feeding {
		e.credit.Return()
		e.fedReq, e.fedProxy, e.hasFed = req, proxy, true
		return true
	}
	return e.q.PostCredited(e.credit, req, proxy)
}

// Wait waits on the calling thread until the FIFO is readable or Wake
// is called (transport.Feeder).
func (e *Endpoint) Wait(pending func() bool) {
	e.feedMu.Lock()
	defer e.feedMu.Unlock()
	if e.feedClosed || len(e.fedWords) > 0 {
		return
	}
	// Dekker with Wake: sleeping is set before pending looks, and Wake
	// looks at sleeping after whatever made pending true (Close closes
	// done before it wakes).
	e.sleeping.Store(true)
	woken := false
	if !pending() && !e.isClosed() {
		e.rxFD.Control(func(fd int) { woken, _ = sys.WaitReadable(fd, e.rxWaker) })
	}
	e.sleeping.Store(false)
	if woken {
		// Drained whenever ppoll saw it readable, whatever kicked says: a
		// Wake's write can land after the Wait it meant to end, and left
		// readable the waker would end every later Wait at once.
		e.kicked.Store(false)
		sys.Unwake(e.rxWaker)
	}
}

// Wake ends a Wait in progress (transport.Feeder). kicked spares the
// write while one is pending; Wait clears it when it drains the waker.
func (e *Endpoint) Wake() {
	if e.sleeping.Load() && !e.kicked.Swap(true) {
		sys.Wake(e.rxWaker)
	}
}

// Watch starts or stops the watch of the FIFO for a Receive sleeping on
// the Source's futex (transport.Feeder). A watch that cannot start
// (descriptors short) is tried again at the next Watch(true); meanwhile
// Feed reads the FIFO at every poll, so nothing is missed while the
// Receive spins, and a sleeping one wakes at the next shared-memory
// request.
func (e *Endpoint) Watch(on bool) {
	if e.watchOn.Load() == on {
		return
	}
	e.feedMu.Lock()
	defer e.feedMu.Unlock()
	if on && !e.feedClosed {
		e.startWatch()
		return
	}
	e.stopWatch()
}

// startWatch starts the watch goroutine on a second descriptor of the
// FIFO, registered in Go's poller. The caller holds feedMu.
func (e *Endpoint) startWatch() {
	e.maybe.Store(true) // look once, whatever came before the watch
	dup, err := e.rxFD.Dup()
	if err != nil {
		return
	}
	f, err := dup.File(e.rxPath)
	if err != nil {
		dup.Close()
		return
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	e.watchFile, e.watchDone = f, make(chan struct{})
	e.watchOn.Store(true)
	go e.watchLoop(raw, e.watchDone)
}

// stopWatch ends the watch and waits for its goroutine. The caller holds
// feedMu.
func (e *Endpoint) stopWatch() {
	if e.watchFile == nil {
		return
	}
	e.watchOn.Store(false)
	e.watchFile.Close() // ends the goroutine's wait
	<-e.watchDone
	e.watchFile, e.watchDone = nil, nil
}

// watchLoop notifies the queue whenever the FIFO gains something: at each
// wait's start if it holds something, and at each write after. Data left
// unread while the receiver is busy costs one notification a write, never
// a spin: every wait but its first look is for a new write (Go's poller
// reports edges).
func (e *Endpoint) watchLoop(raw syscall.RawConn, done chan struct{}) {
	defer close(done)
	for {
		e.watchFirst = true
		if err := raw.Read(e.watchCheck); err != nil {
			return
		}
	}
}

// watchCheck is watchLoop's RawConn.Read callback (a method value made
// once, so a wake-up allocates nothing).
func (e *Endpoint) watchCheck(fd uintptr) bool {
	if !e.watchFirst {
		e.maybe.Store(true)
		e.q.Notify()
		return true
	}
	e.watchFirst = false
	if n, _ := sys.PipeBuffered(int(fd)); n > 0 {
		e.maybe.Store(true)
		e.q.Notify()
	}
	return false
}

// closeFeed, from Close, makes Feed, Wait and Watch do nothing from now
// on, waiting out any in progress, and stops the watch.
func (e *Endpoint) closeFeed() {
	e.q.RemoveFeeder(e)
	e.feedMu.Lock()
	defer e.feedMu.Unlock()
	e.feedClosed = true
	e.stopWatch()
}
