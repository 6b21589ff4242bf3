//go:build cgo

package main

/*
#include <stdlib.h>
#include "simplDefs.h"
*/
import "C"

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/pace"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
)

// The sender handle Receive returns points at C memory laid out as
// FCMSG_REC: the header, then the data area, then one spare byte.
const (
	offPid     = 32
	offShmsize = 36
	offNbytes  = 40
	offYbytes  = 44
	hdrSize    = 48 // offsetof(FCMSG_REC, data)
)

// maxSize bounds what a Send sends and accepts back, and the reply room
// a received message gets: gosimpl's default receiver limit (64 MiB). A
// larger size (a negative int passed for an unsigned one, say) fails with
// CANNOT_CREATE_SHMEM, as a shmget of that size does in C SIMPL.
const maxSize = 64 << 20

// locateTimeout bounds name_locate's connection set-up: C SIMPL's open()
// of a FIFO does not block, and neither should a locate here.
const locateTimeout = 10 * time.Second

// held is a received request not yet answered, and the C memory its
// handle points at. Both are kept for reuse once the request is answered
// (see the handle lifetime below), so that a Receive in steady state
// neither mallocs nor allocates in Go.
type held struct {
	msg    simpl.Message
	mem    unsafe.Pointer // C memory: header, room bytes of data, one spare byte
	memCap int            // bytes at mem
	room   int            // max(nbytes, ybytes); from simplReceiveInPlace: what the data area holds
	ybytes int
	// req is where whatsThisShmPtr finds the request, reqLen bytes: the
	// data area, or (simplReceiveInPlace through shared memory) the
	// sender's lane itself.
	req    unsafe.Pointer
	reqLen int
	// placed: from simplReceiveInPlace, whose reply Reply(sender, NULL, n)
	// takes from the transport's reply area (simplReplyPtr) in place.
	placed bool
	at     time.Time // when Receive returned it (see senderGone)
}

// The handle Receive returns is valid from that Receive until the request
// is answered (Reply, ReplyError, Relay) or the name detached, as in C
// SIMPL, where it points into the sender's segment and Reply detaches
// that. Several handles may be held unanswered at once, each its own
// memory. Once answered, a handle's memory goes back to a free list and a
// later Receive may return the same pointer for another request: a
// program must not use a handle after answering it (in C SIMPL the
// memory is unmapped, or mapped again for the sender's next message).
// Handles of more than keepBytes (their memory is page-rounded), and more
// than keepFree answered handles, are freed instead of kept.
const (
	keepFree  = 16
	keepBytes = 128 << 10
)

// library is the process's C SIMPL state: one attached name, as in C
// SIMPL. Safe for concurrent use (C threads may call in at once): mu
// guards every field, sendMu the send area's use by a Send.
type library struct {
	mu    sync.Mutex
	ch    *simpl.Channel
	name  *C.char // whatsMyName's string
	conns map[C.int]*simpl.Conn
	// byName is each located name's connection and ids, and located
	// each id's entry there. A name_locate of a name already located
	// gets a new id (as C SIMPL a new descriptor) on the name's
	// connection while its receiver lives, so that a program that
	// locates again (per request, or after a failure) does not make a
	// connection each time.
	byName  map[string]*located
	located map[C.int]*located
	nextID  C.int
	// active are the requests received and not answered, in no order
	// (a program holds few at once: a scan is cheaper than a map's
	// upkeep); free are answered ones whose memory waits for reuse.
	active []*held
	free   []*held
	last   *held // the most recent request received (Relay's fallback)
	in     *inbox
	stop   chan struct{} // ends the signal goroutine
	sigs   chan os.Signal

	// bufs are simplBufferGet's areas, by id (buffer.go).
	bufs map[C.int]*sendBuf

	// sendMu is held by a Send that uses the send area (a NULL in or out
	// buffer), so that no other Send grows it meanwhile.
	sendMu   sync.Mutex
	area     unsafe.Pointer // whatsMyShmPtr's area: header, then areaRoom bytes
	areaRoom int
}

var lib = library{nextID: 3}

// keepP paces the calling C thread (package pace): pc is its pacer, in
// C thread-local storage (gs_pace in capi.go). Called by each call that
// starts an exchange, before it does and before it takes any lock: the
// thread may have slept in C since its last call. (A Receive is paced
// where it sleeps, by the receive queue, transport.Queue.)
func keepP(pc *C.longlong) { pace.KeepPAt((*int64)(unsafe.Pointer(pc))) }

// cbytes is n bytes of C memory at p as a slice (never nil).
func cbytes(p unsafe.Pointer, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	return unsafe.Slice((*byte)(p), n)
}

// cString is the string in the n-byte C array at p, up to its first NUL
// (all n bytes if it has none).
func cString(p unsafe.Pointer, n int) string {
	b := cbytes(p, n)
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func fail(code int) C.int {
	setErr(code)
	return -1
}

// attached returns the Channel, or nil after setting NO_NAME_ATTACHED.
func (l *library) attached() *simpl.Channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		setErr(codeNoNameAttached)
	}
	return l.ch
}

