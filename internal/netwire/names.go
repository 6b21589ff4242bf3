package netwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gosimpl/gosimpl/naming"
)

// Names across hosts (issue 13, item 7). Each host's gateway publishes
// its host's names on NamesSubject(host): every change as it happens
// (NamesEvents), a NamesPresence every NamesHeartbeat while it runs, and
// a NamesBye when it stops, each with its generation (a number its run
// picks: several gateways of one host each publish their own). It answers
// a request on NamesListSubject(host, gen) with a NamesSnapshot. Each
// message is one Names, encoded by AppendNames.
//
// The subjects are outside SubjectPrefix, so HostSubjects (what a
// gateway serves Sends on) does not take them; with a deployment's
// permissions, a host's user publishes on its NamesSubject and serves its
// NamesListSubject, and every gateway subscribes to NamesAllSubjects and
// may request any NamesListSubject.
const NamesPrefix = "gosimpl.names.v1."

// The timing of names across hosts: a gateway publishes a NamesPresence
// at least every NamesHeartbeat; a host none is heard from for
// NamesSilence is taken as gone, its names as disappeared. A gateway
// checks every 100 ms, so a host whose gateway is killed loses its names
// within NamesSilence + 100 ms of the last message it sent, under 2 s.
const (
	NamesHeartbeat = 500 * time.Millisecond
	NamesSilence   = 1500 * time.Millisecond
)

// NamesSubject is the subject host's gateway publishes its names' events,
// presence and goodbye on.
func NamesSubject(host string) string { return NamesPrefix + Token(host) + ".events" }

// NamesListSubject is the subject the gateway of host whose run is
// generation gen answers a request for a snapshot of its names on.
func NamesListSubject(host string, gen uint64) string {
	return NamesPrefix + Token(host) + ".list." + strconv.FormatUint(gen, 16)
}

// NamesAllSubjects is the wildcard of every host's NamesSubject.
const NamesAllSubjects = NamesPrefix + "*.events"

// ParseNamesSubject returns the host of a subject NamesSubject made.
func ParseNamesSubject(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, NamesPrefix)
	tok, ok2 := strings.CutSuffix(rest, ".events")
	if !ok || !ok2 || strings.Contains(tok, ".") {
		return "", fmt.Errorf("subject %q: want %sHOST.events", s, NamesPrefix)
	}
	host, err := Untoken(tok)
	if err != nil {
		return "", fmt.Errorf("subject %q: host: %w", s, err)
	}
	if host == "" || len(host) > naming.MaxHostLen {
		return "", fmt.Errorf("subject %q: host %q: want 1 to %d bytes", s, host, naming.MaxHostLen)
	}
	return host, nil
}

// NamesType is what a Names message says.
type NamesType uint8

// The types of Names.
const (
	// NamesEvents: the changes numbered From+1 to To, in order, as
	// Records (Kind NameAppeared or NameDisappeared, Seq each).
	NamesEvents NamesType = 1
	// NamesSnapshot: the names live at position To, as Records (Kind
	// NameAppeared, Seq 0); the answer to a list request.
	NamesSnapshot NamesType = 2
	// NamesPresence: the gateway runs; To is the position of its last
	// event. No Records.
	NamesPresence NamesType = 3
	// NamesBye: the gateway is stopping; its names go with it. No
	// Records.
	NamesBye NamesType = 4
)

func (t NamesType) valid() bool { return t >= NamesEvents && t <= NamesBye }

// Kinds of a NameRecord.
const (
	NameAppeared    uint8 = 1
	NameDisappeared uint8 = 2
)

// Transports of a NameRecord.
const (
	NameFIFO uint8 = 1 // FIFOs only
	NameShm  uint8 = 2 // shared memory (and FIFOs)
)

// Names is one message about a host's names. Gen identifies the
// gateway's run (it changes when the gateway restarts, and positions
// of another run mean nothing; several gateways of one host have one
// each); positions count its events.
type Names struct {
	Type     NamesType
	Gen      uint64
	From, To uint64 // NamesEvents: the events after From up to To; otherwise From is 0
	Records  []NameRecord
}

// NameRecord is one name, or one change of one.
type NameRecord struct {
	Kind      uint8  // NameAppeared or NameDisappeared
	Transport uint8  // NameFIFO or NameShm
	Name      string // as naming.CheckLocal accepts it
	PID       int    // on its host, 1 or more
	UID       int    // of its owner
	Seq       uint64 // NamesEvents: its position; otherwise 0
	Since     int64  // when it was attached, Unix nanoseconds
}

