package netwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleBatch(t testing.TB) ([]byte, Batch, []BatchEntry) {
	h := Batch{IDPrefix: "0123456789abcdef01234567", Inbox: "_GS_INBOX.a.gw0123"}
	entries := []BatchEntry{
		{Kind: KindSend, Name: "SRV", FromName: "fcsend_12", FromPID: 12, Timeout: 3 * time.Second, MaxReply: 64, Seq: 1, Payload: []byte("hello")},
		{Kind: KindTrigger, Name: "LOG.x", FromName: "p#3", FromPID: 7, Proxy: 9, Seq: 2},
		{Kind: KindLocate, Name: strings.Repeat("n", 31), FromName: strings.Repeat("f", MaxFromName), FromPID: 1<<31 - 1, Seq: 1<<64 - 1},
		{Kind: KindSend, Name: "E", FromName: "e", FromPID: 1, Seq: 4},
	}
	b, err := AppendBatch(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		if b, err = AppendBatchEntry(b, &entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b, h, entries
}

func TestBatch(t *testing.T) {
	b, h, want := sampleBatch(t)
	var got []BatchEntry
	gh, err := DecodeBatch(b, func(_ Batch, e BatchEntry, err error) bool {
		if err != nil {
			t.Errorf("entry %d: %v", len(got), err)
		}
		if len(e.Payload) == 0 {
			e.Payload = nil
		}
		got = append(got, e)
		return true
	})
	if err != nil || gh != h {
		t.Fatalf("DecodeBatch: %+v, %v", gh, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries:\n got %+v\nwant %+v", got, want)
	}

	// Every cut of it fails cleanly, never reads beyond, and never
	// hands over a partial entry.
	for n := 0; n < len(b); n++ {
		cut := append([]byte(nil), b[:n]...)
		k := 0
		_, err := DecodeBatch(cut, func(_ Batch, e BatchEntry, err error) bool {
			if err != nil || !reflect.DeepEqual(e.Name, want[k].Name) {
				t.Errorf("cut at %d: entry %d: %+v, %v", n, k, e, err)
			}
			k++
			return true
		})
		if err == nil && n != len(b) {
			// A cut exactly between entries is a shorter batch.
			if k == 0 || k == len(want) {
				t.Errorf("cut at %d: no error with %d entries", n, k)
			}
		}
		if err != nil && !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("cut at %d: %v is not ErrBadEnvelope", n, err)
		}
	}
}

func TestBadBatch(t *testing.T) {
	good, _, _ := sampleBatch(t)
	hlen := batchHeaderSize + int(good[4]) + int(good[5])
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, c := range []struct {
		what  string
		b     []byte
		entry bool // the framing holds: the first entry is handed over with an error
	}{
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), false},
		{"reserved", mod(func(b []byte) []byte { b[7] = 1; return b }), false},
		{"no entries", good[:hlen], false},
		{"empty prefix", mod(func(b []byte) []byte { b[4] = 0; return b }), false},
		{"prefix with a space", mod(func(b []byte) []byte { b[8] = ' '; return b }), false},
		{"payload beyond", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[hlen+32:], 1<<32-1); return b }), false},
		{"entry reserved", mod(func(b []byte) []byte { b[hlen+3] = 1; return b }), false},
		{"kind", mod(func(b []byte) []byte { b[hlen] = 9; return b }), true},
		{"no name", mod(func(b []byte) []byte {
			// The name's byte becomes the sender name's first.
			b[hlen+1], b[hlen+2] = 0, b[hlen+2]+3
			return b
		}), true},
		{"pid 0", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[hlen+12:], 0); return b }), true},
		{"timeout", mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[hlen+16:], 1<<63); return b }), true},
		{"send with a proxy", mod(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[hlen+8:], 5); return b }), true},
	} {
		first := true
		_, err := DecodeBatch(c.b, func(_ Batch, e BatchEntry, eerr error) bool {
			if first && c.entry && eerr == nil {
				t.Errorf("%s: first entry taken: %+v", c.what, e)
			}
			first = false
			return true
		})
		if c.entry {
			if err != nil || first {
				t.Errorf("%s: %v, entries handed over: %v", c.what, err, !first)
			}
			continue
		}
		if !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: %v, want ErrBadEnvelope", c.what, err)
		}
	}
	for _, e := range []BatchEntry{
		{Kind: KindTrigger, Name: "A", FromName: "b", FromPID: 1, Proxy: 0},
		{Kind: KindLocate, Name: "A", FromName: "b", FromPID: 1, Payload: []byte("x")},
		{Kind: KindSend, Name: "A", FromName: "b c", FromPID: 1},
		{Kind: KindSend, Name: strings.Repeat("n", 32), FromName: "b", FromPID: 1},
		{Kind: KindSend, Name: "A", FromName: "b", FromPID: 0},
	} {
		if _, err := AppendBatchEntry(nil, &e); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("AppendBatchEntry(%+v): %v, want ErrBadEnvelope", e, err)
		}
	}
	if _, err := AppendBatch(nil, Batch{IDPrefix: "p", Inbox: strings.Repeat("i", MaxInbox+1)}); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("AppendBatch with a long inbox: %v", err)
	}
}