//export gs_name_attach
func gs_name_attach(cname *C.char) C.int {
	if cname == nil {
		return fail(codeNoName)
	}
	full := C.GoString(cname)
	parts := strings.Split(full, ":")
	name := parts[len(parts)-1]
	if len(parts) > 3 || name == "" {
		return fail(codeNoName)
	}
	if len(name) > naming.MaxNameLen {
		name = name[:naming.MaxNameLen] // C SIMPL truncates
	}
	if len(parts) > 1 && parts[len(parts)-2] != "" {
		ctx, cancel := context.WithTimeout(context.Background(), locateTimeout)
		local, err := naming.IsLocalHost(ctx, parts[len(parts)-2])
		cancel()
		if err != nil || !local {
			// Attaching a name on another host needs C SIMPL's protocol
			// router; gosimpl's gateway publishes names its own way.
			return fail(codeProtocolNotAvailable)
		}
	}
	dir := naming.Dir()
	if len(dir) > naming.MaxDirLen {
		return fail(codeFIFOPathTooLong)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fail(codeNoFIFOPath)
	}
	l := &lib
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch != nil {
		// C SIMPL would attach a second name over the first and lose it;
		// one name a process here, as there.
		return fail(codeNameNotAvailable)
	}
	ch, err := simpl.Attach(name, simpl.WithDir(dir), simpl.WithSpin(spinWanted()), simpl.WithThreadWaits(true))
	switch {
	case errors.Is(err, simpl.ErrNameInUse):
		return fail(codeNameNotAvailable)
	case err != nil:
		return fail(codeFIFOCreationFailure)
	}
	l.ch, l.in = ch, nil
	l.name = C.CString(name)
	l.conns = make(map[C.int]*simpl.Conn)
	l.byName, l.located = make(map[string]*located), make(map[C.int]*located)
	l.active = l.active[:0]
	l.bufs = make(map[C.int]*sendBuf)
	l.last = nil
	l.stop = make(chan struct{})
	l.sigs = make(chan os.Signal, 1)
	signal.Notify(l.sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	handlersOn(true)
	go onSignal(l.sigs, l.stop)
	return 0
}

// spinEnv turns off the transport's spinning before it sleeps in a wait
// (gosimpl's default, which trades CPU for latency through shared
// memory) when set to 0, off or false: C SIMPL programs do not spin, and
// a program sharing a CPU with others, or a benchmark measuring without
// spinning, may not want it either.
const spinEnv = "GOSIMPL_SPIN"

func spinWanted() bool {
	switch os.Getenv(spinEnv) {
	case "0", "off", "false":
		return false
	}
	return true
}

// onSignal does what C SIMPL's handler does: SIGPIPE is swallowed; on
// SIGHUP, SIGINT or SIGTERM the program's exit function runs, the name is
// detached and the process exits with status 0.
func onSignal(sigs chan os.Signal, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case s := <-sigs:
			if s == syscall.SIGPIPE {
				continue
			}
			callMyExit()
			lib.detach()
			os.Exit(0)
		}
	}
}

//export gs_name_detach
func gs_name_detach() C.int { return lib.detach() }

//export gs_child_detach
func gs_child_detach() C.int {
	// Not in a forked child (capi.go answers those): this process owns
	// the name, so giving it up is detaching it.
	return lib.detach()
}

//export gs_at_exit
func gs_at_exit() {
	lib.mu.Lock()
	on := lib.ch != nil
	lib.mu.Unlock()
	if on {
		lib.detach()
	}
}

// detach answers every request held with a failure (C SIMPL error-replies
// them), closes the Channel (its FIFOs go, and senders waiting on it get
// ErrPeerGone) and frees what the name held.
func (l *library) detach() C.int {
	l.mu.Lock()
	ch := l.ch
	if ch == nil {
		l.mu.Unlock()
		return fail(codeNoNameAttached)
	}
	hs, free, in, name, bufs := l.active, l.free, l.in, l.name, l.bufs
	l.ch, l.active, l.free, l.in, l.name, l.conns, l.last, l.bufs = nil, nil, nil, nil, nil, nil, nil, nil
	l.byName, l.located = nil, nil
	// The program's own handling of SIGHUP, SIGINT and SIGTERM comes back
	// (the Go runtime reinstalls what was there); SIGPIPE stays swallowed,
	// as C SIMPL's handler stays.
	signal.Stop(l.sigs)
	signal.Ignore(syscall.SIGPIPE)
	handlersOn(false)
	close(l.stop)
	l.mu.Unlock()
	for _, h := range hs {
		h.msg.ReplyError()
		C.free(h.mem)
	}
	for _, h := range free {
		C.free(h.mem)
	}
	for _, b := range bufs {
		b.mu.Lock()
		b.release()
		b.dead = true
		b.mu.Unlock()
	}
	// Relays this process forwards (to a receiver reached through shared
	// memory, or of a request that came that way) end before the name
	// goes: a C SIMPL relayer may exit right after Relay, its relays being
	// handed over whole. Meanwhile new requests are refused.
	if in != nil {
		close(in.done)
	}
	ch.WaitRelays(context.Background())
	if in != nil {
		in.close(ch)
	} else {
		ch.Close() // a Receive waiting in it returns
	}
	C.free(unsafe.Pointer(name))
	l.sendMu.Lock()
	l.mu.Lock()
	if l.area != nil {
		C.free(l.area)
		l.area, l.areaRoom = nil, 0
	}
	l.mu.Unlock()
	l.sendMu.Unlock()
	return 0
}

