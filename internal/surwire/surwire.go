package surwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Encoding is how a connection's integers are written.
type Encoding int

// The encodings.
const (
	Char   Encoding = iota // SUR_CHR: 8 nibbles an integer (C SIMPL's shipped build)
	Binary                 // 4 bytes an integer, little-endian
)

func (e Encoding) String() string {
	if e == Binary {
		return "binary"
	}
	return "char"
}

// intSize is the size of one integer in e.
func (e Encoding) intSize() int {
	if e == Binary {
		return 4
	}
	return 8
}

// HeaderSize is the size of a frame's header in e: 16 or 32 bytes.
func (e Encoding) HeaderSize() int { return 4 * e.intSize() }

// Tokens of the frames on a surrogate connection.
const (
	TokenNameLocate = 2 // r→s, the first frame; s answers with a result
	TokenSend       = 3 // r→s
	TokenReply      = 4 // s→r
	TokenClose      = 5 // r→s
	TokenProxy      = 6 // r→s
	TokenError      = 7 // s→r: the receiver failed; s exits
	TokenAlive      = 8 // r→s
	TokenAliveReply = 9 // s→r
)

// Field sizes of a NAME_LOCATE body, each a NUL-terminated string.
const (
	HostLen    = 52
	ProgramLen = 32
	locateBody = HostLen + ProgramLen + HostLen // 136
)

// ErrBadFrame is what the decoders return for bytes they cannot take.
var ErrBadFrame = errors.New("simpl: bad surrogate frame")

// ErrTooLarge is ReadFrame's error for a frame whose length is over the
// limit: nothing of it was read or allocated.
var ErrTooLarge = errors.New("simpl: surrogate frame too large")

// Frame is one frame. Which fields mean something depends on Token:
//
//	NAME_LOCATE (request)  RHost, RProgram, SHost
//	NAME_LOCATE (reply)    Result (0 found, -1 not)
//	SEND                   Data, YBytes (the largest reply the sender takes)
//	REPLY                  Data
//	PROXY                  Proxy
//	CLOSE, ERROR, ALIVE, ALIVE_REPLY: nothing
type Frame struct {
	Token    int32
	RHost    string // the receiver's host, as the sender wrote it
	RProgram string // the receiver's SIMPL name
	SHost    string // the sender's host
	Result   int32
	YBytes   int32
	Proxy    int32
	Data     []byte
}

// putInt writes v into b (intSize bytes) in e.
func (e Encoding) putInt(b []byte, v int32) {
	if e == Binary {
		binary.LittleEndian.PutUint32(b, uint32(v))
		return
	}
	u := uint32(v)
	for i := 7; i >= 0; i-- {
		b[i] = byte(u & 0xF)
		u >>= 4
	}
}

// getInt reads an integer of e from b; in char, a byte over 0x0F is an
// error (C SIMPL would shift it into the next nibble's place).
func (e Encoding) getInt(b []byte) (int32, error) {
	if e == Binary {
		return int32(binary.LittleEndian.Uint32(b)), nil
	}
	var u uint32
	for i, c := range b[:8] {
		if c > 0x0F {
			return 0, fmt.Errorf("%w: byte %#x at %d of a nibble field", ErrBadFrame, c, i)
		}
		u = u<<4 | uint32(c)
	}
	return int32(u), nil
}

// header writes a frame's header: token, nbytes, ybytes; surPid is 0.
func (e Encoding) header(b []byte, token, nbytes, ybytes int32) []byte {
	n := e.intSize()
	h := make([]byte, 4*n)
	e.putInt(h[0:], token)
	e.putInt(h[n:], nbytes)
	e.putInt(h[2*n:], ybytes)
	e.putInt(h[3*n:], 0)
	return append(b, h...)
}

// field appends s as a NUL-terminated field of size bytes (zeros after).
func field(b []byte, s string, size int) ([]byte, error) {
	if len(s) >= size || bytes.IndexByte([]byte(s), 0) >= 0 {
		return b, fmt.Errorf("%w: %q does not fit a %d-byte field", ErrBadFrame, s, size)
	}
	f := make([]byte, size)
	copy(f, s)
	return append(b, f...), nil
}

