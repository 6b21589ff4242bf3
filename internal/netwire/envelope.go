package netwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gosimpl/gosimpl/naming"
)

// An Envelope is one remote Send or Trigger as a program hands it to its
// host's gateway, as the request of a local Send to the gateway's name.
// Little-endian, fixed fields first:
//
//	0        4     5      6        8            16         20      24        32
//	+--------+-----+------+--------+------------+----------+-------+---------+--------+---------+
//	| "GSN2" | kind| tlen | 0 0    | timeout ns | maxReply | proxy | sent ns | target | payload |
//	+--------+-----+------+--------+------------+----------+-------+---------+--------+---------+
//
// target is the name as naming.Parse accepts it, with a host (tlen bytes);
// timeout is what was left of the Send's deadline when it was made (0: no
// deadline), so the gateways and the receiving host give up when the
// sender does, whatever their clocks say; maxReply is the largest reply
// the sender takes; proxy is the value of a Trigger (kind KindTrigger,
// with no payload); sent is when the envelope was made, on the host's
// CLOCK_MONOTONIC (which the program and its gateway share), so the
// gateway counts the time the envelope waited for it against the
// deadline. A KindLocate envelope (no payload) asks whether a live
// process holds the name on its host: Locate's check, as C SIMPL's
// name_locate asks the remote surrogate.
//
// An envelope without a sent time (Sent 0: no deadline, or a gateway
// built before sent was added, which refuses "GSN2") is a "GSN1"
// envelope: the same without the sent field, the target following proxy
// at offset 24. A "GSN2" envelope's sent time is never 0, so each
// envelope has one encoding. A program sends a "GSN2" envelope again as
// "GSN1" only when its gateway answered it StatusBadMessage with detail 0
// (the gateway could not read it, so carried nothing); a "bad message"
// that came from the other host has detail BadMessageCarried.
type Envelope struct {
	Kind     Kind
	Target   naming.Name
	Timeout  time.Duration
	MaxReply int
	Proxy    int
	Sent     int64 // CLOCK_MONOTONIC ns when made; 0: not known
	Payload  []byte
}

// Kind is what an Envelope asks for.
type Kind uint8

func (k Kind) valid() bool { return k == KindSend || k == KindTrigger || k == KindLocate }

// The kinds of Envelope.
const (
	KindSend    Kind = 1
	KindTrigger Kind = 2
	KindLocate  Kind = 3
)

func (k Kind) String() string {
	switch k {
	case KindSend:
		return "send"
	case KindTrigger:
		return "trigger"
	case KindLocate:
		return "locate"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

const (
	envMagic      = "GSN2"
	envMagicV1    = "GSN1"
	envHeaderSize = 32
	envHeaderV1   = 24
	// MaxTarget is the longest target: protocol, host and name at their
	// longest, and two colons.
	MaxTarget = naming.MaxProtocolLen + 1 + naming.MaxHostLen + 1 + naming.MaxNameLen
)

// ErrBadEnvelope is what DecodeEnvelope and DecodeReply return for bytes
// they cannot take.
var ErrBadEnvelope = errors.New("simpl: bad network envelope")

// EnvelopeSize is the size of e encoded.
func (e *Envelope) EnvelopeSize() int {
	return e.headerSize() + len(e.Target.String()) + len(e.Payload)
}

func (e *Envelope) headerSize() int {
	if e.Sent == 0 {
		return envHeaderV1
	}
	return envHeaderSize
}

// AppendEnvelope appends e, encoded, to b. The target must have a host.
func AppendEnvelope(b []byte, e *Envelope) ([]byte, error) {
	return AppendEnvelopeTo(b, e, e.Target.String())
}

// AppendEnvelopeTo is AppendEnvelope with e.Target as text already made
// (e.Target.String()), for a sender that sends to one target over and
// over and should not build the text each time.
func AppendEnvelopeTo(b []byte, e *Envelope, target string) ([]byte, error) {
	switch {
	case e.Target.Host == "":
		return b, fmt.Errorf("%w: target %q has no host", ErrBadEnvelope, target)
	case len(target) > MaxTarget:
		return b, fmt.Errorf("%w: target %q is %d bytes, at most %d", ErrBadEnvelope, target, len(target), MaxTarget)
	case !e.Kind.valid():
		return b, fmt.Errorf("%w: %v", ErrBadEnvelope, e.Kind)
	case e.MaxReply < 0 || int64(e.MaxReply) > math.MaxUint32:
		return b, fmt.Errorf("%w: largest reply %d", ErrBadEnvelope, e.MaxReply)
	case e.Timeout < 0:
		return b, fmt.Errorf("%w: timeout %v", ErrBadEnvelope, e.Timeout)
	case e.Proxy < 0 || e.Proxy > math.MaxInt32:
		return b, fmt.Errorf("%w: proxy %d", ErrBadEnvelope, e.Proxy)
	case e.Sent < 0:
		return b, fmt.Errorf("%w: sent at %d ns", ErrBadEnvelope, e.Sent)
	}
	if e.Sent == 0 {
		b = append(b, envMagicV1...)
	} else {
		b = append(b, envMagic...)
	}
	b = append(b, byte(e.Kind), byte(len(target)), 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Timeout))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.MaxReply))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.Proxy))
	if e.Sent != 0 {
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Sent))
	}
	b = append(b, target...)
	return append(b, e.Payload...), nil
}