//export gs_sur_detach
func gs_sur_detach(id C.int) C.int {
	if lib.attached() == nil {
		return -1
	}
	return 0 // no surrogates here: nothing to shut down
}

//export gs_name_locate
func gs_name_locate(cname *C.char) C.int {
	ch := lib.attached()
	if ch == nil {
		return -1
	}
	if cname == nil {
		return fail(codeNoName)
	}
	s := C.GoString(cname)
	n, err := naming.ParseC(s)
	if err != nil {
		switch {
		case strings.Count(s, ":") > 2 || s == "":
			return fail(codeNoName) // as C SIMPL reports its parser's errors
		case strings.HasSuffix(s, ":"):
			// An empty name after a host ("localhost:"): C SIMPL's
			// parser takes it, and name_locate fails "no simpl name has
			// been attached to this process" (network wire spec, 1).
			return fail(codeNoNameAttached)
		}
		return fail(codeFIFOGetFailure) // a name no FIFO can have
	}
	key := n.String()
	l := &lib
	if id, ok := l.relocate(ch, key); ok {
		return id
	}
	ctx, cancel := context.WithTimeout(context.Background(), locateTimeout)
	conn, err := ch.Locate(ctx, key)
	cancel()
	located0 := time.Now() // the receiver was alive, so started, by then
	switch {
	case errors.Is(err, simpl.ErrNotFound):
		return fail(codeFIFOGetFailure)
	case errors.Is(err, simpl.ErrClosed):
		return fail(codeNoNameAttached)
	case errors.Is(err, simpl.ErrNotSupported), errors.Is(err, simpl.ErrUnreachable):
		return fail(codeNoNamedProcess)
	case err != nil:
		return fail(codeFIFOOpenFailure)
	}
	l.mu.Lock()
	if l.ch != ch {
		l.mu.Unlock()
		conn.Close()
		return fail(codeNoNameAttached)
	}
	free := func() {}
	e := l.byName[key]
	switch {
	case e != nil && !e.gone:
		free = func() { conn.Close() } // another thread located it meanwhile: its connection
	case e != nil:
		free = l.dropLocked(e) // found gone meanwhile
		fallthrough
	default:
		e = &located{name: key, conn: conn, at: located0}
		l.byName[key] = e
	}
	id := l.newID(e)
	l.mu.Unlock()
	free()
	return id
}

// located is a name located, its connection and the ids on it.
type located struct {
	name string
	conn *simpl.Conn
	at   time.Time // when located, its receiver alive (naming.Alive)
	ids  []C.int
	gone bool // a call found the receiver gone (see markGone, relocate)

	// calls counts the calls under way on conn (hold, unhold). A dropped
	// entry's conn is closed once the last has ended, not under them: a
	// Send whose request a relayer handed over (through FIFOs) waits on
	// for the process holding it, though the receiver it located is gone.
	calls     atomic.Int32
	dropped   atomic.Bool
	closeOnce sync.Once
}

// hold is id's connection and entry, the entry's calls counted until
// unhold; nil if id is not located.
func (l *library) hold(id C.int) (*simpl.Conn, *located) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.located[id]
	if e == nil {
		return nil, nil
	}
	e.calls.Add(1)
	return e.conn, e
}

// unhold ends a call hold counted, closing the connection of an entry
// dropped meanwhile when it was the last.
func (e *located) unhold() {
	if e.calls.Add(-1) == 0 && e.dropped.Load() {
		e.close()
	}
}

func (e *located) close() { e.closeOnce.Do(func() { e.conn.Close() }) }

// newID is a new id on e's connection (called with l.mu held).
func (l *library) newID(e *located) C.int {
	for l.conns[l.nextID] != nil || l.nextID < 3 {
		if l.nextID == math.MaxInt32 {
			l.nextID = 3
		} else {
			l.nextID++
		}
	}
	id := l.nextID
	l.conns[id] = e.conn
	l.located[id] = e
	e.ids = append(e.ids, id)
	if id == math.MaxInt32 {
		l.nextID = 3 // not past it into negatives, which the loop would climb one by one
	} else {
		l.nextID++
	}
	return id
}

