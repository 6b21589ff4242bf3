package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/naming"
)

// cHeader is a SUR_MSG_HDR as C SIMPL's library writes it: token and
// nbytes, and two words it leaves uninitialized (0xA5 here).
func cHeader(token, nbytes int32) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(token))
	b = binary.NativeEndian.AppendUint32(b, uint32(nbytes))
	return append(b, bytes.Repeat([]byte{0xA5}, 8)...)
}

// cField is s in a field of n bytes: s, a NUL, then leftovers.
func cField(s string, n int) []byte {
	b := append([]byte(s), 0)
	return append(b, bytes.Repeat([]byte{0xA5}, n-len(b))...)
}

func requestProtocol(protocol string) []byte {
	return append(cHeader(tokRequestProtocol, requestProtocolSize), cField(protocol, protocolField)...)
}

func nameLocate(host, name, from string) []byte {
	b := append(cHeader(tokNameLocate, nameLocateSize-surHeaderSize), cField(host, hostField)...)
	b = append(b, cField(name, programField)...)
	return append(b, cField(from, hostField)...)
}

// The router's and surrogates' messages, as the spec lays them out, decode
// to their fields; anything else is refused with errBadCMessage, saying
// why.
func TestParseCMsg(t *testing.T) {
	if len(requestProtocol("x")) != 40 || len(nameLocate("h", "n", "f")) != 152 || len(appendSurrogateReady(nil, "p", "q")) != 72 {
		t.Fatal("the test's messages are not the spec's sizes")
	}
	m, err := parseCMsg(requestProtocol(naming.DefaultProtocol))
	if err != nil || m.token != tokRequestProtocol || m.protocol != naming.DefaultProtocol {
		t.Errorf("SUR_REQUEST_PROTOCOL: %+v, %v", m, err)
	}
	m, err = parseCMsg(nameLocate("plant-7.example.com", "SRV", "vm"))
	if err != nil || m.token != tokNameLocate || m.host != "plant-7.example.com" || m.name != "SRV" || m.fromHost != "vm" {
		t.Errorf("SUR_NAME_LOCATE: %+v, %v", m, err)
	}
	m, err = parseCMsg(appendSurrogateReady(nil, Protocol, "_gosimpl_s1_2"))
	if err != nil || m.token != tokSurrogateReady || m.protocol != Protocol || m.program != "_gosimpl_s1_2" {
		t.Errorf("SUR_SURROGATE_READY: %+v, %v", m, err)
	}
	if m, err = parseCMsg(cHeader(tokDumpTable, 16)); err != nil || m.token != tokDumpTable {
		t.Errorf("SUR_DUMP_TABLE: %+v, %v", m, err)
	}
	long := strings.Repeat("h", hostField)
	for _, c := range []struct {
		what string
		b    []byte
		want string
	}{
		{"nothing", nil, "0 bytes"},
		{"a short header", []byte{11, 0, 0}, "3 bytes"},
		{"an unknown token", cHeader(99, 16), "token 99"},
		{"a negative token", cHeader(-1, 16), "token -1"},
		{"a relay token", cHeader(3, 16), "token 3"},
		{"a short request", requestProtocol("x")[:39], "in 39 bytes"},
		{"a short locate", nameLocate("h", "n", "f")[:151], "in 151 bytes"},
		{"a protocol without NUL", append(cHeader(tokRequestProtocol, 40), bytes.Repeat([]byte{'x'}, 24)...), "no NUL"},
		{"an empty protocol", requestProtocol(""), "empty protocol"},
		{"a host without NUL", append(append(cHeader(tokNameLocate, 136), long...), make([]byte, 100)...), "no NUL"},
		{"an empty host", nameLocate("", "SRV", "vm"), "not a remote name"},
		{"a host with a colon", nameLocate("a:b", "SRV", "vm"), "not a remote name"},
		{"an empty name", nameLocate("b", "", "vm"), "not a remote name"},
		{"a name with a slash", nameLocate("b", "../x", "vm"), "not a remote name"},
		{"a program with a slash", appendSurrogateReady(nil, "p", "a/b"), "program"},
	} {
		_, err := parseCMsg(c.b)
		if !errors.Is(err, errBadCMessage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want errBadCMessage saying %q", c.what, err, c.want)
		}
	}
}

// The answer to SUR_NAME_LOCATE echoes the request's header with nbytes
// 4, then the result, in 20 bytes.
func TestNameLocateReply(t *testing.T) {
	m, err := parseCMsg(nameLocate("b", "SRV", "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, result := range []int32{0, locateFailed} {
		b := nameLocateReply(&m, result)
		want := append(cHeader(tokNameLocate, 4), binary.NativeEndian.AppendUint32(nil, uint32(result))...)
		if !bytes.Equal(b, want) {
			t.Errorf("reply for %d: % x, want % x", result, b, want)
		}
	}
}

// FuzzParseCMsg: whatever a C program sends the router or a surrogate,
// decoding neither panics nor accepts what it should not: an accepted
// message is one of the four tokens, at least its layout long, with
// fields that fit theirs and a remote name that parses as one; a
// registration re-encodes to what it decoded from.
func FuzzParseCMsg(f *testing.F) {
	f.Add(requestProtocol(naming.DefaultProtocol))
	f.Add(requestProtocol(Protocol))
	f.Add(nameLocate("b", "SRV", "a"))
	f.Add(appendSurrogateReady(nil, "_simplTCP", "_tcp_Surrogate_r_16850"))
	f.Add(cHeader(tokDumpTable, 16))
	f.Add(cHeader(7, 16))
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseCMsg(b)
		if err != nil {
			if !errors.Is(err, errBadCMessage) {
				t.Fatalf("error without errBadCMessage: %v", err)
			}
			return
		}
		known := m.token == tokRequestProtocol || m.token == tokSurrogateReady || m.token == tokNameLocate || m.token == tokDumpTable
		if !known || len(b) < layoutSize(m.token) {
			t.Fatalf("accepted token %d in %d bytes", m.token, len(b))
		}
		if len(m.protocol) >= protocolField || len(m.program) >= programField || len(m.host) >= hostField || len(m.name) >= programField || len(m.fromHost) >= hostField {
			t.Fatalf("a field longer than its own: %+v", m)
		}
		switch m.token {
		case tokNameLocate:
			n, err := naming.Parse(m.host + ":" + m.name)
			if err != nil || m.host == "" || n.Host != m.host || n.Name != m.name {
				t.Fatalf("accepted %q:%q: %v", m.host, m.name, err)
			}
		case tokSurrogateReady:
			again, err := parseCMsg(appendSurrogateReady(nil, m.protocol, m.program))
			if err != nil || again.protocol != m.protocol || again.program != m.program {
				t.Fatalf("%+v re-encoded: %+v, %v", m, again, err)
			}
		}
	})
}

// WithCPerm takes permission bits the router itself can use: the owner's
// read and write at least.
func TestCPermRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0, 0o466, 0o4666} {
		var o cOptions
		if err := WithCPerm(mode)(&o); err == nil {
			t.Errorf("WithCPerm(%v) accepted", mode)
		}
	}
	var o cOptions
	if err := WithCPerm(0o600)(&o); err != nil || o.perm != 0o600 {
		t.Errorf("WithCPerm(0600): %v, mode %v", err, o.perm)
	}
}