// DecodeEnvelope reads an envelope from b. Payload aliases b.
func DecodeEnvelope(b []byte) (Envelope, error) {
	hsize := envHeaderSize
	if len(b) >= 4 && string(b[:4]) == envMagicV1 {
		hsize = envHeaderV1
	}
	if len(b) < hsize {
		return Envelope{}, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrBadEnvelope, len(b), hsize)
	}
	if m := string(b[:4]); m != envMagic && m != envMagicV1 {
		return Envelope{}, fmt.Errorf("%w: magic %q", ErrBadEnvelope, b[:4])
	}
	e := Envelope{Kind: Kind(b[4])}
	tlen := int(b[5])
	if b[6] != 0 || b[7] != 0 {
		return Envelope{}, fmt.Errorf("%w: reserved bytes %#x %#x", ErrBadEnvelope, b[6], b[7])
	}
	if !e.Kind.valid() {
		return Envelope{}, fmt.Errorf("%w: %v", ErrBadEnvelope, e.Kind)
	}
	timeout := binary.LittleEndian.Uint64(b[8:])
	if timeout > math.MaxInt64 {
		return Envelope{}, fmt.Errorf("%w: timeout %d ns", ErrBadEnvelope, timeout)
	}
	e.Timeout = time.Duration(timeout)
	e.MaxReply = int(binary.LittleEndian.Uint32(b[16:]))
	proxy := binary.LittleEndian.Uint32(b[20:])
	if proxy > math.MaxInt32 {
		return Envelope{}, fmt.Errorf("%w: proxy %d", ErrBadEnvelope, proxy)
	}
	e.Proxy = int(proxy)
	if hsize == envHeaderSize {
		sent := binary.LittleEndian.Uint64(b[24:])
		if sent == 0 || sent > math.MaxInt64 {
			return Envelope{}, fmt.Errorf("%w: sent at %d ns", ErrBadEnvelope, sent)
		}
		e.Sent = int64(sent)
	}
	if tlen > MaxTarget || len(b) < hsize+tlen {
		return Envelope{}, fmt.Errorf("%w: target of %d bytes in %d", ErrBadEnvelope, tlen, len(b)-hsize)
	}
	target := string(b[hsize : hsize+tlen])
	n, err := naming.Parse(target)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: target: %w", ErrBadEnvelope, err)
	}
	if n.Host == "" || n.String() != target {
		return Envelope{}, fmt.Errorf("%w: target %q is not a remote name in its usual form", ErrBadEnvelope, target)
	}
	e.Target = n
	e.Payload = b[hsize+tlen:]
	if e.Kind == KindTrigger && (len(e.Payload) != 0 || e.Proxy < 1) {
		return Envelope{}, fmt.Errorf("%w: trigger of proxy %d with %d bytes", ErrBadEnvelope, e.Proxy, len(e.Payload))
	}
	if e.Kind == KindLocate && (len(e.Payload) != 0 || e.Proxy != 0) {
		return Envelope{}, fmt.Errorf("%w: locate with %d bytes", ErrBadEnvelope, len(e.Payload))
	}
	return e, nil
}
