package gateway

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/nats-io/nats.go"
)

// StatusWorking is the HeaderStatus of a heartbeat: the serving gateway
// sends one every heartbeat interval (500 ms) while the local Send it
// made for a request is in progress, so the requesting gateway can tell
// a slow receiver from a lost gateway or host. It is not a
// netwire.Status: it never reaches a program.
const StatusWorking = "working"

// StatusMore is the HeaderStatus of an acknowledgement of chunks: the
// side taking a message in chunks says how much of it has arrived
// (HeaderAcked) and where the rest goes (HeaderChunksTo). Like
// StatusWorking it is between gateways only.
const StatusMore = "more"

// maxSubject bounds a subject a peer names for chunks or their
// acknowledgements: an inbox and a few tokens.
const maxSubject = 256

// natsStatus is the header in which the NATS server says, on an answer
// of its own, why: "503" is "no responders", no subscriber took the
// request (nats.go reads the status line into this header).
const (
	natsStatus   = "Status"
	noResponders = "503"
)

// maxFromName bounds the sending program's name in a request: a SIMPL
// name, with "#k" when it came from a concurrent Send of a Channel.
const maxFromName = naming.MaxNameLen + 12

// maxID bounds a request's id.
const maxID = 64

// errBadHeader is what parseRequest and parseAnswer return for headers
// they cannot take.
var errBadHeader = fmt.Errorf("%w: bad request header", netwire.ErrBadEnvelope)

// request is a request between gateways, as its NATS headers carry it:
// the envelope's fields, without the target (that is the subject) or the
// payload (that is the message's data), and who sent it.
type request struct {
	kind     netwire.Kind
	timeout  time.Duration // what was left of the sender's deadline; 0: none
	maxReply int           // the largest reply the sender takes
	proxy    int           // a trigger's proxy value
	fromHost string        // the sending host, as its gateway names itself
	fromName string        // the sending program's name
	fromPID  int           // its pid on its host
	id       string        // unique to this request, for at most once
	size     int           // a Send in chunks: the whole request's size (0: it is all in this message)
}

// header is r as the NATS headers of a request.
func (r *request) header() nats.Header {
	h := nats.Header{}
	h.Set(netwire.HeaderKind, r.kind.String())
	if r.timeout > 0 {
		h.Set(netwire.HeaderTimeout, strconv.FormatInt(int64(r.timeout), 10))
	}
	if r.kind == netwire.KindSend {
		h.Set(netwire.HeaderMaxReply, strconv.Itoa(r.maxReply))
	}
	if r.kind == netwire.KindTrigger {
		h.Set(netwire.HeaderProxy, strconv.Itoa(r.proxy))
	}
	h.Set(netwire.HeaderFromHost, r.fromHost)
	h.Set(netwire.HeaderFromName, r.fromName)
	h.Set(netwire.HeaderFromPID, strconv.Itoa(r.fromPID))
	h.Set(netwire.HeaderID, r.id)
	if r.size > 0 {
		h.Set(netwire.HeaderSize, strconv.Itoa(r.size))
	}
	return h
}

// one is the single value of header key: absent is "", false; more than
// one value is an error.
func one(h nats.Header, key string) (string, bool, error) {
	v := h[key]
	switch len(v) {
	case 0:
		return "", false, nil
	case 1:
		return v[0], true, nil
	}
	return "", false, fmt.Errorf("%w: %s given %d times", errBadHeader, key, len(v))
}

// number reads a decimal header value in [lo, hi].
func number(key, s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%w: %s %q: want a decimal number from %d to %d", errBadHeader, key, s, lo, hi)
	}
	return n, nil
}

// text checks a header value that is a name or an id: 1 to max bytes,
// printable, no space.
func text(key, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s of %d bytes: want 1 to %d", errBadHeader, key, len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %s %q: byte %#x at %d", errBadHeader, key, s, c, i)
		}
	}
	return nil
}

