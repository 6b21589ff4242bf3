package fifo

import (
	"errors"
	"testing"
	"unsafe"

	"github.com/gosimpl/gosimpl/transport"
)

func TestHeaderRoundTrip(t *testing.T) {
	s := &segment{mem: make([]byte, HeaderSize+100)}
	s.writeHeader("CLI#3", 42, 100, 60, 80)
	copy(s.data(60), "payload")
	h, err := s.readHeader()
	if err != nil || h != (header{whom: "CLI#3", pid: 42, nbytes: 60, ybytes: 80}) {
		t.Fatalf("readHeader = %+v, %v", h, err)
	}
}

func TestHeaderRejects(t *testing.T) {
	mk := func(f func(s *segment)) *segment {
		s := &segment{mem: make([]byte, HeaderSize+16)}
		s.writeHeader("CLI", 7, 16, 4, 4)
		f(s)
		return s
	}
	for name, s := range map[string]*segment{
		"short segment":  {mem: make([]byte, HeaderSize-1)},
		"no NUL":         mk(func(s *segment) { copy(s.mem[:whomLen], "0123456789012345678901234567890123") }),
		"slash in name":  mk(func(s *segment) { copy(s.mem, "../etc\x00") }),
		"empty name":     mk(func(s *segment) { s.mem[0] = 0 }),
		"pid 0":          mk(func(s *segment) { s.put(offPID, 0) }),
		"nbytes past":    mk(func(s *segment) { s.put(offNBytes, 17) }),
		"nbytes huge":    mk(func(s *segment) { s.put(offNBytes, 1<<30) }),
		"nbytes < 0":     mk(func(s *segment) { s.put(offNBytes, -1) }),
		"ybytes < 0":     mk(func(s *segment) { s.put(offYBytes, -5) }),
		"name with hash": mk(func(s *segment) { copy(s.mem, "#1\x00") }),
	} {
		if _, err := s.readHeader(); !errors.Is(err, transport.ErrBadMessage) {
			t.Errorf("%s: %v, want ErrBadMessage", name, err)
		}
	}
	// A reply limit beyond the segment is capped, not trusted.
	s := mk(func(s *segment) { s.put(offYBytes, 1<<30) })
	if h, err := s.readHeader(); err != nil || h.ybytes != 16 {
		t.Errorf("ybytes past the segment: %+v, %v", h, err)
	}
}

// FuzzReadHeader: whatever a sender (or anyone) leaves in a segment, the
// receiver's reading is an error or a header whose sizes lie within it.
func FuzzReadHeader(f *testing.F) {
	ok := &segment{mem: make([]byte, HeaderSize+8)}
	ok.writeHeader("SRV", 1, 8, 8, 8)
	f.Add(ok.mem)
	f.Add(make([]byte, HeaderSize))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, mem []byte) {
		s := &segment{mem: mem}
		h, err := s.readHeader()
		if err != nil {
			if !errors.Is(err, transport.ErrBadMessage) {
				t.Fatalf("error %v is not ErrBadMessage", err)
			}
			return
		}
		if h.nbytes < 0 || h.nbytes > s.capacity() || h.ybytes < 0 || h.ybytes > s.capacity() || h.pid <= 0 {
			t.Fatalf("accepted %+v for a %d-byte segment", h, len(mem))
		}
		if checkWhom(h.whom) != nil {
			t.Fatalf("accepted sender name %q", h.whom)
		}
		_ = s.data(h.nbytes)
	})
}

// segmentOf is the System V segment a received request came in.
func segmentOf(r transport.Request) int {
	h, _ := r.Handle()
	return h.(*Request).SegmentID()
}

// The holder word: a tagged word gives its pid, pending or not, and
// says whether it is pending; an untagged one (a pid from a relayer of a
// build before the tag, or data of a sender before the trailer had a
// holder) gives its pid if it can be one, and is never pending; a
// settled word loses only the pending bit, and only if unchanged.
func TestHolderWord(t *testing.T) {
	mem := make([]uint64, (HeaderSize+64+trailerSize)/8+1)
	s := &segment{mem: unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), len(mem)*8)}
	for _, c := range []struct {
		word    uint64
		pid     int
		pending bool
		tagged  bool
	}{
		{holderTag, 0, false, true},
		{holderTag | 1234, 1234, false, true},
		{holderTag | holderPending | 1234, 1234, true, true},
		{1234, 1234, false, false},
		{0, 0, false, false},
		{holderTag ^ 1<<40 | holderPending | 1234, 0, false, false}, // one bit off the tag
		{1<<62 | 1234, 0, false, false},                             // data, not a pid
		{0x6f7a6f7a6f7a6f7a, 0, false, false},
	} {
		s.storeHolderWord(c.word)
		if got := s.holder(); got != c.pid {
			t.Errorf("word %#x: holder %d, want %d", c.word, got, c.pid)
		}
		if got := s.holderIsPending(); got != c.pending {
			t.Errorf("word %#x: pending %v, want %v", c.word, got, c.pending)
		}
		if got := tagged(c.word); got != c.tagged {
			t.Errorf("word %#x: tagged %v, want %v", c.word, got, c.tagged)
		}
	}
	w := holderTag | holderPending | 77
	s.storeHolderWord(w)
	s.settleHolder(w)
	if got := s.holderWord(); got != holderTag|77 {
		t.Errorf("settled: %#x, want %#x", got, holderTag|77)
	}
	s.storeHolderWord(holderTag | holderPending | 88) // relayed on meanwhile
	s.settleHolder(w)
	if got := s.holderWord(); got != holderTag|holderPending|88 {
		t.Errorf("settling a word that changed: %#x, want it left %#x", got, holderTag|holderPending|88)
	}
}
