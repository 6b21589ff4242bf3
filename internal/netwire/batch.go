package netwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/gosimpl/gosimpl/naming"
)

// Batches: while several requests from one host to another wait to go
// out, the sending gateway carries them in one NATS message, and the
// answers coming back to it in one too. One NATS message per request
// held the gateways near raw NATS's rate (each message costs the NATS
// servers the same, whatever its size); a batch costs them one.
//
// A batch is published to Subject(to, "", from): the empty name, which no
// SIMPL name is, in the subjects the sending host may publish and the
// receiving host's gateway takes, so NATS permissions bind its hosts as
// they do a single request's. Its reply subject is the sending gateway's
// and serves for NATS's "no responders" only. Little-endian, fixed
// fields first:
//
//	batch:  "GSB1" | idlen u8 | inboxlen u8 | 0 0 | id prefix | inbox | entry...
//	entry:  kind u8 | namelen u8 | fromlen u8 | 0 | maxReply u32 | proxy u32
//	        | fromPID u32 | timeout ns u64 | seq u64 | payloadlen u32
//	        | name | from name | payload
//
// An entry is one request, as a single request's headers say it: the
// local name on the receiving host, the sending program's name and pid,
// what was left of its deadline, the largest reply it takes, a trigger's
// proxy, and its sequence number at the sending gateway. The id prefix
// and the sequence number make the request's id (at most once); answers
// go to the inbox: batched on Inbox+".a" (AppendAnswer), or one answer
// (in chunks where large) on Inbox+"."+seq.
//
//	answers: "GSA1" | answer...
//	answer:  seq u64 | status u8 | flags u8 | 0 0 | detail u32 | datalen u32 | data
//
// flags bit 0 marks a heartbeat: the request is still at the receiver
// (status, detail and data zero).

// BatchEntry is one request in a batch.
type BatchEntry struct {
	Kind     Kind
	Name     string        // the name on the receiving host
	FromName string        // the sending program's SIMPL name
	FromPID  int           // its pid on its host
	Timeout  time.Duration // what was left of its deadline; 0: none
	MaxReply int           // the largest reply it takes
	Proxy    int           // a trigger's proxy value
	Seq      uint64        // its number at the sending gateway
	Payload  []byte
}

// Batch is a batch's header: where its requests came from and where
// their answers go.
type Batch struct {
	IDPrefix string // the sending gateway's; with an entry's Seq its id
	Inbox    string // the sending gateway's inbox
}

// Answer is one answer in an answer batch.
type Answer struct {
	Seq     uint64
	Working bool // a heartbeat
	Status  Status
	Detail  int
	Data    []byte
}

const (
	batchMagic      = "GSB1"
	answersMagic    = "GSA1"
	batchHeaderSize = 8
	entryHeaderSize = 36
	answerSize      = 20
	// MaxFromName bounds the sending program's name: a SIMPL name, with
	// "#k" when it came from a concurrent Send of a Channel.
	MaxFromName = naming.MaxNameLen + 12
	// MaxIDPrefix bounds a batch's id prefix, and MaxInbox its inbox.
	MaxIDPrefix = 48
	MaxInbox    = 200
	// BatchEntryOverhead is what an entry takes beyond its payload, at
	// most.
	BatchEntryOverhead = entryHeaderSize + naming.MaxNameLen + MaxFromName
	// AnswerOverhead is what an answer takes beyond its data.
	AnswerOverhead = answerSize
)

// AppendBatch begins a batch: its header.
func AppendBatch(b []byte, h Batch) ([]byte, error) {
	if err := printable("id prefix", h.IDPrefix, MaxIDPrefix); err != nil {
		return b, err
	}
	if err := printable("inbox", h.Inbox, MaxInbox); err != nil {
		return b, err
	}
	b = append(b, batchMagic...)
	b = append(b, byte(len(h.IDPrefix)), byte(len(h.Inbox)), 0, 0)
	b = append(b, h.IDPrefix...)
	return append(b, h.Inbox...), nil
}

// AppendBatchEntry appends one request to a batch.
func AppendBatchEntry(b []byte, e *BatchEntry) ([]byte, error) {
	if err := e.check(); err != nil {
		return b, err
	}
	b = append(b, byte(e.Kind), byte(len(e.Name)), byte(len(e.FromName)), 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(e.MaxReply))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.Proxy))
	b = binary.LittleEndian.AppendUint32(b, uint32(e.FromPID))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.Timeout))
	b = binary.LittleEndian.AppendUint64(b, e.Seq)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(e.Payload)))
	b = append(b, e.Name...)
	b = append(b, e.FromName...)
	return append(b, e.Payload...), nil
}