// AppendFrame appends f, encoded in e, to b. reply says whether a
// NAME_LOCATE frame is the reply (a result) rather than the request.
func AppendFrame(b []byte, e Encoding, f *Frame, reply bool) ([]byte, error) {
	switch f.Token {
	case TokenNameLocate:
		if reply {
			b = e.header(b, TokenNameLocate, int32(e.intSize()), 0)
			r := make([]byte, e.intSize())
			e.putInt(r, f.Result)
			return append(b, r...), nil
		}
		b = e.header(b, TokenNameLocate, locateBody, 0)
		var err error
		for _, fl := range []struct {
			s    string
			size int
		}{{f.RHost, HostLen}, {f.RProgram, ProgramLen}, {f.SHost, HostLen}} {
			if b, err = field(b, fl.s, fl.size); err != nil {
				return b, err
			}
		}
		return b, nil
	case TokenSend, TokenReply:
		if int64(len(f.Data)) > 1<<31-1 || f.YBytes < 0 {
			return b, fmt.Errorf("%w: %d bytes, reply of %d", ErrBadFrame, len(f.Data), f.YBytes)
		}
		y := f.YBytes
		if f.Token == TokenReply {
			y = 0
		}
		b = e.header(b, f.Token, int32(len(f.Data)), y)
		return append(b, f.Data...), nil
	case TokenProxy:
		b = e.header(b, TokenProxy, int32(e.intSize()), 0)
		p := make([]byte, e.intSize())
		e.putInt(p, f.Proxy)
		return append(b, p...), nil
	case TokenClose, TokenError, TokenAlive, TokenAliveReply:
		return e.header(b, f.Token, 0, 0), nil
	}
	return b, fmt.Errorf("%w: token %d", ErrBadFrame, f.Token)
}

// cstring is the NUL-terminated string at the start of b (b must hold a
// NUL: a field without one is bad), printable.
func cstring(what string, b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fmt.Errorf("%w: %s field of %d bytes without a NUL", ErrBadFrame, what, len(b))
	}
	for j, c := range b[:i] {
		if c < ' ' || c >= 0x7f {
			return "", fmt.Errorf("%w: %s: byte %#x at %d", ErrBadFrame, what, c, j)
		}
	}
	return string(b[:i]), nil
}

// ReadFrame reads one frame in e from r. reply says that a NAME_LOCATE
// frame is expected to be a reply (the connecting side reads those).
// The body's length is checked before anything is allocated: a SEND or
// REPLY over max bytes is ErrTooLarge (its body is left unread: the
// connection is then unusable), and every fixed-size frame must have its
// size. Header fields the token does not use are ignored.
func ReadFrame(r io.Reader, e Encoding, reply bool, max int) (*Frame, error) {
	n := e.intSize()
	h := make([]byte, 4*n)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	token, err := e.getInt(h[:n])
	if err != nil {
		return nil, err
	}
	f := &Frame{Token: token}
	body := func(size int) ([]byte, error) {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("%w: %d-byte body of token %d: %w", ErrBadFrame, size, token, err)
		}
		return b, nil
	}
	switch token {
	case TokenNameLocate:
		if reply {
			b, err := body(n)
			if err != nil {
				return nil, err
			}
			f.Result, err = e.getInt(b)
			return f, err
		}
		b, err := body(locateBody)
		if err != nil {
			return nil, err
		}
		// rHostName may hold stale bytes (C SIMPL's char build leaves
		// it unset): read it only if it is a string.
		if f.RHost, err = cstring("rHostName", b[:HostLen]); err != nil {
			f.RHost = ""
		}
		if f.RProgram, err = cstring("rProgramName", b[HostLen:HostLen+ProgramLen]); err != nil {
			return nil, err
		}
		if f.SHost, err = cstring("sHostName", b[HostLen+ProgramLen:]); err != nil {
			return nil, err
		}
		return f, nil
	case TokenSend, TokenReply:
		size, err := e.getInt(h[n : 2*n])
		if err != nil {
			return nil, err
		}
		if token == TokenSend {
			if f.YBytes, err = e.getInt(h[2*n : 3*n]); err != nil {
				return nil, err
			}
			if f.YBytes < 0 {
				return nil, fmt.Errorf("%w: a SEND taking a reply of %d bytes", ErrBadFrame, f.YBytes)
			}
		}
		if size < 0 {
			return nil, fmt.Errorf("%w: token %d of %d bytes", ErrBadFrame, token, size)
		}
		if int64(size) > int64(max) {
			return nil, fmt.Errorf("%w: token %d of %d bytes, the limit is %d", ErrTooLarge, token, size, max)
		}
		if f.Data, err = body(int(size)); err != nil {
			return nil, err
		}
		return f, nil
	case TokenProxy:
		b, err := body(n)
		if err != nil {
			return nil, err
		}
		f.Proxy, err = e.getInt(b)
		return f, err
	case TokenClose, TokenError, TokenAlive, TokenAliveReply:
		return f, nil
	}
	return nil, fmt.Errorf("%w: token %d", ErrBadFrame, token)
}