// relocate is name_locate of a name already located: a new id on its
// connection (ok) while its receiver lives. A connection whose process
// is gone (exited, a zombie, or its pid reused: naming.Alive; whatever
// call, if any, found it so: a Send, a Trigger, a relay) is dropped with
// its ids and their send areas (a Send on one then fails as on a closed
// descriptor; calls under way end first), and the name is to be located
// anew (not ok). One a call found gone whose process lives (a relayer
// whose relay failed says so too) is kept. Where the receiver's pid is
// not known, a call's finding decides.
func (l *library) relocate(ch *simpl.Channel, key string) (C.int, bool) {
	l.mu.Lock()
	e := l.byName[key]
	if l.ch != ch || e == nil {
		l.mu.Unlock()
		return 0, false
	}
	l.mu.Unlock()
	// /proc is read without the lock, which every call's id lookup takes.
	pid := e.conn.PID()
	alive := pid <= 0 || naming.Alive(pid, e.at)
	l.mu.Lock()
	if l.ch != ch || l.byName[key] != e {
		l.mu.Unlock()
		return 0, false // detached, or dropped and located anew meanwhile: look again
	}
	if pid > 0 {
		e.gone = !alive
	}
	if !e.gone {
		id := l.newID(e)
		l.mu.Unlock()
		return id, true
	}
	free := l.dropLocked(e)
	l.mu.Unlock()
	free()
	return 0, false
}

// dropLocked forgets e, its ids and their send areas (called with l.mu
// held); free, called without it, releases them.
func (l *library) dropLocked(e *located) (free func()) {
	e.dropped.Store(true)
	if l.byName[e.name] == e {
		delete(l.byName, e.name)
	}
	var bufs []*sendBuf
	for _, id := range e.ids {
		delete(l.conns, id)
		delete(l.located, id)
		if b := l.bufs[id]; b != nil {
			bufs = append(bufs, b)
			delete(l.bufs, id)
		}
	}
	return func() {
		for _, b := range bufs {
			if b.mu.TryLock() {
				b.release()
				b.dead = true
				b.mu.Unlock()
				continue
			}
			go func() { // once the buffer's Send under way has ended
				b.mu.Lock()
				b.release()
				b.dead = true
				b.mu.Unlock()
			}()
		}
		if e.calls.Load() == 0 {
			e.close() // else the last call's unhold does
		}
	}
}

// conn is the connection behind id, or nil.
func (l *library) conn(id C.int) *simpl.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[id]
}

// markGone records that e's receiver is gone (a call found it so).
func (l *library) markGone(e *located) {
	l.mu.Lock()
	e.gone = true
	l.mu.Unlock()
}

// growArea makes the send area hold at least n bytes, keeping its
// contents. Called with sendMu held.
func (l *library) growArea(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.area != nil && l.areaRoom >= n {
		return true
	}
	// Page-rounded, as C SIMPL's segment.
	room := (hdrSize+n+4095)&^4095 - hdrSize
	p := C.realloc(l.area, C.size_t(hdrSize+room))
	if p == nil {
		return false
	}
	if l.area == nil {
		clear(cbytes(p, hdrSize+room))
	}
	l.area, l.areaRoom = p, room
	return true
}

//export gs_Send
func gs_Send(pc *C.longlong, id C.int, out, in unsafe.Pointer, outBytes, inBytes C.uint) C.int {
	ch := lib.attached()
	if ch == nil {
		return -1
	}
	if id < 3 {
		return fail(codeSimplIDOutOfRange)
	}
	conn, e := lib.hold(id)
	if conn == nil {
		return fail(codeFIFOWriteFailure) // as a write to a closed fd
	}
	defer e.unhold()
	if outBytes > maxSize || inBytes > maxSize {
		return fail(codeCannotCreateShmem)
	}
	no, ni := int(outBytes), int(inBytes)
	keepP(pc) // before any lock: a yield holds nobody up
	l := &lib
	if out != nil && in != nil {
		// As in C SIMPL, whose segment every Send sizes: after a Send of
		// n bytes, whatsMyShmPtr() holds n. (The reply goes to in only.)
		l.sendMu.Lock()
		ok := l.growArea(max(no, ni))
		l.sendMu.Unlock()
		if !ok {
			return fail(codeCannotCreateShmem)
		}
	} else {
		l.sendMu.Lock()
		defer l.sendMu.Unlock()
		if out == nil && (l.area == nil || l.areaRoom < no) {
			// The message was to be in place already, and the area
			// cannot hold it.
			return fail(codeCannotAttachShmem)
		}
		if !l.growArea(max(no, ni)) {
			return fail(codeCannotCreateShmem)
		}
		data := unsafe.Add(l.area, hdrSize)
		if out == nil {
			out = data
		}
		if in == nil {
			in = data
		}
	}
	n, err := conn.Send(context.Background(), cbytes(out, no), cbytes(in, ni))
	if err != nil {
		if errors.Is(err, simpl.ErrClosed) {
			if lib.attached() != ch {
				return fail(codeNoNameAttached)
			}
			return fail(codeFIFOWriteFailure) // the id dropped meanwhile, by a name_locate
		}
		if errors.Is(err, simpl.ErrPeerGone) {
			lib.markGone(e)
		}
		// Rejected, reply too large, receiver gone or dead: C SIMPL's
		// one code for a failed exchange.
		return fail(codeCommunicationError)
	}
	return C.int(n)
}

