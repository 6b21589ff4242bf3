package transport

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestOrigin(t *testing.T) {
	o := &Origin{Host: "plant-7.example.com", Name: "CTL#3", PID: 1<<31 - 1}
	b, err := AppendOrigin([]byte("req"), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)-3 > MaxOrigin {
		t.Errorf("encoded in %d bytes, more than MaxOrigin %d", len(b)-3, MaxOrigin)
	}
	got, err := DecodeOrigin(b[3:])
	if err != nil || got != *o {
		t.Errorf("DecodeOrigin = %+v, %v; want %+v", got, err, *o)
	}
	long, err := AppendOrigin(nil, &Origin{Host: strings.Repeat("h", 51), Name: strings.Repeat("n", 43), PID: 1})
	if err != nil || len(long) != MaxOrigin {
		t.Errorf("the longest origin: %d bytes, %v; want MaxOrigin, %d", len(long), err, MaxOrigin)
	}
	for _, bad := range []Origin{{Host: ""}, {Host: strings.Repeat("h", 52)}, {Host: "h", Name: strings.Repeat("n", 44)}, {Host: "h", PID: -1}} {
		if _, err := AppendOrigin(nil, &bad); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("AppendOrigin(%+v) = %v, want ErrBadOrigin", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {1, 'h'}, {1, 'h', 0, 1, 2, 3}, {1, 'h', 0, 1, 2, 3, 4, 5}, {1, ' ', 0, 1, 0, 0, 0}, {52}, {1, 'h', 44}, {1, 'h', 0, 0, 0, 0, 0x80}} {
		if o, err := DecodeOrigin(bad); !errors.Is(err, ErrBadOrigin) {
			t.Errorf("DecodeOrigin(%q) = %+v, %v; want ErrBadOrigin", bad, o, err)
		}
	}
	ctx := context.Background()
	if OriginFrom(ctx) != nil {
		t.Error("an origin in a plain context")
	}
	if OriginFrom(WithOrigin(ctx, o)) != o {
		t.Error("WithOrigin's origin not found")
	}
}

func FuzzDecodeOrigin(f *testing.F) {
	for _, o := range []Origin{{Host: "a", Name: "B", PID: 1}, {Host: "h.example", PID: 99}} {
		b, _ := AppendOrigin(nil, &o)
		f.Add(b)
	}
	f.Add([]byte{1, 'h', 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOrigin(b)
		if err != nil {
			if !errors.Is(err, ErrBadOrigin) {
				t.Fatalf("error %v is not ErrBadOrigin", err)
			}
			return
		}
		// What it takes, it writes back the same.
		again, err := AppendOrigin(nil, &o)
		if err != nil || string(again) != string(b) {
			t.Fatalf("DecodeOrigin(%q) = %+v, which encodes as %q, %v", b, o, again, err)
		}
	})
}
