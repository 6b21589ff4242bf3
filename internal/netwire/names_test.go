package netwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestNamesSubject(t *testing.T) {
	for _, host := range []string{"b", "plant-7.example.com", "a*b"} {
		s := NamesSubject(host)
		if !strings.HasPrefix(s, NamesPrefix) || strings.HasPrefix(s, SubjectPrefix) {
			t.Errorf("NamesSubject(%q) = %q: want it under %q, outside %q", host, s, NamesPrefix, SubjectPrefix)
		}
		got, err := ParseNamesSubject(s)
		if err != nil || got != host {
			t.Errorf("ParseNamesSubject(%q) = %q, %v", s, got, err)
		}
		if l := NamesListSubject(host, 0xab); !strings.HasSuffix(l, ".list.ab") || strings.HasSuffix(l, ".events") {
			t.Errorf("NamesListSubject(%q, 0xab) = %q", host, l)
		}
	}
	for _, bad := range []string{"gosimpl.names.v1.b.list.1", "gosimpl.names.v1.a.b.events", "gosimpl.v1.b.events", "gosimpl.names.v1.~.events", "gosimpl.names.v1.a~2.events"} {
		if h, err := ParseNamesSubject(bad); err == nil {
			t.Errorf("ParseNamesSubject(%q) = %q, want an error", bad, h)
		}
	}
}

// names are one message of each type, valid.
func sampleNames() []Names {
	return []Names{
		{Type: NamesEvents, Gen: 7, From: 3, To: 5, Records: []NameRecord{
			{Kind: NameAppeared, Transport: NameShm, Name: "SRV", PID: 100, UID: 0, Seq: 4, Since: 1700000000123456789},
			{Kind: NameDisappeared, Transport: NameFIFO, Name: "x.y", PID: 2, UID: 1000, Seq: 5, Since: -1},
		}},
		{Type: NamesSnapshot, Gen: 1, To: 9, Records: []NameRecord{{Kind: NameAppeared, Transport: NameFIFO, Name: "A", PID: 1}}},
		{Type: NamesSnapshot, Gen: 1, To: 0},
		{Type: NamesPresence, Gen: 1 << 60, To: 12},
		{Type: NamesBye, Gen: 3, To: 12},
	}
}

func TestNames(t *testing.T) {
	for _, n := range sampleNames() {
		b, err := AppendNames(nil, &n)
		if err != nil {
			t.Fatalf("AppendNames(%+v): %v", n, err)
		}
		if len(b) != n.NamesSize() {
			t.Errorf("%d bytes, NamesSize says %d", len(b), n.NamesSize())
		}
		got, err := DecodeNames(b)
		if err != nil || !reflect.DeepEqual(got, n) {
			t.Errorf("round trip: %+v, %v; want %+v", got, err, n)
		}
	}
	rec := func(kind uint8, seq uint64) NameRecord {
		return NameRecord{Kind: kind, Transport: NameFIFO, Name: "N", PID: 1, Seq: seq}
	}
	for what, n := range map[string]Names{
		"type":             {Type: 9, Gen: 1},
		"gen 0":            {Type: NamesPresence},
		"empty events":     {Type: NamesEvents, Gen: 1, From: 1, To: 2},
		"backwards":        {Type: NamesEvents, Gen: 1, From: 2, To: 2, Records: []NameRecord{rec(1, 2)}},
		"seq past To":      {Type: NamesEvents, Gen: 1, From: 0, To: 1, Records: []NameRecord{rec(1, 2)}},
		"seq not rising":   {Type: NamesEvents, Gen: 1, From: 0, To: 3, Records: []NameRecord{rec(1, 2), rec(2, 2)}},
		"kind":             {Type: NamesEvents, Gen: 1, From: 0, To: 1, Records: []NameRecord{rec(3, 1)}},
		"snapshot seq":     {Type: NamesSnapshot, Gen: 1, To: 1, Records: []NameRecord{rec(1, 1)}},
		"snapshot gone":    {Type: NamesSnapshot, Gen: 1, To: 1, Records: []NameRecord{rec(2, 0)}},
		"snapshot from":    {Type: NamesSnapshot, Gen: 1, From: 1, To: 1},
		"presence records": {Type: NamesPresence, Gen: 1, Records: []NameRecord{rec(1, 0)}},
		"bad name":         {Type: NamesSnapshot, Gen: 1, Records: []NameRecord{{Kind: 1, Transport: 1, Name: "a:b", PID: 1}}},
		"pid 0":            {Type: NamesSnapshot, Gen: 1, Records: []NameRecord{{Kind: 1, Transport: 1, Name: "a", PID: 0}}},
		"transport":        {Type: NamesSnapshot, Gen: 1, Records: []NameRecord{{Kind: 1, Transport: 3, Name: "a", PID: 1}}},
	} {
		if _, err := AppendNames(nil, &n); !errors.Is(err, ErrBadNames) {
			t.Errorf("%s: AppendNames = %v, want ErrBadNames", what, err)
		}
	}
	good, _ := AppendNames(nil, &sampleNames()[0])
	for what, mutate := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:20] },
		"magic":        func(b []byte) []byte { b[3] = '9'; return b },
		"reserved":     func(b []byte) []byte { b[6] = 1; return b },
		"count huge":   func(b []byte) []byte { binary.LittleEndian.PutUint32(b[32:], 1<<31); return b },
		"count less":   func(b []byte) []byte { b[32] = 1; return b },
		"name long":    func(b []byte) []byte { b[namesHeaderSize+2] = 200; return b },
		"record pad":   func(b []byte) []byte { b[namesHeaderSize+3] = 1; return b },
		"trailing":     func(b []byte) []byte { return append(b, 0) },
		"cut":          func(b []byte) []byte { return b[:len(b)-1] },
		"pid negative": func(b []byte) []byte { b[namesHeaderSize+7] = 0x80; return b },
		"events gen 0": func(b []byte) []byte { copy(b[8:16], make([]byte, 8)); return b },
		"name has nul": func(b []byte) []byte { b[namesHeaderSize+recordSize] = 0; return b },
		"no such type": func(b []byte) []byte { b[4] = 0; return b },
	} {
		b := mutate(bytes.Clone(good))
		if n, err := DecodeNames(b); !errors.Is(err, ErrBadNames) {
			t.Errorf("%s: DecodeNames = %+v, %v; want ErrBadNames", what, n, err)
		}
	}
}

func FuzzDecodeNames(f *testing.F) {
	for _, n := range sampleNames() {
		b, _ := AppendNames(nil, &n)
		f.Add(b)
	}
	f.Add([]byte(namesMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNames(b)
		if err != nil {
			if !errors.Is(err, ErrBadNames) {
				t.Fatalf("error %v is not ErrBadNames", err)
			}
			return
		}
		again, err := AppendNames(nil, &n)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("DecodeNames(%x) = %+v, which encodes as %x, %v", b, n, again, err)
		}
	})
}