//export gs_Receive
func gs_Receive(sender **C.char, in unsafe.Pointer, maxBytes C.uint) C.int {
	return receive(sender, in, maxBytes, false)
}

// receive is Receive and, placed, simplReceiveInPlace: the request is left
// where the transport holds it when that is shared memory (the sender's
// lane, which is also where the reply goes), else copied into the
// handle's data area, which then holds only the request.
func receive(sender **C.char, in unsafe.Pointer, maxBytes C.uint, placed bool) C.int {
	ch := lib.attached()
	if ch == nil {
		return -1
	}
	if sender == nil {
		return fail(codeFIFOReadFailure) // nowhere to put the handle: nothing taken
	}
	l := &lib
	l.mu.Lock()
	box := l.in
	l.mu.Unlock()
	var msg simpl.Message
	if box != nil {
		var ok bool
		if msg, ok = box.take(); !ok {
			return fail(codeFIFOReadFailure) // detached meanwhile
		}
	} else {
		// No descriptor was asked for: this thread waits in the
		// transport itself, and the sender's wake-up is its own (the
		// receive queue paces the thread's sleeps: package pace).
		var err error
		if msg, err = ch.Receive(context.Background()); err != nil {
			return fail(codeFIFOReadFailure) // detached meanwhile
		}
	}
	if p := msg.Proxy(); p > 0 {
		return C.int(int32(-(int64(p) + 1))) // PROXY_SHUTDOWN gives INT_MIN
	}
	data := msg.Data()
	nb := len(data)
	if in != nil && nb > int(maxBytes) {
		msg.ReplyError() // its sender gets COMMUNICATION_ERROR
		return fail(codeReceiveTooLarge)
	}
	yb := min(msg.MaxReply(), maxSize)
	room := max(nb, yb)
	var lane unsafe.Pointer
	if placed {
		room = nb
		// Through shared memory the request and the reply area are the
		// same memory, the lane (not Go's heap, so C may hold it);
		// through FIFOs the request is a copy in Go's heap, which C must
		// not keep, and goes into the handle.
		if buf := msg.ReplyBuffer(); nb > 0 && len(buf) > 0 && unsafe.SliceData(buf) == unsafe.SliceData(data) {
			lane, room = unsafe.Pointer(unsafe.SliceData(data)), 0
		}
	}
	need := hdrSize + room + 1
	l.mu.Lock()
	if l.ch != ch {
		l.mu.Unlock()
		refuse(msg)
		return fail(codeFIFOReadFailure) // detached meanwhile
	}
	h := l.handle(need)
	l.mu.Unlock()
	if h == nil {
		msg.ReplyError()
		return fail(codeCannotAttachShmem)
	}
	mem := h.mem
	b := cbytes(mem, need)
	clear(b[:hdrSize])
	whom, pid := msg.Sender()
	copy(b[:naming.MaxNameLen], whom)
	binary.NativeEndian.PutUint32(b[offPid:], uint32(pid))
	binary.NativeEndian.PutUint32(b[offShmsize:], uint32(room))
	binary.NativeEndian.PutUint32(b[offNbytes:], uint32(nb))
	binary.NativeEndian.PutUint32(b[offYbytes:], uint32(yb))
	h.msg, h.room, h.ybytes, h.placed, h.at = msg, room, yb, placed, time.Now()
	h.req, h.reqLen = unsafe.Add(mem, hdrSize), room
	if lane != nil {
		h.req, h.reqLen = lane, nb
		b[hdrSize] = 0
	} else {
		copy(b[hdrSize:], data)
		// The rest of the room, up to the largest reply, holds what the
		// memory held before (a recycled handle: another sender's
		// request or reply): a Reply(sender, NULL, n) of more than the
		// receiver wrote in place would send it on. In C SIMPL those
		// bytes are the sender's own segment.
		clear(b[hdrSize+nb : hdrSize+room])
		b[hdrSize+nb] = 0
	}
	if in != nil {
		copy(cbytes(in, nb), data)
	}
	l.mu.Lock()
	if l.ch != ch {
		l.mu.Unlock()
		msg.ReplyError()
		C.free(mem)
		return fail(codeFIFOReadFailure)
	}
	l.active = append(l.active, h)
	l.last = h
	l.mu.Unlock()
	*sender = (*C.char)(mem)
	return C.int(nb)
}

