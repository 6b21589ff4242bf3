package fifo

import (
	"errors"
	"testing"

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