func TestAnswers(t *testing.T) {
	want := []Answer{
		{Seq: 1, Status: StatusOK, Data: []byte("reply")},
		{Seq: 2, Working: true},
		{Seq: 3, Status: StatusTooLarge, Detail: 1 << 20},
		{Seq: 1<<64 - 1, Status: StatusOK},
	}
	b := AppendAnswers(nil)
	for i := range want {
		var err error
		if b, err = AppendAnswer(b, &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	var got []Answer
	if err := DecodeAnswers(b, func(a Answer, err error) {
		if err != nil {
			t.Errorf("answer %d: %v", len(got), err)
		}
		if len(a.Data) == 0 {
			a.Data = nil
		}
		got = append(got, a)
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("answers:\n got %+v\nwant %+v", got, want)
	}
	for _, a := range []Answer{
		{Seq: 1, Working: true, Status: StatusBusy},
		{Seq: 1, Status: StatusRejected, Data: []byte("x")},
		{Seq: 1, Status: Status(99)},
	} {
		if _, err := AppendAnswer(nil, &a); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("AppendAnswer(%+v): %v", a, err)
		}
	}
	for n := 0; n < len(b); n++ {
		err := DecodeAnswers(b[:n], func(Answer, error) {})
		if err == nil && n < 5 {
			t.Errorf("cut at %d: no error", n)
		}
	}
	bad := append([]byte(nil), b...)
	bad[4+9] = 2 // flags
	if err := DecodeAnswers(bad, func(Answer, error) {}); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("bad flags: %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	b, _, _ := sampleBatch(f)
	f.Add(b)
	f.Add(b[:20])
	f.Add([]byte("GSB1\x01\x01\x00\x00pi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeBatch(b, func(_ Batch, e BatchEntry, err error) bool {
			if err != nil {
				return true
			}
			// What was taken is what would be written.
			again, werr := AppendBatchEntry(nil, &e)
			if werr != nil {
				t.Fatalf("entry %+v taken, not written: %v", e, werr)
			}
			if !bytes.Contains(b, again) {
				t.Fatalf("entry %+v written differently: % x", e, again)
			}
			return true
		})
		if err == nil {
			if _, err := AppendBatch(nil, h); err != nil {
				t.Fatalf("header %+v taken, not written: %v", h, err)
			}
		}
	})
}

func FuzzDecodeAnswers(f *testing.F) {
	b := AppendAnswers(nil)
	b, _ = AppendAnswer(b, &Answer{Seq: 7, Status: StatusOK, Data: []byte("ok")})
	b, _ = AppendAnswer(b, &Answer{Seq: 8, Working: true})
	f.Add(b)
	f.Add([]byte("GSA1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = DecodeAnswers(b, func(a Answer, err error) {
			if err != nil {
				return
			}
			again, werr := AppendAnswer(nil, &a)
			if werr != nil || !bytes.Contains(b, again) {
				t.Fatalf("answer %+v taken: written % x, %v", a, again, werr)
			}
		})
	})
}
