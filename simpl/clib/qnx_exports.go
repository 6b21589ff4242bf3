//go:build cgo

package main

// The Go half of QNX Neutrino's C API (<sys/neutrino.h>,
// <sys/dispatch.h>): each gsq_ function is one QNX call made through
// package simpl/qnx. The C half (qnx_capi.go) has the public names: it
// checks what needs C's view of its arguments, calls in here, and sets
// the calling thread's errno from *err, which these set to an errno
// number (Linux's, for QNX's name) or leave 0. Keeping errno in C means
// no Go code runs between setting it and the program reading it.

/*
#include <stdint.h>
#include <sys/uio.h>
*/
import "C"

import (
	"context"
	"errors"
	"math"
	"syscall"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// shutdownTimeout bounds the exit handler's wait for pulses and
// disconnects still going out.
const shutdownTimeout = 5 * time.Second

// infoWords is the number of int32 words gsq_ functions fill for a
// struct _msg_info, in its field order (nd .. flags; reserved is C's).
const infoWords = 12

// qfail stores err's errno in *p (EINVAL for an error that is not one).
func qfail(p *C.int, err error) {
	var e syscall.Errno
	if !errors.As(err, &e) {
		e = syscall.EINVAL
	}
	*p = C.int(e)
}

// byteSlice is C memory [p, p+n) as a slice, ok false for a negative
// size or a NULL pointer with a size: a fault, in QNX's terms.
func byteSlice(p unsafe.Pointer, n C.int) ([]byte, bool) {
	switch {
	case n < 0:
		return nil, false
	case n == 0:
		return nil, true
	case p == nil:
		return nil, false
	}
	return unsafe.Slice((*byte)(p), int(n)), true
}

// iovSlices is an iov_t array as slices; ok false as for byteSlice, for
// the array or any part, or when the parts add up past an int's range.
func iovSlices(iov *C.struct_iovec, parts C.int) ([][]byte, bool) {
	if parts < 0 || (iov == nil && parts > 0) || parts > 1<<20 {
		return nil, false
	}
	if parts == 0 {
		return nil, true
	}
	out := make([][]byte, parts)
	total := 0
	for i, v := range unsafe.Slice(iov, int(parts)) {
		if uint64(v.iov_len) > math.MaxInt32 || total+int(v.iov_len) > math.MaxInt32 {
			return nil, false
		}
		b, ok := byteSlice(v.iov_base, C.int(v.iov_len))
		if !ok {
			return nil, false
		}
		out[i] = b
		total += len(b)
	}
	return out, true
}

func putInfo(out *C.int32_t, mi *qnx.MessageInfo) {
	if out == nil {
		return
	}
	w := unsafe.Slice(out, infoWords)
	for i, v := range []int{mi.Nd, mi.Srcnd, mi.Pid, mi.Tid, mi.Chid, mi.Scoid, mi.Coid,
		mi.Msglen, mi.Srcmsglen, mi.Dstmsglen, mi.Priority, mi.Flags} {
		w[i] = C.int32_t(v)
	}
}

//export gsq_ChannelCreate
func gsq_ChannelCreate(flags C.uint, err *C.int) C.int {
	chid, e := qnx.ChannelCreate(int(flags))
	if e != nil {
		qfail(err, e)
	}
	return C.int(chid)
}

//export gsq_ChannelDestroy
func gsq_ChannelDestroy(chid C.int, err *C.int) C.int {
	if e := qnx.ChannelDestroy(int(chid)); e != nil {
		qfail(err, e)
	}
	return 0
}

//export gsq_ConnectAttach
func gsq_ConnectAttach(nd C.uint32_t, pid, chid C.int, index C.uint, flags C.int, err *C.int) C.int {
	coid, e := qnx.ConnectAttach(int(nd), int(pid), int(chid), int(index), int(flags))
	if e != nil {
		qfail(err, e)
	}
	return C.int(coid)
}

//export gsq_ConnectDetach
func gsq_ConnectDetach(coid C.int, err *C.int) C.int {
	if e := qnx.ConnectDetach(int(coid)); e != nil {
		qfail(err, e)
	}
	return 0
}

// disarmTimeout disarms the calling thread's TimerTimeout, for a
// MsgSend* or MsgReceive* that fails before reaching package qnx
// (EFAULT): the call ends, and QNX clears the timeout with it.
func disarmTimeout() { qnx.TimerTimeout(qnx.CLOCK_REALTIME, 0, nil, nil, nil) }

//export gsq_MsgSendv
func gsq_MsgSendv(pc *C.longlong, coid C.int, siov *C.struct_iovec, sparts C.int, riov *C.struct_iovec, rparts C.int, err *C.int) C.int {
	s, ok1 := iovSlices(siov, sparts)
	r, ok2 := iovSlices(riov, rparts)
	if !ok1 || !ok2 {
		disarmTimeout()
		*err = C.int(qnx.EFAULT)
		return -1
	}
	keepP(pc)
	var status int
	var e error
	if len(s) <= 1 && len(r) <= 1 {
		// One part each way (MsgSend): no gathering copy.
		var sb, rb []byte
		if len(s) == 1 {
			sb = s[0]
		}
		if len(r) == 1 {
			rb = r[0]
		}
		status, e = qnx.MsgSend(context.Background(), int(coid), sb, rb)
	} else {
		status, e = qnx.MsgSendv(context.Background(), int(coid), s, r)
	}
	if e != nil {
		qfail(err, e)
		return -1
	}
	return C.int(status)
}

//export gsq_MsgSendPulse
func gsq_MsgSendPulse(pc *C.longlong, coid, priority, code, value C.int, err *C.int) C.int {
	keepP(pc)
	if e := qnx.MsgSendPulse(int(coid), int(priority), int(code), int(value)); e != nil {
		qfail(err, e)
	}
	return 0
}

//export gsq_MsgReceivev
func gsq_MsgReceivev(chid C.int, riov *C.struct_iovec, rparts C.int, info *C.int32_t, err *C.int) C.int {
	r, ok := iovSlices(riov, rparts)
	if !ok {
		disarmTimeout()
		*err = C.int(qnx.EFAULT)
		return -1
	}
	var mi qnx.MessageInfo
	var rcvid int
	var e error
	switch len(r) {
	case 0:
		rcvid, e = qnx.MsgReceive(context.Background(), int(chid), nil, &mi)
	case 1:
		rcvid, e = qnx.MsgReceive(context.Background(), int(chid), r[0], &mi)
	default:
		rcvid, e = qnx.MsgReceivev(context.Background(), int(chid), r, &mi)
	}
	if e != nil {
		qfail(err, e)
		return -1
	}
	if rcvid > 0 {
		putInfo(info, &mi)
	}
	return C.int(rcvid)
}

//export gsq_MsgReceivePulsev
func gsq_MsgReceivePulsev(chid C.int, riov *C.struct_iovec, rparts C.int, err *C.int) C.int {
	r, ok := iovSlices(riov, rparts)
	if !ok {
		disarmTimeout()
		*err = C.int(qnx.EFAULT)
		return -1
	}
	var e error
	switch len(r) {
	case 0:
		_, e = qnx.MsgReceivePulse(context.Background(), int(chid), nil)
	case 1:
		_, e = qnx.MsgReceivePulse(context.Background(), int(chid), r[0])
	default:
		_, e = qnx.MsgReceivePulsev(context.Background(), int(chid), r)
	}
	if e != nil {
		qfail(err, e)
		return -1
	}
	return 0
}

// replierFault answers rcvid with ESRVRFAULT, as QNX's kernel does when
// the replier's own buffer faults, and returns the errno for the replier:
// ESRVRFAULT, or ESRCH when rcvid names no waiting client.
func replierFault(rcvid C.int) C.int {
	if e := qnx.MsgError(int(rcvid), int(qnx.ESRVRFAULT)); e != nil {
		return C.int(qnx.ESRCH)
	}
	return C.int(qnx.ESRVRFAULT)
}

//export gsq_MsgReplyv
func gsq_MsgReplyv(rcvid, status C.int, iov *C.struct_iovec, parts C.int, err *C.int) C.int {
	b, ok := iovSlices(iov, parts)
	if !ok {
		*err = replierFault(rcvid)
		return -1
	}
	var e error
	switch len(b) {
	case 0:
		e = qnx.MsgReply(int(rcvid), int(status), nil)
	case 1:
		e = qnx.MsgReply(int(rcvid), int(status), b[0])
	default:
		e = qnx.MsgReplyv(int(rcvid), int(status), b)
	}
	if e != nil {
		qfail(err, e)
	}
	return 0
}

//export gsq_MsgError
func gsq_MsgError(rcvid, errno C.int, err *C.int) C.int {
	if e := qnx.MsgError(int(rcvid), int(errno)); e != nil {
		qfail(err, e)
	}
	return 0
}

//export gsq_MsgReadv
func gsq_MsgReadv(rcvid C.int, iov *C.struct_iovec, parts, offset C.int, err *C.int) C.int {
	b, ok := iovSlices(iov, parts)
	if !ok {
		*err = C.int(qnx.ESRVRFAULT)
		return -1
	}
	n, e := qnx.MsgReadv(int(rcvid), b, int(offset))
	if e != nil {
		qfail(err, e)
		return -1
	}
	return C.int(n)
}

//export gsq_MsgWritev
func gsq_MsgWritev(rcvid C.int, iov *C.struct_iovec, parts, offset C.int, err *C.int) C.int {
	b, ok := iovSlices(iov, parts)
	if !ok {
		*err = C.int(qnx.ESRVRFAULT)
		return -1
	}
	var n int
	var e error
	if len(b) == 1 {
		n, e = qnx.MsgWrite(int(rcvid), b[0], int(offset))
	} else {
		n, e = qnx.MsgWritev(int(rcvid), b, int(offset))
	}
	if e != nil {
		qfail(err, e)
		return -1
	}
	return C.int(n)
}

//export gsq_MsgInfo
func gsq_MsgInfo(rcvid C.int, info *C.int32_t, err *C.int) C.int {
	if info == nil {
		*err = C.int(qnx.EFAULT)
		return -1
	}
	var mi qnx.MessageInfo
	if e := qnx.MsgInfo(int(rcvid), &mi); e != nil {
		qfail(err, e)
		return -1
	}
	putInfo(info, &mi)
	return 0
}

//export gsq_MsgDeliverEvent
func gsq_MsgDeliverEvent(rcvid, notify, coid, priority, code, value C.int, err *C.int) C.int {
	ev := qnx.SigEvent{Notify: int(notify), Coid: int(coid), Priority: int(priority), Code: int(code), Value: int(value)}
	if e := qnx.MsgDeliverEvent(int(rcvid), &ev); e != nil {
		qfail(err, e)
		return -1
	}
	return 0
}

// gsq_TimerTimeout arms the calling thread's timeout. notify is the
// sigevent's kind, or -1 for none; ntime NULL expires at once. The
// thread is this C thread: a cgo call runs on its caller's thread, so
// package qnx keys the timeout by this thread's id and finds it again in
// the same thread's next MsgSend or MsgReceive.
//
//export gsq_TimerTimeout
func gsq_TimerTimeout(clock, flags, notify C.int, ntime *C.uint64_t, err *C.int) C.int {
	var ev *qnx.SigEvent
	if notify >= 0 {
		ev = &qnx.SigEvent{Notify: int(notify)}
	}
	var nt *uint64
	if ntime != nil {
		v := uint64(*ntime)
		nt = &v
	}
	prev, e := qnx.TimerTimeout(int(clock), int(uint32(flags)), ev, nt, nil)
	if e != nil {
		qfail(err, e)
		return -1
	}
	return C.int(prev)
}

//export gsq_name_attach
func gsq_name_attach(path *C.char, flags C.uint, err *C.int) C.int {
	if path == nil {
		*err = C.int(qnx.EINVAL)
		return -1
	}
	a, e := qnx.NameAttach(C.GoString(path), int(flags))
	if e != nil {
		qfail(err, e)
		return -1
	}
	names.Lock()
	names.attached[a.Chid] = a
	names.Unlock()
	return C.int(a.Chid)
}

//export gsq_name_detach
func gsq_name_detach(chid C.int, flags C.uint, err *C.int) C.int {
	names.Lock()
	a := names.attached[int(chid)]
	delete(names.attached, int(chid))
	names.Unlock()
	if a == nil {
		*err = C.int(qnx.EINVAL)
		return -1
	}
	if e := qnx.NameDetach(a, int(flags)); e != nil {
		qfail(err, e)
		return -1
	}
	return 0
}

//export gsq_name_open
func gsq_name_open(name *C.char, flags C.int, err *C.int) C.int {
	if name == nil {
		*err = C.int(qnx.EINVAL)
		return -1
	}
	coid, e := qnx.NameOpen(context.Background(), C.GoString(name), int(flags))
	if e != nil {
		qfail(err, e)
		return -1
	}
	return C.int(coid)
}

// gsq_shutdown is the exit handler the C half registers at the first
// QNX call: it sends what is still going out and removes the process's
// channels (their names), as QNX's kernel does at exit.
//
//export gsq_shutdown
func gsq_shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	qnx.Shutdown(ctx)
}
