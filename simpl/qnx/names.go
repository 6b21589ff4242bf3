package qnx

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// NameAttachT is QNX's name_attach_t: Chid is the channel to receive on.
type NameAttachT struct {
	Chid int
	name string
}

// NameAttach registers name and creates its channel, flagged
// NTO_CHF_DISCONNECT | NTO_CHF_UNBLOCK as QNX's name_attach does (with
// no dispatch handle): the server handles those pulses and the
// IO_CONNECT message each NameOpen sends. The QNX name is the simpl name
// itself, so simpl's rules apply: 1 to 31 bytes, no '/', ':' or '#'.
// Errors: EINVAL (empty, leading '/', a ".." component or a name simpl
// refuses), EBUSY (a live process holds the name), ENOTSUP
// (NAME_FLAG_ATTACH_GLOBAL).
// The channel is not reachable through ConnectAttach(pid, chid).
func NameAttach(name string, flags int) (*NameAttachT, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if flags&NAME_FLAG_ATTACH_GLOBAL != 0 {
		return nil, ENOTSUP
	}
	if flags&^NAME_FLAG_ATTACH_GLOBAL != 0 || badName(name) {
		return nil, EINVAL
	}
	chid, err := channelCreate(NTO_CHF_DISCONNECT|NTO_CHF_UNBLOCK, name)
	if err != nil {
		return nil, err
	}
	return &NameAttachT{Chid: chid, name: name}, nil
}

// badName is what QNX's name_attach and name_open refuse: an empty name,
// a leading '/', or a ".." path component ("a..b" is a good name).
func badName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") {
		return true
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// NameDetach removes the name and destroys its channel; EINVAL for a nil
// or already detached attach.
func NameDetach(attach *NameAttachT, flags int) error {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if attach == nil || attach.Chid <= 0 {
		return EINVAL
	}
	err := ChannelDestroy(attach.Chid)
	attach.Chid = -1
	return err
}

// NameOpen connects to the channel that attached name and returns a
// side-channel coid, after the server has answered the IO_CONNECT
// message it sends (struct _io_connect: type IO_CONNECT, subtype
// IO_CONNECT_OPEN, file_type FTYPE_NAME, ioflag O_RDWR, the path at
// offset 40): MsgReply with EOK accepts, MsgError refuses with its
// errno. Errors: ENOENT (nobody attached name), EINVAL (bad name or
// flags), EINTR/ETIMEDOUT (ctx).
func NameOpen(ctx context.Context, name string, flags int) (int, error) {
	disarm() // any call ends the thread's TimerTimeout, as on QNX
	if flags != 0 || badName(name) {
		return -1, EINVAL
	}
	coid, err := attach(peerName{name: name}, false, 0, NTO_SIDE_CHANNEL)
	if err != nil {
		if err == ESRCH {
			return -1, ENOENT
		}
		return -1, err
	}
	msg := ioConnect(name)
	c, err := lookupConn(coid)
	if err != nil {
		ConnectDetach(coid)
		return -1, err
	}
	b := make([]byte, headerSize+len(msg))
	id := int32(state.sendID.Add(1))
	putHeader(b, header{kind: kindConnect, a: int32(coid), b: id, c: int32(sys.Gettid())})
	copy(b[headerSize:], msg)
	var r [replyHeaderSize]byte
	// After what the connection still has going out (a reopened one's
	// pulses and disconnect), as a MsgSend is.
	if err := c.p.drainSend(ctx, c); err != nil {
		ConnectDetach(coid)
		return -1, err
	}
	c.p.spoke.Store(true)
	n, err := c.p.send(ctx, c.detached, id, b, r[:])
	if err == nil {
		_, _, err = c.p.decodeAnswer(r[:n], nil)
	}
	if err != nil {
		ConnectDetach(coid)
		if errors.Is(err, ESRCH) {
			return -1, ENOENT
		}
		return -1, err
	}
	return coid, nil
}

// ioConnect builds name_open's struct _io_connect.
func ioConnect(path string) []byte {
	b := make([]byte, 40+len(path)+1)
	le := binary.NativeEndian
	le.PutUint16(b[0:], IO_CONNECT)
	le.PutUint16(b[2:], IO_CONNECT_OPEN)
	le.PutUint32(b[4:], FTYPE_NAME)
	le.PutUint32(b[20:], uint32(os.O_RDWR))
	le.PutUint16(b[34:], uint16(len(path)+1))
	copy(b[40:], path)
	return b
}

// NameClose is ConnectDetach.
func NameClose(coid int) error { return ConnectDetach(coid) }
