//go:build cgo

package main

/*
#include <stdlib.h>
*/
import "C"

import (
	"context"
	"errors"
	"sync"
	"unsafe"

	"github.com/gosimpl/gosimpl/simpl"
)

// gosimpl's extension for large data without copies (include/simplBuffer.h).

// sendBuf is simplBufferGet's area for Sends to one id: a simpl.Buffer
// (the sender's lane) when the receiver is reached through shared memory,
// else C memory that a copying Send uses. mu is held by each call on it,
// so threads calling for one id take turns.
type sendBuf struct {
	mu   sync.Mutex
	conn *simpl.Conn
	zb   *simpl.Buffer  // shared memory: the lane
	cmem unsafe.Pointer // otherwise: C memory
	ptr  unsafe.Pointer // what simplBufferGet returned: zb's bytes or cmem
	size int
	dead bool // name_detach released it: no more use
}

// release frees the area. Called with b.mu held.
func (b *sendBuf) release() {
	if b.zb != nil {
		b.zb.Close()
	}
	if b.cmem != nil {
		C.free(b.cmem)
	}
	b.zb, b.cmem, b.ptr, b.size = nil, nil, nil, 0
}

// buf is id's area, made (empty) if create and id is located; nil after
// setting the error otherwise.
func (l *library) buf(id C.int, create bool) *sendBuf {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		setErr(codeNoNameAttached)
		return nil
	}
	b := l.bufs[id]
	conn := l.conns[id]
	switch {
	case id < 3:
		setErr(codeSimplIDOutOfRange)
		return nil
	case conn == nil:
		setErr(codeFIFOWriteFailure) // as a Send to a closed fd
		return nil
	case b == nil && !create:
		setErr(codeCannotAttachShmem) // no area to send from
		return nil
	case b == nil:
		b = &sendBuf{conn: conn}
		l.bufs[id] = b
	}
	return b
}

//export gs_simplBufferGet
func gs_simplBufferGet(id C.int, size C.uint) *C.char {
	if size > maxSize {
		setErr(codeCannotCreateShmem)
		return nil
	}
	b := lib.buf(id, true)
	if b == nil {
		return nil
	}
	// Counted as a call on the connection, as a Send is: a name_locate
	// that drops it meanwhile leaves it open until this ends.
	_, e := lib.hold(id)
	if e == nil {
		setErr(codeFIFOWriteFailure) // dropped meanwhile, as a Send to a closed fd
		return nil
	}
	defer e.unhold()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead {
		setErr(codeNoNameAttached)
		return nil
	}
	n := int(size)
	if b.ptr != nil && b.size >= n {
		return (*C.char)(b.ptr)
	}
	b.release()
	// At least one byte, so that the area has an address.
	room := max(n, 1)
	if b.conn.Transport() == simpl.SHM {
		ctx, cancel := context.WithTimeout(context.Background(), locateTimeout)
		zb, err := b.conn.Buffer(ctx, room)
		cancel()
		if err != nil {
			setErr(codeCannotCreateShmem)
			return nil
		}
		b.zb, b.ptr = zb, unsafe.Pointer(unsafe.SliceData(zb.Bytes()))
	} else {
		b.cmem = C.malloc(C.size_t(room))
		if b.cmem == nil {
			setErr(codeCannotCreateShmem)
			return nil
		}
		b.ptr = b.cmem
	}
	b.size = room
	return (*C.char)(b.ptr)
}

//export gs_simplBufferSend
func gs_simplBufferSend(pc *C.longlong, id C.int, outBytes, inBytes C.uint) C.int {
	b := lib.buf(id, false)
	if b == nil {
		return -1
	}
	_, e := lib.hold(id)
	if e == nil {
		return fail(codeFIFOWriteFailure) // dropped meanwhile
	}
	defer e.unhold()
	keepP(pc) // before the lock: a yield holds nobody up
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.dead:
		return fail(codeNoNameAttached)
	case b.ptr == nil || outBytes > C.uint(b.size) || inBytes > C.uint(b.size):
		return fail(codeCannotAttachShmem) // the area cannot hold it
	}
	no, ni := int(outBytes), int(inBytes)
	var n int
	var err error
	if b.zb != nil {
		var reply []byte
		reply, err = b.zb.Send(context.Background(), no, ni)
		n = len(reply) // in place: at b.ptr
	} else {
		n, err = b.conn.Send(context.Background(), cbytes(b.ptr, no), cbytes(b.ptr, ni))
	}
	if err != nil {
		if errors.Is(err, simpl.ErrClosed) {
			return fail(codeNoNameAttached)
		}
		if errors.Is(err, simpl.ErrPeerGone) {
			lib.markGone(e)
		}
		return fail(codeCommunicationError) // as Send
	}
	return C.int(n)
}

//export gs_simplBufferFree
func gs_simplBufferFree(id C.int) C.int {
	b := lib.buf(id, false)
	if b == nil {
		return -1
	}
	lib.mu.Lock()
	if lib.bufs[id] == b {
		delete(lib.bufs, id)
	}
	lib.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.release()
	b.dead = true
	return 0
}

//export gs_simplReceiveInPlace
func gs_simplReceiveInPlace(sender **C.char) C.int {
	return receive(sender, nil, 0, true)
}

//export gs_simplReplyPtr
func gs_simplReplyPtr(sender *C.char) *C.char {
	h := lib.lookup(sender)
	if h == nil {
		setErr(codeFIFOOpenFailure)
		return nil
	}
	if !h.placed {
		// Where Reply(sender, NULL, n) takes the reply from.
		return (*C.char)(unsafe.Add(h.mem, hdrSize))
	}
	// The transport's reply area: the lane (shared memory) or the
	// sender's segment (FIFOs), never Go's heap.
	buf := h.msg.ReplyBuffer()
	if len(buf) == 0 {
		return (*C.char)(unsafe.Add(h.mem, hdrSize)) // room for no reply
	}
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(buf)))
}
