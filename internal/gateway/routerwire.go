package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gosimpl/gosimpl/naming"
)

// The messages C SIMPL's library exchanges with its protocol router and
// with a protocol's surrogate when a program locates "host:NAME"
// (shared/spec/simpl-network-wire.md, sections 2.3 and 3). Every one
// starts with the 16-byte SUR_MSG_HDR: token, nbytes, ybytes and surPid,
// 32-bit integers in host byte order. The library leaves ybytes and
// surPid uninitialized, and nbytes is not the same measure in every
// message, so only the token is read from the header; the length the
// local wire delivered is what is checked.

// The tokens the router and its surrogates are sent (surMsgs.h's SUR_TOKEN).
const (
	tokNameLocate      = 2
	tokSurrogateReady  = 10
	tokRequestProtocol = 11
	tokDumpTable       = 12
)

// Sizes of the messages and of their fields; each field holds a C string
// and its NUL.
const (
	surHeaderSize       = 16
	protocolField       = naming.MaxProtocolLen + 1                            // 24
	hostField           = naming.MaxHostLen + 1                                // 52
	programField        = naming.MaxNameLen + 1                                // 32
	requestProtocolSize = surHeaderSize + protocolField                        // 40
	surrogateReadySize  = surHeaderSize + protocolField + programField         // 72
	nameLocateSize      = surHeaderSize + hostField + programField + hostField // 152
	nameLocateReplySize = surHeaderSize + 4                                    // 20
	tableEntrySize      = protocolField + programField + 8                     // name, name, a router-local pointer
	maxProtocols        = 10                                                   // the router's table, as C SIMPL's
	dumpTableSize       = maxProtocols * tableEntrySize                        // 640
	routerMaxMessage    = 1024                                                 // C SIMPL's router's receive buffer
	locateReplyNBytes   = 4                                                    // its nbytes: the result alone
	locateFailed        = -1                                                   // "cannot locate remote process"
	surrogateReadyOffs  = surHeaderSize + protocolField                        // programName in SUR_SURROGATE_READY
	nameLocateNameOffs  = surHeaderSize + hostField                            // rProgramName in SUR_NAME_LOCATE
	nameLocateFromOffs  = surHeaderSize + hostField + programField             // sHostName in SUR_NAME_LOCATE
)

// errBadCMessage is the error for a router or surrogate message that
// cannot be taken.
var errBadCMessage = errors.New("simpl: bad C SIMPL router or surrogate message")

// cMsg is one message to the router or a surrogate, decoded.
type cMsg struct {
	token    int32
	protocol string // SUR_REQUEST_PROTOCOL, SUR_SURROGATE_READY
	program  string // SUR_SURROGATE_READY: the registrant's idle surrogate
	host     string // SUR_NAME_LOCATE: the remote host...
	name     string // ...and the name located there
	fromHost string // SUR_NAME_LOCATE: the sender's host, as it names itself
	header   [surHeaderSize]byte
}

// cString reads the C string in field: the bytes before the first NUL,
// which must be there. Bytes after it are ignored (the library leaves them
// uninitialized).
func cString(field []byte, what string) (string, error) {
	i := bytes.IndexByte(field, 0)
	if i < 0 {
		return "", fmt.Errorf("%w: the %s field (%d bytes) has no NUL", errBadCMessage, what, len(field))
	}
	return string(field[:i]), nil
}

// layoutSize is the size of the message of token as the C library sends
// it, or 0 for a token the router and surrogates do not take.
func layoutSize(token int32) int {
	switch token {
	case tokRequestProtocol:
		return requestProtocolSize
	case tokSurrogateReady:
		return surrogateReadySize
	case tokNameLocate:
		return nameLocateSize
	case tokDumpTable:
		return surHeaderSize
	}
	return 0
}

// parseCMsg decodes a message C SIMPL's library sends to the router or to
// a surrogate. A token it does not know, a message shorter than its
// token's layout or a field that is not a valid name is an error. Bytes
// beyond the layout are ignored (the C library sends none).
func parseCMsg(b []byte) (cMsg, error) {
	var m cMsg
	if len(b) < surHeaderSize {
		return m, fmt.Errorf("%w: %d bytes, the header alone is %d", errBadCMessage, len(b), surHeaderSize)
	}
	copy(m.header[:], b)
	m.token = int32(binary.NativeEndian.Uint32(b))
	want := layoutSize(m.token)
	if want == 0 {
		return m, fmt.Errorf("%w: token %d", errBadCMessage, m.token)
	}
	if len(b) < want {
		return m, fmt.Errorf("%w: token %d in %d bytes, its layout is %d", errBadCMessage, m.token, len(b), want)
	}
	var err error
	switch m.token {
	case tokRequestProtocol, tokSurrogateReady:
		if m.protocol, err = cString(b[surHeaderSize:surHeaderSize+protocolField], "protocol"); err != nil {
			return m, err
		}
		if m.protocol == "" {
			return m, fmt.Errorf("%w: empty protocol", errBadCMessage)
		}
		if m.token == tokRequestProtocol {
			break
		}
		if m.program, err = cString(b[surrogateReadyOffs:surrogateReadyOffs+programField], "program"); err != nil {
			return m, err
		}
		if err := naming.CheckLocal(m.program); err != nil {
			return m, fmt.Errorf("%w: program: %w", errBadCMessage, err)
		}
	case tokNameLocate:
		if m.host, err = cString(b[surHeaderSize:surHeaderSize+hostField], "host"); err != nil {
			return m, err
		}
		if m.name, err = cString(b[nameLocateNameOffs:nameLocateNameOffs+programField], "name"); err != nil {
			return m, err
		}
		if m.fromHost, err = cString(b[nameLocateFromOffs:nameLocateFromOffs+hostField], "sender's host"); err != nil {
			return m, err
		}
		// An empty host is a local name, which the library never asks a
		// surrogate for.
		n, err := naming.Parse(m.host + ":" + m.name)
		if err != nil || m.host == "" || n.Host != m.host || n.Name != m.name {
			return m, fmt.Errorf("%w: host %q, name %q: not a remote name", errBadCMessage, m.host, m.name)
		}
	}
	return m, nil
}

// appendSurrogateReady appends the SUR_SURROGATE_READY that registers
// program, an attached idle surrogate, for protocol with C SIMPL's router.
func appendSurrogateReady(b []byte, protocol, program string) []byte {
	b = binary.NativeEndian.AppendUint32(b, tokSurrogateReady)
	b = binary.NativeEndian.AppendUint32(b, surrogateReadySize)
	b = append(b, make([]byte, 8)...) // ybytes, surPid: unused
	b = appendField(b, protocol, protocolField)
	return appendField(b, program, programField)
}

// appendField appends s and NULs to fill a field of n bytes; s must be
// shorter than n.
func appendField(b []byte, s string, n int) []byte {
	b = append(b, s...)
	return append(b, make([]byte, n-len(s))...)
}

// nameLocateReply is the answer to a SUR_NAME_LOCATE: its header echoed
// with nbytes 4 (as surrogateTcp answers), then result, 0 for found or
// locateFailed.
func nameLocateReply(m *cMsg, result int32) []byte {
	b := make([]byte, 0, nameLocateReplySize)
	b = append(b, m.header[:]...)
	binary.NativeEndian.PutUint32(b[4:], locateReplyNBytes)
	return binary.NativeEndian.AppendUint32(b, uint32(result))
}