// parseRequest reads a request's headers, trusting nothing: every header
// once at most, numbers in range, the ones the kind needs present and
// the others absent.
func parseRequest(h nats.Header) (request, error) {
	var r request
	get := func(key string, need bool) (string, bool, error) {
		v, ok, err := one(h, key)
		if err == nil && need && !ok {
			err = fmt.Errorf("%w: no %s", errBadHeader, key)
		}
		return v, ok, err
	}
	kind, _, err := get(netwire.HeaderKind, true)
	if err != nil {
		return r, err
	}
	switch kind {
	case netwire.KindSend.String():
		r.kind = netwire.KindSend
	case netwire.KindTrigger.String():
		r.kind = netwire.KindTrigger
	case netwire.KindLocate.String():
		r.kind = netwire.KindLocate
	default:
		return r, fmt.Errorf("%w: %s %q", errBadHeader, netwire.HeaderKind, kind)
	}
	if v, ok, err := get(netwire.HeaderTimeout, false); err != nil {
		return r, err
	} else if ok {
		n, err := number(netwire.HeaderTimeout, v, 1, math.MaxInt64)
		if err != nil {
			return r, err
		}
		r.timeout = time.Duration(n)
	}
	v, ok, err := get(netwire.HeaderMaxReply, r.kind == netwire.KindSend)
	if err != nil {
		return r, err
	}
	if ok {
		if r.kind != netwire.KindSend {
			return r, fmt.Errorf("%w: %s on a %v", errBadHeader, netwire.HeaderMaxReply, r.kind)
		}
		n, err := number(netwire.HeaderMaxReply, v, 0, math.MaxUint32)
		if err != nil {
			return r, err
		}
		r.maxReply = int(n)
	}
	v, ok, err = get(netwire.HeaderProxy, r.kind == netwire.KindTrigger)
	if err != nil {
		return r, err
	}
	if ok {
		if r.kind != netwire.KindTrigger {
			return r, fmt.Errorf("%w: %s on a %v", errBadHeader, netwire.HeaderProxy, r.kind)
		}
		n, err := number(netwire.HeaderProxy, v, 1, math.MaxInt32)
		if err != nil {
			return r, err
		}
		r.proxy = int(n)
	}
	if r.fromHost, _, err = get(netwire.HeaderFromHost, true); err != nil {
		return r, err
	}
	if err := text(netwire.HeaderFromHost, r.fromHost, naming.MaxHostLen); err != nil {
		return r, err
	}
	if r.fromName, _, err = get(netwire.HeaderFromName, true); err != nil {
		return r, err
	}
	if err := text(netwire.HeaderFromName, r.fromName, maxFromName); err != nil {
		return r, err
	}
	if v, _, err = get(netwire.HeaderFromPID, true); err != nil {
		return r, err
	}
	n, err := number(netwire.HeaderFromPID, v, 1, math.MaxInt32)
	if err != nil {
		return r, err
	}
	r.fromPID = int(n)
	if r.id, _, err = get(netwire.HeaderID, true); err != nil {
		return r, err
	}
	if err := text(netwire.HeaderID, r.id, maxID); err != nil {
		return r, err
	}
	if v, ok, err = get(netwire.HeaderSize, false); err != nil {
		return r, err
	} else if ok {
		if r.kind != netwire.KindSend {
			return r, fmt.Errorf("%w: %s on a %v", errBadHeader, netwire.HeaderSize, r.kind)
		}
		n, err := number(netwire.HeaderSize, v, 1, netwire.MaxPayload)
		if err != nil {
			return r, err
		}
		r.size = int(n)
	}
	return r, nil
}

// answerHeader is the header of an answer: a heartbeat (StatusWorking)
// or the final status and its detail.
func answerHeader(status string, detail int) nats.Header {
	h := nats.Header{}
	h.Set(netwire.HeaderStatus, status)
	if detail != 0 {
		h.Set(netwire.HeaderDetail, strconv.Itoa(detail))
	}
	return h
}

// answer is what the requesting gateway read from a message on a
// request's inbox.
type answer struct {
	working bool // a heartbeat: the request is at the receiver
	status  netwire.Status
	detail  int
	size    int    // an ok answer in chunks: the whole reply's size (0: it is all in this message)
	acksTo  string // ...and where to acknowledge its chunks
}

// parseAnswer reads an answer. The NATS server's "no responders" (no
// gateway subscribed to the subject: nothing was delivered) is
// StatusUnreachable.
func parseAnswer(m *nats.Msg) (answer, error) {
	if len(m.Data) == 0 && m.Header.Get(natsStatus) == noResponders {
		return answer{status: netwire.StatusUnreachable}, nil
	}
	v, ok, err := one(m.Header, netwire.HeaderStatus)
	if err != nil {
		return answer{}, err
	}
	if !ok {
		return answer{}, fmt.Errorf("%w: an answer without %s", errBadHeader, netwire.HeaderStatus)
	}
	if v == StatusMore {
		return answer{}, fmt.Errorf("%w: an acknowledgement of chunks as an answer", errBadHeader)
	}
	if v == StatusWorking {
		if len(m.Data) != 0 {
			return answer{}, fmt.Errorf("%w: a heartbeat with %d bytes", errBadHeader, len(m.Data))
		}
		return answer{working: true}, nil
	}
	s, err := netwire.ParseStatus(v)
	if err != nil {
		return answer{}, fmt.Errorf("%w: %s %q", errBadHeader, netwire.HeaderStatus, v)
	}
	a := answer{status: s}
	if v, ok, err := one(m.Header, netwire.HeaderDetail); err != nil {
		return answer{}, err
	} else if ok {
		n, err := number(netwire.HeaderDetail, v, 0, math.MaxUint32)
		if err != nil {
			return answer{}, err
		}
		a.detail = int(n)
	}
	if s != netwire.StatusOK && len(m.Data) != 0 {
		return answer{}, fmt.Errorf("%w: %v with %d bytes of reply", errBadHeader, s, len(m.Data))
	}
	v, ok, err = one(m.Header, netwire.HeaderSize)
	if err != nil {
		return answer{}, err
	}
	if ok {
		if s != netwire.StatusOK {
			return answer{}, fmt.Errorf("%w: %s on %v", errBadHeader, netwire.HeaderSize, s)
		}
		n, err := number(netwire.HeaderSize, v, int64(len(m.Data))+1, netwire.MaxPayload)
		if err != nil {
			return answer{}, err
		}
		if len(m.Data) == 0 {
			return answer{}, fmt.Errorf("%w: a reply in chunks with an empty first chunk", errBadHeader)
		}
		a.size = int(n)
	}
	v, ok, err = one(m.Header, netwire.HeaderAcksTo)
	if err != nil {
		return answer{}, err
	}
	if ok != (a.size > 0) {
		return answer{}, fmt.Errorf("%w: %s wants %s, and only with it", errBadHeader, netwire.HeaderSize, netwire.HeaderAcksTo)
	}
	if ok {
		if err := subject(netwire.HeaderAcksTo, v); err != nil {
			return answer{}, err
		}
		a.acksTo = v
	}
	return a, nil
}