// ErrBadNames is what DecodeNames returns for bytes it cannot take.
var ErrBadNames = errors.New("simpl: bad names message")

// The wire form of Names, little-endian:
//
//	0      4      5        8     16     24   32      36
//	| GSM1 | type | 0 0 0  | gen | from | to | count | records...
//
// and each record:
//
//	0      1           2        3   4     8     12    20      28
//	| kind | transport | namelen| 0 | pid | uid | seq | since | name |
const (
	namesMagic      = "GSM1"
	namesHeaderSize = 36
	recordSize      = 28
)

// NamesSize is the size of n encoded.
func (n *Names) NamesSize() int {
	s := namesHeaderSize
	for i := range n.Records {
		s += n.Records[i].Size()
	}
	return s
}

// AppendNames appends n, encoded, to b, having checked it as DecodeNames
// does.
func AppendNames(b []byte, n *Names) ([]byte, error) {
	if err := n.check(); err != nil {
		return b, err
	}
	b = append(b, namesMagic...)
	b = append(b, byte(n.Type), 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, n.Gen)
	b = binary.LittleEndian.AppendUint64(b, n.From)
	b = binary.LittleEndian.AppendUint64(b, n.To)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(n.Records)))
	for _, r := range n.Records {
		b = append(b, r.Kind, r.Transport, byte(len(r.Name)), 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(r.PID))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.UID))
		b = binary.LittleEndian.AppendUint64(b, r.Seq)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Since))
		b = append(b, r.Name...)
	}
	return b, nil
}

// check reports what makes n unfit to send: the rules DecodeNames
// enforces.
func (n *Names) check() error {
	switch {
	case !n.Type.valid():
		return fmt.Errorf("%w: type %d", ErrBadNames, n.Type)
	case n.Gen == 0:
		return fmt.Errorf("%w: generation 0", ErrBadNames)
	case n.Type != NamesEvents && n.From != 0:
		return fmt.Errorf("%w: a type %d message from position %d", ErrBadNames, n.Type, n.From)
	case n.Type == NamesEvents && (len(n.Records) == 0 || n.From >= n.To):
		return fmt.Errorf("%w: events from %d to %d in %d records", ErrBadNames, n.From, n.To, len(n.Records))
	case (n.Type == NamesPresence || n.Type == NamesBye) && len(n.Records) != 0:
		return fmt.Errorf("%w: type %d with %d records", ErrBadNames, n.Type, len(n.Records))
	}
	last := n.From
	for i, r := range n.Records {
		if err := naming.CheckLocal(r.Name); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrBadNames, i, err)
		}
		switch {
		case r.Transport != NameFIFO && r.Transport != NameShm:
			return fmt.Errorf("%w: record %d: transport %d", ErrBadNames, i, r.Transport)
		case r.PID < 1 || r.PID > math.MaxInt32 || r.UID < 0 || int64(r.UID) > math.MaxUint32:
			return fmt.Errorf("%w: record %d: pid %d, uid %d", ErrBadNames, i, r.PID, r.UID)
		case n.Type == NamesSnapshot && (r.Kind != NameAppeared || r.Seq != 0):
			return fmt.Errorf("%w: snapshot record %d: kind %d, position %d", ErrBadNames, i, r.Kind, r.Seq)
		case n.Type == NamesEvents && r.Kind != NameAppeared && r.Kind != NameDisappeared:
			return fmt.Errorf("%w: record %d: kind %d", ErrBadNames, i, r.Kind)
		case n.Type == NamesEvents && (r.Seq <= last || r.Seq > n.To):
			return fmt.Errorf("%w: record %d: position %d after %d, at most %d", ErrBadNames, i, r.Seq, last, n.To)
		}
		last = r.Seq
	}
	return nil
}