// handle is a held with at least need bytes of C memory, from the free
// list when one there is large enough, else new; nil if malloc fails.
// Called with l.mu held. The held is not yet in l.active.
func (l *library) handle(need int) *held {
	for i := len(l.free) - 1; i >= 0; i-- {
		if h := l.free[i]; h.memCap >= need {
			l.free[i] = l.free[len(l.free)-1]
			l.free[len(l.free)-1] = nil
			l.free = l.free[:len(l.free)-1]
			return h
		}
	}
	// Page-rounded, so that a message a little larger than the last
	// finds the memory already large enough.
	size := (need + 4095) &^ 4095
	mem := C.malloc(C.size_t(size))
	if mem == nil {
		return nil
	}
	return &held{mem: mem, memCap: size}
}

// recycle keeps h's memory for a later Receive, or frees it. Called with
// l.mu held, h out of l.active.
func (l *library) recycle(h *held) {
	h.msg, h.req, h.reqLen = simpl.Message{}, nil, 0
	if l.ch == nil || h.memCap > keepBytes || len(l.free) >= keepFree {
		C.free(h.mem)
		return
	}
	l.free = append(l.free, h)
}

// senderGone reports whether the sending process has exited, as far as
// the kernel can say without reading /proc: kill(pid, 0) failing with
// ESRCH (one system call). Through FIFOs the transport itself fails a
// Reply to a sender gone (its reply FIFO has no reader); through shared
// memory it learns of the death when the lane's socket closes, which a
// Reply made just after the death can beat: this check closes that gap
// for a sender that has exited and been reaped. A zombie, or a pid
// reused by another process, passes it; the transport then tells (the
// reply fails), or the reply goes to a lane nobody reads, which harms
// nobody. Only a local sender the kernel vouches for (Cred) is checked.
//
// Only a request held checkAfter or more is checked: the system call
// (and Cred) cost about 0.9 µs a round trip on the 2-core VM of
// docs/benchmarks.md, most of the C API's own cost, for the request
// answered at once, the usual case. A sender that dies less than
// checkAfter before such a prompt Reply, and before its lane's socket
// has told the transport, may see the Reply reported done: the same
// race as a sender that dies just after a Reply, which no check can
// close.
func (h *held) senderGone() bool {
	if time.Since(h.at) < checkAfter {
		return false
	}
	c, ok := h.msg.Cred()
	if !ok || c.PID <= 0 || c.Host != "" {
		return false
	}
	return errors.Is(syscall.Kill(c.PID, 0), syscall.ESRCH)
}

// find is the index in l.active of the request behind sender, or -1.
// Called with l.mu held.
func (l *library) find(sender *C.char) int {
	p := unsafe.Pointer(sender)
	for i, h := range l.active {
		if h.mem == p {
			return i
		}
	}
	return -1
}

// remove takes l.active[i] out. Called with l.mu held.
func (l *library) remove(i int) *held {
	h := l.active[i]
	last := len(l.active) - 1
	l.active[i] = l.active[last]
	l.active[last] = nil
	l.active = l.active[:last]
	if l.last == h {
		l.last = nil
	}
	return h
}

// take removes the request behind sender from the active requests; nil
// if sender is not one. The caller answers it, then gives it to done.
func (l *library) take(sender *C.char) *held {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := l.find(sender); i >= 0 {
		return l.remove(i)
	}
	return nil
}

// done recycles an answered request's handle.
func (l *library) done(h *held) {
	l.mu.Lock()
	l.recycle(h)
	l.mu.Unlock()
}

// lookup is the request behind sender, left active; nil if sender is not
// one.
func (l *library) lookup(sender *C.char) *held {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := l.find(sender); i >= 0 {
		return l.active[i]
	}
	return nil
}

//export gs_Reply
func gs_Reply(sender *C.char, out unsafe.Pointer, nbytes C.uint) C.int {
	if lib.attached() == nil {
		return -1
	}
	h := lib.take(sender)
	if h == nil {
		// Not a request this process holds: C SIMPL would fail to open
		// the reply FIFO of whatever the pointer names.
		return fail(codeFIFOOpenFailure)
	}
	defer lib.done(h)
	if h.senderGone() {
		h.msg.ReplyError() // frees what the request holds; nobody to tell
		return fail(codeFIFOOpenFailure)
	}
	if nbytes > C.uint(h.ybytes) {
		h.msg.ReplyError() // its sender gets COMMUNICATION_ERROR
		return fail(codeReplyTooLarge)
	}
	n := int(nbytes)
	var err error
	switch {
	case out != nil:
		err = h.msg.Reply(cbytes(out, n))
	case h.placed:
		err = h.msg.ReplyInPlace(n) // written at simplReplyPtr
	default:
		err = h.msg.Reply(cbytes(unsafe.Add(h.mem, hdrSize), n)) // out NULL: the reply is in place
	}
	if err != nil {
		if errors.Is(err, simpl.ErrPeerGone) {
			return fail(codeFIFOOpenFailure) // as C SIMPL for a sender gone
		}
		return fail(codeFIFOWriteFailure)
	}
	return C.int(n)
}