// check holds an entry to what the kinds allow and the fields' ranges.
func (e *BatchEntry) check() error {
	switch {
	case !e.Kind.valid():
		return fmt.Errorf("%w: batch entry of %v", ErrBadEnvelope, e.Kind)
	case e.Name == "" || len(e.Name) > naming.MaxNameLen:
		return fmt.Errorf("%w: batch entry's name of %d bytes: want 1 to %d", ErrBadEnvelope, len(e.Name), naming.MaxNameLen)
	case e.FromPID < 1 || e.FromPID > math.MaxInt32:
		return fmt.Errorf("%w: batch entry's sender pid %d", ErrBadEnvelope, e.FromPID)
	case e.Timeout < 0:
		return fmt.Errorf("%w: batch entry's timeout %v", ErrBadEnvelope, e.Timeout)
	case e.MaxReply < 0 || int64(e.MaxReply) > math.MaxUint32:
		return fmt.Errorf("%w: batch entry's largest reply %d", ErrBadEnvelope, e.MaxReply)
	case e.Proxy < 0 || e.Proxy > math.MaxInt32:
		return fmt.Errorf("%w: batch entry's proxy %d", ErrBadEnvelope, e.Proxy)
	case len(e.Payload) > MaxPayload:
		return fmt.Errorf("%w: batch entry of %d bytes, at most %d", ErrBadEnvelope, len(e.Payload), MaxPayload)
	case e.Kind == KindSend && e.Proxy != 0,
		e.Kind == KindTrigger && (e.Proxy < 1 || len(e.Payload) != 0 || e.MaxReply != 0),
		e.Kind == KindLocate && (e.Proxy != 0 || len(e.Payload) != 0 || e.MaxReply != 0):
		return fmt.Errorf("%w: batch entry: a %v with proxy %d, %d bytes, largest reply %d", ErrBadEnvelope, e.Kind, e.Proxy, len(e.Payload), e.MaxReply)
	}
	return printable("batch entry's sender name", e.FromName, MaxFromName)
}

// printable checks a field that is a name, an id or a subject: 1 to max
// bytes, printable ASCII, no space.
func printable(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s of %d bytes: want 1 to %d", ErrBadEnvelope, what, len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %s %q: byte %#x at %d", ErrBadEnvelope, what, s, c, i)
		}
	}
	return nil
}

// DecodeBatch reads a batch: its header, then each entry in turn, handed
// to each with the header (its Payload aliases b); each returning false
// stops it. Every length is checked against what is left before it is
// used. An entry whose framing is sound but whose fields are not is
// handed over with its error (so that its sender can be told); a batch
// whose framing is not stops with the error, after the entries before
// it.
func DecodeBatch(b []byte, each func(h Batch, e BatchEntry, err error) bool) (Batch, error) {
	if len(b) < batchHeaderSize {
		return Batch{}, fmt.Errorf("%w: batch of %d bytes, the header alone is %d", ErrBadEnvelope, len(b), batchHeaderSize)
	}
	if string(b[:4]) != batchMagic {
		return Batch{}, fmt.Errorf("%w: batch magic %q", ErrBadEnvelope, b[:4])
	}
	if b[6] != 0 || b[7] != 0 {
		return Batch{}, fmt.Errorf("%w: batch reserved bytes %#x %#x", ErrBadEnvelope, b[6], b[7])
	}
	il, nl := int(b[4]), int(b[5])
	if len(b) < batchHeaderSize+il+nl {
		return Batch{}, fmt.Errorf("%w: batch header of %d bytes in %d", ErrBadEnvelope, batchHeaderSize+il+nl, len(b))
	}
	h := Batch{IDPrefix: string(b[8 : 8+il]), Inbox: string(b[8+il : 8+il+nl])}
	if err := printable("id prefix", h.IDPrefix, MaxIDPrefix); err != nil {
		return Batch{}, err
	}
	if err := printable("inbox", h.Inbox, MaxInbox); err != nil {
		return Batch{}, err
	}
	b = b[batchHeaderSize+il+nl:]
	if len(b) == 0 {
		return Batch{}, fmt.Errorf("%w: a batch of no requests", ErrBadEnvelope)
	}
	for len(b) > 0 {
		if len(b) < entryHeaderSize {
			return h, fmt.Errorf("%w: batch entry of %d bytes, its header alone is %d", ErrBadEnvelope, len(b), entryHeaderSize)
		}
		if b[3] != 0 {
			return h, fmt.Errorf("%w: batch entry's reserved byte %#x", ErrBadEnvelope, b[3])
		}
		nlen, flen := int(b[1]), int(b[2])
		timeout := binary.LittleEndian.Uint64(b[16:])
		plen := binary.LittleEndian.Uint32(b[32:])
		if uint64(len(b)-entryHeaderSize) < uint64(nlen)+uint64(flen)+uint64(plen) {
			return h, fmt.Errorf("%w: batch entry of %d bytes in %d", ErrBadEnvelope, uint64(entryHeaderSize+nlen+flen)+uint64(plen), len(b))
		}
		e := BatchEntry{
			Kind:     Kind(b[0]),
			MaxReply: int(binary.LittleEndian.Uint32(b[4:])),
			Proxy:    int(binary.LittleEndian.Uint32(b[8:])),
			FromPID:  int(binary.LittleEndian.Uint32(b[12:])),
			Seq:      binary.LittleEndian.Uint64(b[24:]),
		}
		rest := b[entryHeaderSize:]
		e.Name = string(rest[:nlen])
		e.FromName = string(rest[nlen : nlen+flen])
		e.Payload = rest[nlen+flen : nlen+flen+int(plen)]
		b = rest[nlen+flen+int(plen):]
		var err error
		if timeout > math.MaxInt64 {
			err = fmt.Errorf("%w: batch entry's timeout %d ns", ErrBadEnvelope, timeout)
		} else {
			e.Timeout = time.Duration(timeout)
			err = e.check()
		}
		if !each(h, e, err) {
			return h, nil
		}
	}
	return h, nil
}

