package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Requests and replies share one little-endian layout:
//
//	0       4    8     12    20      24     28
//	+-------+----+-----+-----+-------+------+---------------------+
//	| magic | id | pid | seq | extra | csum | random payload      |
//	+-------+----+-----+-----+-------+------+---------------------+
//
// id is the sender's number, pid its process (so an incarnation of a
// sender is told from the one before it), seq the request's number within
// that process. extra is, in a request, the reply size the sender asks for
// and, in a reply, the checksum of the request it answers. csum is a
// CRC-32C of every other byte. A reply that fails its checksum is corrupt;
// one with a good checksum that names another id, pid, seq or request
// checksum is crossed.
const (
	reqMagic = 0x4b414f53 // "SOAK"
	repMagic = 0x4c504552 // "REPL"
	hdrLen   = 28
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a request's or a reply's fixed fields.
type header struct {
	magic uint32
	id    uint32
	pid   uint32
	seq   uint64
	extra uint32
	csum  uint32
}

func (h header) String() string {
	return fmt.Sprintf("sender %d pid %d seq %d", h.id, h.pid, h.seq)
}

// checksum is the CRC-32C of b without its csum field.
func checksum(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:24])
	return crc32.Update(c, castagnoli, b[hdrLen:])
}

// seal writes h (but its csum) into b, whose payload is already filled,
// and returns the checksum it stored.
func seal(b []byte, h header) uint32 {
	le := binary.LittleEndian
	le.PutUint32(b[0:], h.magic)
	le.PutUint32(b[4:], h.id)
	le.PutUint32(b[8:], h.pid)
	le.PutUint64(b[12:], h.seq)
	le.PutUint32(b[20:], h.extra)
	sum := checksum(b)
	le.PutUint32(b[24:], sum)
	return sum
}

// open reads b's header and checks its size, checksum and magic.
func open(b []byte, magic uint32) (header, error) {
	if len(b) < hdrLen {
		return header{}, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), hdrLen)
	}
	le := binary.LittleEndian
	h := header{
		magic: le.Uint32(b[0:]),
		id:    le.Uint32(b[4:]),
		pid:   le.Uint32(b[8:]),
		seq:   le.Uint64(b[12:]),
		extra: le.Uint32(b[20:]),
		csum:  le.Uint32(b[24:]),
	}
	if sum := checksum(b); sum != h.csum {
		return h, fmt.Errorf("%d bytes, checksum %08x, stored %08x (header says %v)", len(b), sum, h.csum, h)
	}
	if h.magic != magic {
		return h, fmt.Errorf("%d bytes, magic %08x, want %08x (header says %v)", len(b), h.magic, magic, h)
	}
	return h, nil
}

// Outcomes of checking a reply.
const (
	okReply = iota
	corruptReply
	crossedReply
)

// checkReply checks reply b against the request it answers (req, whose
// checksum is req.csum).
func checkReply(b []byte, req header) (int, string) {
	h, err := open(b, repMagic)
	if err != nil {
		return corruptReply, fmt.Sprintf("reply to %v: %v", req, err)
	}
	if h.id != req.id || h.pid != req.pid || h.seq != req.seq || h.extra != req.csum {
		return crossedReply, fmt.Sprintf("reply to %v (request checksum %08x) is for %v (request checksum %08x)", req, req.csum, h, h.extra)
	}
	if len(b) != int(req.extra) {
		return corruptReply, fmt.Sprintf("reply to %v: %d bytes, asked for %d", req, len(b), req.extra)
	}
	return okReply, ""
}
