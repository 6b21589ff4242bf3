package qnx

import (
	"encoding/binary"
	"errors"
)

// The header this package puts at the front of every simpl request it
// sends, so that one simpl channel carries QNX's several kinds of traffic.
// It is 16 bytes, little-endian:
//
//	offset 0  2 bytes  magic "QN"
//	offset 2  1 byte   version (1)
//	offset 3  1 byte   kind: kindMsg, kindPulse, kindConnect,
//	                   kindDisconnect or kindUnblock
//	offset 4  int32    A
//	offset 8  int32    B
//	offset 12 int32    C
//
// What A, B and C hold depends on the kind:
//
//	kindMsg, kindConnect  A client coid, B send id, C client thread id;
//	                      the client's message follows the header
//	kindPulse             A code (-128..127), B value, C priority
//	kindDisconnect        nothing: the sending process's last connection
//	                      to this channel is gone
//	kindUnblock           A send id of the message to unblock, B the
//	                      timeout states armed (_NTO_TIMEOUT_SEND|REPLY),
//	                      C the errno the client will leave with
//
// The send id numbers the sending process's messages (from 1, per
// process), so that an unblock request names one of them. kindConnect is
// name_open's _IO_CONNECT message; it reaches the server as an ordinary
// message whose data is a struct _io_connect.
//
// The answer to a kindMsg or kindConnect request starts with an 8-byte
// header: byte 0 replyOK (then int32 status at offset 4) or replyError
// (then int32 errno at offset 4) or replyGone (the channel was destroyed
// with the message in it) or replyRuns (status, as replyOK), bytes 1..3
// zero; the reply data follows. After replyRuns (MsgWrite left gaps in
// the reply: the client's bytes there must stay as they were) the data
// is followed by a table of the runs written, K pairs of int32s (offset,
// length; sorted, apart) and then K (1..maxRuns), each little-endian: the
// client copies only the runs. The client's reply buffer (simpl's) is
// runSlack bytes longer than its reply area, so that the table fits.
// The answer to kindUnblock is one byte: unblockLeave, unblockStay or
// unblockGone. Pulses and disconnects are answered empty at once.
const (
	headerSize      = 16
	replyHeaderSize = 8
	wireVersion     = 2 // 2: reply areas runSlack longer, answers with runs (1: before)

	kindMsg        = 1
	kindPulse      = 2
	kindConnect    = 3
	kindDisconnect = 4
	kindUnblock    = 5

	replyOK    = 0
	replyError = 1
	replyGone  = 2 // the channel was destroyed: ESRCH, and the connection is dead
	replyRuns  = 3 // replyOK, with only the runs in the table written (MsgWrite gaps)

	// maxRuns is how many separate runs a replyRuns answer carries: a
	// server that left more gaps has its smallest ones filled with
	// zeros. runSlack is the room their table takes.
	maxRuns  = 8
	runSlack = 8*maxRuns + 4

	unblockLeave = 'L' // the client may go: its message was withdrawn or forgotten
	unblockStay  = 'S' // the server keeps the message: wait for its answer
	unblockGone  = 'G' // the server knows no such message (answered already)
)

// header is a decoded request header.
type header struct {
	kind    byte
	a, b, c int32
}

var (
	errShort   = errors.New("shorter than the 16-byte header")
	errMagic   = errors.New("no QN magic")
	errVersion = errors.New("unknown header version")
	errKind    = errors.New("unknown message kind")
	errCode    = errors.New("pulse code out of range")
)

// putHeader writes h into b, which holds at least headerSize bytes.
func putHeader(b []byte, h header) {
	b[0], b[1], b[2], b[3] = 'Q', 'N', wireVersion, h.kind
	binary.LittleEndian.PutUint32(b[4:], uint32(h.a))
	binary.LittleEndian.PutUint32(b[8:], uint32(h.b))
	binary.LittleEndian.PutUint32(b[12:], uint32(h.c))
}

// decodeHeader reads the header at the front of b. Everything is checked
// before use: a request from a program that is not this package (a C
// SIMPL sender that found the name, say) is refused, not trusted.
func decodeHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, errShort
	}
	if b[0] != 'Q' || b[1] != 'N' {
		return header{}, errMagic
	}
	if b[2] != wireVersion {
		return header{}, errVersion
	}
	h := header{
		kind: b[3],
		a:    int32(binary.LittleEndian.Uint32(b[4:])),
		b:    int32(binary.LittleEndian.Uint32(b[8:])),
		c:    int32(binary.LittleEndian.Uint32(b[12:])),
	}
	switch h.kind {
	case kindMsg, kindConnect, kindDisconnect, kindUnblock:
	case kindPulse:
		if h.a < -128 || h.a > 127 {
			return header{}, errCode
		}
	default:
		return header{}, errKind
	}
	return h, nil
}

// putReplyHeader writes a reply header into b (at least replyHeaderSize).
func putReplyHeader(b []byte, how byte, v int32) {
	b[0], b[1], b[2], b[3] = how, 0, 0, 0
	binary.LittleEndian.PutUint32(b[4:], uint32(v))
}

// decodeReplyHeader reads a reply header.
func decodeReplyHeader(b []byte) (how byte, v int32, ok bool) {
	if len(b) < replyHeaderSize || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return 0, 0, false
	}
	if b[0] != replyOK && b[0] != replyError && b[0] != replyGone && b[0] != replyRuns {
		return 0, 0, false
	}
	return b[0], int32(binary.LittleEndian.Uint32(b[4:])), true
}