//export gs_ReplyError
func gs_ReplyError(sender *C.char) C.int {
	if lib.attached() == nil {
		return -1
	}
	h := lib.take(sender)
	if h == nil {
		return fail(codeFIFOOpenFailure)
	}
	defer lib.done(h)
	if h.senderGone() {
		h.msg.ReplyError()
		return fail(codeFIFOOpenFailure)
	}
	if err := h.msg.ReplyError(); err != nil {
		if errors.Is(err, simpl.ErrPeerGone) {
			return fail(codeFIFOOpenFailure)
		}
		return fail(codeFIFOWriteFailure)
	}
	return 0
}

//export gs_Relay
func gs_Relay(sender *C.char, id C.int) C.int {
	l := &lib
	l.mu.Lock()
	var h *held
	if i := l.find(sender); i >= 0 {
		h = l.active[i]
	} else {
		h = l.last // C SIMPL relays the last request received
	}
	e := l.located[id]
	if h != nil && e != nil {
		for i, a := range l.active {
			if a == h {
				l.remove(i)
				break
			}
		}
		e.calls.Add(1)
	}
	l.mu.Unlock()
	if h == nil || e == nil {
		return fail(codeFIFOWriteFailure)
	}
	defer e.unhold()
	if err := h.msg.Relay(e.conn); err != nil {
		if errors.Is(err, simpl.ErrPeerGone) {
			lib.markGone(e)
		}
		// Still the relayer's to answer.
		l.mu.Lock()
		if l.ch != nil {
			l.active = append(l.active, h)
			h = nil
		}
		l.mu.Unlock()
		if h != nil {
			h.msg.ReplyError()
			C.free(h.mem)
		}
		return fail(codeFIFOWriteFailure)
	}
	l.done(h)
	return 0
}

//export gs_Trigger
func gs_Trigger(pc *C.longlong, id C.int, proxy C.int) C.int {
	if lib.attached() == nil {
		return -1
	}
	if proxy < 1 {
		return fail(codeImproperProxy)
	}
	conn, e := lib.hold(id)
	if conn == nil {
		return fail(codeFIFOWriteFailure)
	}
	defer e.unhold()
	keepP(pc)
	if err := conn.Trigger(int(proxy)); err != nil {
		if errors.Is(err, simpl.ErrPeerGone) {
			lib.markGone(e)
		}
		return fail(codeFIFOWriteFailure)
	}
	return 0
}

//export gs_whatsMyName
func gs_whatsMyName() *C.char {
	l := &lib
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		setErr(codeNoNameAttached)
		return nil
	}
	return l.name
}

//export gs_whatsMyRecvfd
func gs_whatsMyRecvfd() C.int {
	l := &lib
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		return fail(codeNoNameAttached)
	}
	if l.in == nil {
		// From now on a goroutine receives one message ahead, so that
		// the descriptor is readable while one waits (a Receive already
		// waiting in the transport still takes the next itself).
		in, err := startInbox(l.ch)
		if err != nil {
			return fail(codeFIFOOpenFailure)
		}
		l.in = in
	}
	return C.int(l.in.fd)
}

//export gs_whatsMyReplyfd
func gs_whatsMyReplyfd() C.int {
	if lib.attached() == nil {
		return -1
	}
	// Replies are taken by the library, on whichever transport they
	// come: there is no reply FIFO a program could read.
	return fail(codeFIFOOpenFailure)
}

//export gs_whatsMyShmPtr
func gs_whatsMyShmPtr() *C.char {
	if lib.attached() == nil {
		return nil
	}
	l := &lib
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if !l.growArea(1) {
		setErr(codeCannotCreateShmem)
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return (*C.char)(unsafe.Add(l.area, hdrSize))
}

//export gs_whatsThisShmPtr
func gs_whatsThisShmPtr(sender *C.char) *C.char {
	h := lib.lookup(sender)
	if h == nil {
		setErr(codeFIFOOpenFailure)
		return nil
	}
	return (*C.char)(h.req)
}

//export gs_simplRcopy
func gs_simplRcopy(sender *C.char, dst unsafe.Pointer, n C.uint) {
	h := lib.lookup(sender)
	switch {
	case h == nil:
		setErr(codeFIFOOpenFailure)
	case n > C.uint(h.reqLen):
		setErr(codeReceiveTooLarge) // more than the message area holds
	case dst == nil && n > 0:
		setErr(codeReceiveTooLarge)
	default:
		copy(cbytes(dst, int(n)), cbytes(h.req, int(n)))
	}
}

//export gs_simplScopy
func gs_simplScopy(dst unsafe.Pointer, n C.uint) {
	l := &lib
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.area == nil || n > C.uint(l.areaRoom):
		setErr(codeCannotAttachShmem) // no area that large
	case dst == nil && n > 0:
		setErr(codeReplyTooLarge)
	default:
		copy(cbytes(dst, int(n)), cbytes(unsafe.Add(l.area, hdrSize), int(n)))
	}
}