// DecodeNames reads a Names from b. It allocates no more than b's size
// warrants, whatever its counts say.
func DecodeNames(b []byte) (Names, error) {
	if len(b) < namesHeaderSize {
		return Names{}, fmt.Errorf("%w: %d bytes, the header alone is %d", ErrBadNames, len(b), namesHeaderSize)
	}
	if string(b[:4]) != namesMagic {
		return Names{}, fmt.Errorf("%w: magic %q", ErrBadNames, b[:4])
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return Names{}, fmt.Errorf("%w: reserved bytes % x", ErrBadNames, b[5:8])
	}
	n := Names{
		Type: NamesType(b[4]),
		Gen:  binary.LittleEndian.Uint64(b[8:]),
		From: binary.LittleEndian.Uint64(b[16:]),
		To:   binary.LittleEndian.Uint64(b[24:]),
	}
	count := uint64(binary.LittleEndian.Uint32(b[32:]))
	rest := b[namesHeaderSize:]
	if count > uint64(len(rest)/recordSize) {
		return Names{}, fmt.Errorf("%w: %d records in %d bytes", ErrBadNames, count, len(rest))
	}
	if count > 0 {
		n.Records = make([]NameRecord, 0, count)
	}
	for i := uint64(0); i < count; i++ {
		if len(rest) < recordSize {
			return Names{}, fmt.Errorf("%w: record %d cut short", ErrBadNames, i)
		}
		nlen := int(rest[2])
		if rest[3] != 0 || len(rest) < recordSize+nlen {
			return Names{}, fmt.Errorf("%w: record %d: name of %d bytes in %d", ErrBadNames, i, nlen, len(rest)-recordSize)
		}
		r := NameRecord{
			Kind:      rest[0],
			Transport: rest[1],
			PID:       int(binary.LittleEndian.Uint32(rest[4:])),
			UID:       int(binary.LittleEndian.Uint32(rest[8:])),
			Seq:       binary.LittleEndian.Uint64(rest[12:]),
			Since:     int64(binary.LittleEndian.Uint64(rest[20:])),
			Name:      string(rest[recordSize : recordSize+nlen]),
		}
		n.Records = append(n.Records, r)
		rest = rest[recordSize+nlen:]
	}
	if len(rest) != 0 {
		return Names{}, fmt.Errorf("%w: %d bytes after the records", ErrBadNames, len(rest))
	}
	if err := n.check(); err != nil {
		return Names{}, err
	}
	return n, nil
}

// Size is the bytes r takes in a Names message.
func (r NameRecord) Size() int { return recordSize + len(r.Name) }

// SinceTime is r.Since as a time.
func (r NameRecord) SinceTime() time.Time { return time.Unix(0, r.Since) }

// Snapshots in parts. A host's names may not fit one NATS message (the
// server's max_payload: 1 MiB by default, as little as a few KiB in some
// deployments). A gateway that can take a snapshot in parts says so in its
// list request's body (a NamesList); the answering gateway then takes one
// snapshot, at one position, and publishes it to the request's reply
// subject as NamesParts numbered 0 to Parts-1, each fitting MaxPart, in
// order. A request with no body (a gateway that predates parts) is
// answered with one Names message, or with nothing when that would not
// fit.

// NamesList is the body of a list request from a gateway that takes a
// snapshot in parts.
type NamesList struct {
	// MaxPart is the size, in bytes, the asker takes each part at most:
	// the answerer's parts fit both its own and this.
	MaxPart int
}

// ErrBadNamesPart is what DecodeNamesList and DecodeNamesPart return for
// bytes they cannot take.
var ErrBadNamesPart = errors.New("simpl: bad names snapshot part")

// The wire forms, little-endian:
//
//	list request:  | GSL1 | max part (4) |
//	part:          | GSP1 | part (4) | parts (4) | total (4) | Names (a NamesSnapshot, as AppendNames) |
const (
	listMagic      = "GSL1"
	listSize       = 8
	partMagic      = "GSP1"
	partHeaderSize = 16
)

// MinPart is the smallest MaxPart a part can be made in: the part's
// headers and one record of the longest name.
const MinPart = partHeaderSize + namesHeaderSize + recordSize + naming.MaxNameLen

// AppendNamesList appends l, encoded, to b.
func AppendNamesList(b []byte, l NamesList) ([]byte, error) {
	if l.MaxPart < MinPart || int64(l.MaxPart) > math.MaxUint32 {
		return b, fmt.Errorf("%w: parts of at most %d bytes, want %d to %d", ErrBadNamesPart, l.MaxPart, MinPart, uint32(math.MaxUint32))
	}
	b = append(b, listMagic...)
	return binary.LittleEndian.AppendUint32(b, uint32(l.MaxPart)), nil
}

// DecodeNamesList reads a NamesList from b.
func DecodeNamesList(b []byte) (NamesList, error) {
	if len(b) != listSize || string(b[:4]) != listMagic {
		return NamesList{}, fmt.Errorf("%w: a list request of %d bytes, want %d starting %q", ErrBadNamesPart, len(b), listSize, listMagic)
	}
	l := NamesList{MaxPart: int(binary.LittleEndian.Uint32(b[4:]))}
	if l.MaxPart < MinPart {
		return NamesList{}, fmt.Errorf("%w: parts of at most %d bytes, want %d or more", ErrBadNamesPart, l.MaxPart, MinPart)
	}
	return l, nil
}