// subject checks a subject a peer names for chunks or acknowledgements:
// a plain subject (no wildcard, no empty token) that is not one of the
// subjects names are served on, so that a peer cannot have a gateway
// publish its chunks as requests to some host.
func subject(key, s string) error {
	if err := text(key, s, maxSubject); err != nil {
		return err
	}
	if strings.HasPrefix(s, netwire.SubjectPrefix) {
		return fmt.Errorf("%w: %s %q: a subject names are served on", errBadHeader, key, s)
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return fmt.Errorf("%w: %s %q: not a plain subject", errBadHeader, key, s)
		}
	}
	return nil
}

// ackHeader is the header of an acknowledgement: got bytes of the
// message have arrived; the rest goes to chunksTo.
func ackHeader(got int, chunksTo string) nats.Header {
	h := nats.Header{}
	h.Set(netwire.HeaderStatus, StatusMore)
	h.Set(netwire.HeaderAcked, strconv.Itoa(got))
	h.Set(netwire.HeaderChunksTo, chunksTo)
	return h
}

// ack is an acknowledgement as parseAck read it.
type ack struct {
	got      int    // bytes of the message that have arrived
	chunksTo string // where the rest goes
}

// parseAck reads an acknowledgement (HeaderStatus StatusMore, no data).
func parseAck(m *nats.Msg) (ack, error) {
	if len(m.Data) != 0 {
		return ack{}, fmt.Errorf("%w: an acknowledgement with %d bytes", errBadHeader, len(m.Data))
	}
	if v, _, err := one(m.Header, netwire.HeaderStatus); err != nil {
		return ack{}, err
	} else if v != StatusMore {
		return ack{}, fmt.Errorf("%w: %s %q on an acknowledgement", errBadHeader, netwire.HeaderStatus, v)
	}
	v, ok, err := one(m.Header, netwire.HeaderAcked)
	if err == nil && !ok {
		err = fmt.Errorf("%w: no %s", errBadHeader, netwire.HeaderAcked)
	}
	if err != nil {
		return ack{}, err
	}
	n, err := number(netwire.HeaderAcked, v, 1, netwire.MaxPayload)
	if err != nil {
		return ack{}, err
	}
	a := ack{got: int(n)}
	v, ok, err = one(m.Header, netwire.HeaderChunksTo)
	if err == nil && !ok {
		err = fmt.Errorf("%w: no %s", errBadHeader, netwire.HeaderChunksTo)
	}
	if err != nil {
		return ack{}, err
	}
	if err := subject(netwire.HeaderChunksTo, v); err != nil {
		return ack{}, err
	}
	a.chunksTo = v
	return a, nil
}

// chunkHeader is the header of a chunk after the first: its data goes
// at offset in the message.
func chunkHeader(offset int) nats.Header {
	h := nats.Header{}
	h.Set(netwire.HeaderOffset, strconv.Itoa(offset))
	return h
}

// parseChunk reads a chunk after the first: where its data goes in a
// message of size bytes. The data must be there and fit.
func parseChunk(m *nats.Msg, size int) (int, error) {
	v, ok, err := one(m.Header, netwire.HeaderOffset)
	if err == nil && !ok {
		err = fmt.Errorf("%w: no %s", errBadHeader, netwire.HeaderOffset)
	}
	if err != nil {
		return 0, err
	}
	n, err := number(netwire.HeaderOffset, v, 1, int64(size)-1)
	if err != nil {
		return 0, err
	}
	if len(m.Data) == 0 || len(m.Data) > size-int(n) {
		return 0, fmt.Errorf("%w: a chunk of %d bytes at %d of %d", errBadHeader, len(m.Data), n, size)
	}
	return int(n), nil
}