//export gs_simplReplySize
func gs_simplReplySize(sender *C.char) C.int {
	h := lib.lookup(sender)
	if h == nil {
		return fail(codeFIFOOpenFailure)
	}
	return C.int(h.ybytes)
}

// setRec fills a SIMPL_REC.
func setRec(rec *C.SIMPL_REC, name string, pid int) {
	b := cbytes(unsafe.Pointer(rec), int(unsafe.Sizeof(*rec)))
	clear(b[:naming.MaxNameLen+1])
	copy(b[:naming.MaxNameLen], name)
	rec.pid = C.pid_t(pid)
}

//export gs_simplSetSenderParms
func gs_simplSetSenderParms(sender *C.char, rec *C.SIMPL_REC) {
	h := lib.lookup(sender)
	if h == nil || rec == nil {
		setErr(codeFIFOOpenFailure)
		return
	}
	name, pid := h.msg.Sender()
	setRec(rec, name, pid)
}

//export gs_simplSetReceiverParms
func gs_simplSetReceiverParms(cname *C.char, rec *C.SIMPL_REC) C.int {
	if cname == nil || rec == nil {
		return fail(codeNoName)
	}
	name := C.GoString(cname)
	reg, err := naming.Open("")
	if err != nil {
		return fail(codeNoFIFOPath)
	}
	ent, err := reg.Lookup(name)
	if err != nil {
		return fail(codeFIFOGetFailure)
	}
	setRec(rec, ent.Name, ent.PID)
	return 0
}

//export gs_simplCheckProcess
func gs_simplCheckProcess(rec *C.SIMPL_REC) C.int {
	if rec == nil {
		return fail(codeNoName)
	}
	// whom is a fixed array the program filled: read no further than it,
	// NUL-terminated or not.
	name := cString(unsafe.Pointer(&rec.whom[0]), len(rec.whom))
	reg, err := naming.Open("")
	if err != nil {
		return fail(codeNoFIFOPath)
	}
	ents, _ := reg.Entries(name)
	for _, e := range ents {
		if e.PID == int(rec.pid) && e.Alive {
			return 0
		}
	}
	reg.Reap(name) // the dead owner's FIFOs, as C SIMPL deletes them
	return -1
}

// inbox receives for the C program, one message ahead, so that a
// descriptor (whatsMyRecvfd) becomes readable when one is waiting: the
// message is offered, then a byte goes into a pipe for it, and Receive
// takes the message and the byte out. It costs each message a goroutine
// hand-off and two system calls, so it starts only when a program first
// asks for the descriptor; until then Receive waits in the transport
// itself. Safe for concurrent use.
type inbox struct {
	r, w  *os.File
	fd    int
	c     chan simpl.Message // the message offered: one at most
	taken chan struct{}      // a token when take took the one offered
	done  chan struct{}
	wg    sync.WaitGroup
}

func startInbox(ch *simpl.Channel) (*inbox, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	in := &inbox{r: r, w: w, fd: int(r.Fd()), c: make(chan simpl.Message, 1), taken: make(chan struct{}, 1), done: make(chan struct{})}
	in.wg.Add(1)
	go in.run(ch)
	return in, nil
}

func (in *inbox) run(ch *simpl.Channel) {
	defer in.wg.Done()
	for {
		msg, err := ch.Receive(context.Background())
		if err != nil {
			return // the Channel closed
		}
		select {
		case <-in.done:
			refuse(msg) // detaching
			continue
		default:
		}
		// The message is there before its byte: a thread the byte wakes
		// (select on the descriptor, then Receive) finds it at once and
		// never waits on this goroutine, which would cost its thread a
		// hand-off to another and back (it is locked: a C thread).
		in.c <- msg // room: the last one offered was taken
		if _, err := in.w.Write(doorbell[:]); err != nil {
			in.withdraw()
			continue
		}
		select {
		case <-in.taken:
		case <-in.done:
			in.withdraw()
		}
	}
}

// withdraw refuses the message offered, unless take took it meanwhile.
func (in *inbox) withdraw() {
	select {
	case msg := <-in.c:
		refuse(msg)
	default:
	}
}

// doorbell is the byte written for each message: one array for all,
// read only, so that the write allocates nothing.
var doorbell = [1]byte{1}

// refuse answers a request nobody will receive with a failure.
func refuse(msg simpl.Message) {
	if msg.Proxy() == 0 {
		msg.ReplyError()
	}
}

// take waits for the next message; false once the inbox is closed.
func (in *inbox) take() (simpl.Message, bool) {
	select {
	case msg := <-in.c:
		// The byte is written after the offer: it may be on its way.
		var b [1]byte
		in.r.Read(b[:])
		in.taken <- struct{}{} // room: one token for each offer
		return msg, true
	case <-in.done:
		return simpl.Message{}, false
	}
}

// close closes ch, whose closing ends the goroutine's Receive, once
// in.done is closed.
func (in *inbox) close(ch *simpl.Channel) {
	ch.Close()
	in.wg.Wait()
	in.r.Close()
	in.w.Close()
}
