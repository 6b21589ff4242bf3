package netwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/gosimpl/gosimpl/naming"
)

// snapshotOf is a snapshot of n names, every third of the longest length.
func snapshotOf(n int) Names {
	s := Names{Type: NamesSnapshot, Gen: 0xfeed, To: 42}
	for i := range n {
		name := fmt.Sprintf("N%d", i)
		if i%3 == 0 {
			name += strings.Repeat("x", naming.MaxNameLen-len(name))
		}
		s.Records = append(s.Records, NameRecord{Kind: NameAppeared, Transport: NameShm, Name: name, PID: 1000 + i, UID: i % 7, Since: int64(i)})
	}
	return s
}

// A snapshot split into parts: each part fits, encodes and decodes as
// itself, and the parts' records in order are the snapshot's; an empty
// snapshot is one part; a split into parts smaller than MinPart is
// refused.
func TestSplitSnapshot(t *testing.T) {
	for _, c := range []struct{ names, maxPart int }{{0, MinPart}, {1, MinPart}, {300, MinPart}, {300, 2048}, {300, 1 << 20}, {5000, 4096}} {
		s := snapshotOf(c.names)
		parts, err := SplitSnapshot(&s, c.maxPart)
		if err != nil {
			t.Fatalf("%d names in parts of %d: %v", c.names, c.maxPart, err)
		}
		var got []NameRecord
		for i, p := range parts {
			b, err := AppendNamesPart(nil, &p)
			if err != nil {
				t.Fatalf("%d names in parts of %d: part %d: %v", c.names, c.maxPart, i, err)
			}
			if len(b) > c.maxPart || len(b) != p.NamesPartSize() {
				t.Errorf("%d names in parts of %d: part %d is %d bytes (NamesPartSize %d)", c.names, c.maxPart, i, len(b), p.NamesPartSize())
			}
			back, err := DecodeNamesPart(b)
			if err != nil || !reflect.DeepEqual(back, p) {
				t.Fatalf("part %d round trip: %+v, %v; want %+v", i, back, err, p)
			}
			if p.Part != i || p.Parts != len(parts) || p.Total != c.names || p.Names.Gen != s.Gen || p.Names.To != s.To {
				t.Errorf("part %d: %d of %d, total %d, gen %x, to %d", i, p.Part, p.Parts, p.Total, p.Names.Gen, p.Names.To)
			}
			got = append(got, p.Names.Records...)
		}
		if !reflect.DeepEqual(got, s.Records) && !(len(got) == 0 && len(s.Records) == 0) {
			t.Errorf("%d names in parts of %d: the parts hold %d records, not the snapshot's", c.names, c.maxPart, len(got))
		}
		t.Logf("%d names in parts of at most %d bytes: %d parts", c.names, c.maxPart, len(parts))
	}
	s := snapshotOf(3)
	if _, err := SplitSnapshot(&s, MinPart-1); !errors.Is(err, ErrBadNamesPart) {
		t.Errorf("parts of MinPart-1 bytes: %v, want ErrBadNamesPart", err)
	}
	ev := sampleNames()[0]
	if _, err := SplitSnapshot(&ev, 1<<20); !errors.Is(err, ErrBadNamesPart) {
		t.Errorf("splitting events: %v, want ErrBadNamesPart", err)
	}
}

func samplePart() NamesPart {
	return NamesPart{Part: 1, Parts: 3, Total: 5, Names: Names{Type: NamesSnapshot, Gen: 9, To: 4, Records: []NameRecord{
		{Kind: NameAppeared, Transport: NameFIFO, Name: "A", PID: 3, UID: 1000, Since: 17},
		{Kind: NameAppeared, Transport: NameShm, Name: "B.c", PID: 4}}}}
}