// NamesPart is one part of a snapshot. Every part of one snapshot has the
// same Parts, Total, Names.Gen and Names.To; their Records, in part
// order, are the snapshot's names.
type NamesPart struct {
	Part, Parts int   // this part's number, from 0, of Parts
	Total       int   // the names in the whole snapshot
	Names       Names // a NamesSnapshot: this part's names
}

// NamesPartSize is the size of p encoded.
func (p *NamesPart) NamesPartSize() int { return partHeaderSize + p.Names.NamesSize() }

// AppendNamesPart appends p, encoded, to b, having checked it as
// DecodeNamesPart does.
func AppendNamesPart(b []byte, p *NamesPart) ([]byte, error) {
	if err := p.check(); err != nil {
		return b, err
	}
	b = append(b, partMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Part))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Parts))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Total))
	return AppendNames(b, &p.Names)
}

// check reports what makes p unfit to send. A part holds at least one
// name (but the one part of an empty snapshot), and no more than the
// snapshot; there are no more parts than names.
func (p *NamesPart) check() error {
	n := len(p.Names.Records)
	switch {
	case p.Names.Type != NamesSnapshot:
		return fmt.Errorf("%w: a part of type %d, want a snapshot", ErrBadNamesPart, p.Names.Type)
	case p.Parts < 1 || p.Part < 0 || p.Part >= p.Parts || int64(p.Parts) > math.MaxUint32:
		return fmt.Errorf("%w: part %d of %d", ErrBadNamesPart, p.Part, p.Parts)
	case p.Total < 0 || int64(p.Total) > math.MaxUint32 || p.Parts > max(p.Total, 1):
		return fmt.Errorf("%w: %d parts for %d names", ErrBadNamesPart, p.Parts, p.Total)
	case n > p.Total || (n == 0 && p.Total > 0):
		return fmt.Errorf("%w: part %d of %d holds %d of %d names", ErrBadNamesPart, p.Part, p.Parts, n, p.Total)
	}
	return p.Names.check()
}

// DecodeNamesPart reads a NamesPart from b. It allocates no more than b's
// size warrants, whatever its counts say.
func DecodeNamesPart(b []byte) (NamesPart, error) {
	if len(b) < partHeaderSize || string(b[:4]) != partMagic {
		return NamesPart{}, fmt.Errorf("%w: %d bytes, want %d or more starting %q", ErrBadNamesPart, len(b), partHeaderSize, partMagic)
	}
	p := NamesPart{
		Part:  int(binary.LittleEndian.Uint32(b[4:])),
		Parts: int(binary.LittleEndian.Uint32(b[8:])),
		Total: int(binary.LittleEndian.Uint32(b[12:])),
	}
	var err error
	if p.Names, err = DecodeNames(b[partHeaderSize:]); err != nil {
		return NamesPart{}, fmt.Errorf("%w: %w", ErrBadNamesPart, err)
	}
	if err := p.check(); err != nil {
		return NamesPart{}, err
	}
	return p, nil
}

// SplitSnapshot splits snapshot s into parts of at most maxPart bytes
// each (MinPart or more), in order.
func SplitSnapshot(s *Names, maxPart int) ([]NamesPart, error) {
	if s.Type != NamesSnapshot {
		return nil, fmt.Errorf("%w: splitting a type %d message", ErrBadNamesPart, s.Type)
	}
	if maxPart < MinPart {
		return nil, fmt.Errorf("%w: parts of at most %d bytes, want %d or more", ErrBadNamesPart, maxPart, MinPart)
	}
	var parts []NamesPart
	cur := NamesPart{Total: len(s.Records), Names: Names{Type: NamesSnapshot, Gen: s.Gen, To: s.To}}
	size := partHeaderSize + namesHeaderSize
	for _, r := range s.Records {
		rs := r.Size()
		if size+rs > maxPart && len(cur.Names.Records) > 0 {
			parts = append(parts, cur)
			cur.Names.Records, size = nil, partHeaderSize+namesHeaderSize
		}
		cur.Names.Records = append(cur.Names.Records, r)
		size += rs
	}
	parts = append(parts, cur)
	for i := range parts {
		parts[i].Part, parts[i].Parts = i, len(parts)
	}
	return parts, nil
}