// AppendAnswers begins an answer batch.
func AppendAnswers(b []byte) []byte { return append(b, answersMagic...) }

// AppendAnswer appends one answer to an answer batch.
func AppendAnswer(b []byte, a *Answer) ([]byte, error) {
	if err := a.check(); err != nil {
		return b, err
	}
	var flags byte
	if a.Working {
		flags = 1
	}
	b = binary.LittleEndian.AppendUint64(b, a.Seq)
	b = append(b, byte(a.Status), flags, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(a.Detail))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(a.Data)))
	return append(b, a.Data...), nil
}

func (a *Answer) check() error {
	switch {
	case int(a.Status) >= len(statusNames):
		return fmt.Errorf("%w: answer of %v", ErrBadEnvelope, a.Status)
	case a.Detail < 0 || int64(a.Detail) > math.MaxUint32:
		return fmt.Errorf("%w: answer's detail %d", ErrBadEnvelope, a.Detail)
	case a.Working && (a.Status != StatusOK || a.Detail != 0 || len(a.Data) != 0):
		return fmt.Errorf("%w: a heartbeat with status %v, detail %d, %d bytes", ErrBadEnvelope, a.Status, a.Detail, len(a.Data))
	case a.Status != StatusOK && len(a.Data) != 0:
		return fmt.Errorf("%w: %v with %d bytes of reply", ErrBadEnvelope, a.Status, len(a.Data))
	case len(a.Data) > MaxPayload:
		return fmt.Errorf("%w: answer of %d bytes, at most %d", ErrBadEnvelope, len(a.Data), MaxPayload)
	}
	return nil
}

// DecodeAnswers reads an answer batch, handing each answer to each (its
// Data aliases b). As DecodeBatch, a bad field is handed over with its
// answer, and bad framing stops it.
func DecodeAnswers(b []byte, each func(a Answer, err error)) error {
	if len(b) < len(answersMagic) || string(b[:4]) != answersMagic {
		return fmt.Errorf("%w: not an answer batch (%d bytes)", ErrBadEnvelope, len(b))
	}
	b = b[4:]
	if len(b) == 0 {
		return fmt.Errorf("%w: an answer batch of no answers", ErrBadEnvelope)
	}
	for len(b) > 0 {
		if len(b) < answerSize {
			return fmt.Errorf("%w: answer of %d bytes, its header alone is %d", ErrBadEnvelope, len(b), answerSize)
		}
		if b[11] != 0 || b[10] != 0 || b[9] > 1 {
			return fmt.Errorf("%w: answer flags % x", ErrBadEnvelope, b[9:12])
		}
		dlen := binary.LittleEndian.Uint32(b[16:])
		if uint64(len(b)-answerSize) < uint64(dlen) {
			return fmt.Errorf("%w: answer of %d bytes in %d", ErrBadEnvelope, uint64(answerSize)+uint64(dlen), len(b))
		}
		a := Answer{
			Seq:     binary.LittleEndian.Uint64(b),
			Status:  Status(b[8]),
			Working: b[9] == 1,
			Detail:  int(binary.LittleEndian.Uint32(b[12:])),
			Data:    b[answerSize : answerSize+int(dlen)],
		}
		b = b[answerSize+int(dlen):]
		each(a, a.check())
	}
	return nil
}