func TestNamesPartErrors(t *testing.T) {
	snap := samplePart().Names
	for what, p := range map[string]NamesPart{
		"not a snapshot":  {Parts: 1, Total: 2, Names: sampleNames()[0]},
		"no parts":        {Parts: 0, Total: 1, Names: snap},
		"part past":       {Part: 3, Parts: 3, Total: 5, Names: snap},
		"more parts":      {Part: 0, Parts: 6, Total: 5, Names: snap},
		"more than total": {Part: 0, Parts: 1, Total: 1, Names: snap},
		"empty part":      {Part: 0, Parts: 2, Total: 2, Names: Names{Type: NamesSnapshot, Gen: 1}},
		"bad snapshot":    {Part: 0, Parts: 1, Total: 2, Names: Names{Type: NamesSnapshot, Gen: 0, Records: snap.Records}},
	} {
		if _, err := AppendNamesPart(nil, &p); !errors.Is(err, ErrBadNamesPart) && !errors.Is(err, ErrBadNames) {
			t.Errorf("%s: AppendNamesPart = %v, want an error", what, err)
		}
	}
	p := samplePart()
	good, err := AppendNamesPart(nil, &p)
	if err != nil {
		t.Fatal(err)
	}
	for what, mutate := range map[string]func([]byte) []byte{
		"short":       func(b []byte) []byte { return b[:10] },
		"magic":       func(b []byte) []byte { b[0] = 'X'; return b },
		"part past":   func(b []byte) []byte { b[4] = 3; return b },
		"parts huge":  func(b []byte) []byte { binary.LittleEndian.PutUint32(b[8:], 1<<31); return b },
		"total small": func(b []byte) []byte { b[12] = 1; return b },
		"inner magic": func(b []byte) []byte { b[partHeaderSize] = 'X'; return b },
		"inner type":  func(b []byte) []byte { b[partHeaderSize+4] = byte(NamesPresence); return b },
		"trailing":    func(b []byte) []byte { return append(b, 0) },
	} {
		b := mutate(bytes.Clone(good))
		if p, err := DecodeNamesPart(b); !errors.Is(err, ErrBadNamesPart) {
			t.Errorf("%s: DecodeNamesPart = %+v, %v; want ErrBadNamesPart", what, p, err)
		}
	}

	l, err := AppendNamesList(nil, NamesList{MaxPart: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeNamesList(l); err != nil || got.MaxPart != 4096 {
		t.Errorf("list request round trip: %+v, %v", got, err)
	}
	if _, err := AppendNamesList(nil, NamesList{MaxPart: MinPart - 1}); !errors.Is(err, ErrBadNamesPart) {
		t.Errorf("AppendNamesList of MinPart-1: %v, want ErrBadNamesPart", err)
	}
	small := bytes.Clone(l)
	binary.LittleEndian.PutUint32(small[4:], MinPart-1)
	for what, b := range map[string][]byte{"empty": nil, "short": l[:7], "long": append(bytes.Clone(l), 0), "magic": append([]byte("GSLX"), l[4:]...), "small": small} {
		if got, err := DecodeNamesList(b); !errors.Is(err, ErrBadNamesPart) {
			t.Errorf("%s: DecodeNamesList = %+v, %v; want ErrBadNamesPart", what, got, err)
		}
	}
}

func FuzzDecodeNamesPart(f *testing.F) {
	p := samplePart()
	b, _ := AppendNamesPart(nil, &p)
	f.Add(b)
	s := snapshotOf(0)
	parts, _ := SplitSnapshot(&s, MinPart)
	b, _ = AppendNamesPart(nil, &parts[0])
	f.Add(b)
	f.Add([]byte(partMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeNamesPart(b)
		if err != nil {
			if !errors.Is(err, ErrBadNamesPart) {
				t.Fatalf("error %v is not ErrBadNamesPart", err)
			}
			return
		}
		again, err := AppendNamesPart(nil, &p)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("DecodeNamesPart(%x) = %+v, which encodes as %x, %v", b, p, again, err)
		}
	})
}

func FuzzDecodeNamesList(f *testing.F) {
	b, _ := AppendNamesList(nil, NamesList{MaxPart: 1 << 20})
	f.Add(b)
	f.Add([]byte(listMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeNamesList(b)
		if err != nil {
			if !errors.Is(err, ErrBadNamesPart) {
				t.Fatalf("error %v is not ErrBadNamesPart", err)
			}
			return
		}
		again, err := AppendNamesList(nil, l)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("DecodeNamesList(%x) = %+v, which encodes as %x, %v", b, l, again, err)
		}
	})
}
