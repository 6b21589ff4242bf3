package netwire

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

func TestSubject(t *testing.T) {
	for _, c := range []struct{ to, name, from, want string }{
		{"vm", "SRV", "a", "gosimpl.v3.vm.SRV.a"},
		{"plant-7.example.com", "dots.are.ok", "b.c", "gosimpl.v3.plant-7~2Eexample~2Ecom.dots~2Eare~2Eok.b~2Ec"},
		{"h", "a*b>c~d", "x>", "gosimpl.v3.h.a~2Ab~3Ec~7Ed.x~3E"},
		{"", "x", "", "gosimpl.v3.~.x.~"},
	} {
		got := Subject(c.to, c.name, c.from)
		if got != c.want {
			t.Errorf("Subject(%q, %q, %q) = %q, want %q", c.to, c.name, c.from, got, c.want)
		}
		to, n, from, err := ParseSubject(got)
		if err != nil || to != c.to || n != c.name || from != c.from {
			t.Errorf("ParseSubject(%q) = %q, %q, %q, %v", got, to, n, from, err)
		}
	}
	if got := HostSubjects("a.b"); got != "gosimpl.v3.a~2Eb.*.*" {
		t.Errorf("HostSubjects = %q", got)
	}
	if got := FromSubjects("a.b"); got != "gosimpl.v3.*.*.a~2Eb" {
		t.Errorf("FromSubjects = %q", got)
	}
	for _, bad := range []string{"gosimpl.v1.h.n.f", "gosimpl.v2.h.n.f", "gosimpl.v3.h.n", "gosimpl.v3.h.n.f.x", "gosimpl.v3.h.~2e.f", "gosimpl.v3.h.~41.f", "gosimpl.v3.h.a~4.f", "gosimpl.v3..n.f", "gosimpl.v3.h.a b.f", "gosimpl.v3.h.n.", "gosimpl.v3.h.n.*"} {
		if to, n, from, err := ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) = %q, %q, %q, want an error", bad, to, n, from)
		}
	}
}

func FuzzUntoken(f *testing.F) {
	for _, s := range []string{"SRV", "~", "a~2Eb", "~2e", "~41", "a~", "", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Every string survives Token and Untoken, and a token is one.
		tok := Token(s)
		if strings.ContainsAny(tok, ".*> \t\r\n") || tok == "" {
			t.Fatalf("Token(%q) = %q is not one subject token", s, tok)
		}
		if back, err := Untoken(tok); err != nil || back != s {
			t.Fatalf("Untoken(Token(%q)) = %q, %v", s, back, err)
		}
		// Whatever Untoken accepts, Token makes again (one spelling).
		if v, err := Untoken(s); err == nil && Token(v) != s {
			t.Fatalf("Untoken(%q) = %q, whose Token is %q", s, v, Token(v))
		}
	})
}

func mustName(t testing.TB, s string) naming.Name {
	n, err := naming.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnvelope(t *testing.T) {
	for _, e := range []Envelope{
		{Kind: KindSend, Target: mustName(t, "vm:SRV"), Timeout: 1500 * time.Millisecond, MaxReply: 1 << 20, Sent: 123456789012, Payload: []byte("hello")},
		{Kind: KindSend, Target: mustName(t, "_simplTCP:h.example:S"), Payload: nil},
		{Kind: KindTrigger, Target: mustName(t, "h:S"), Proxy: 7},
		{Kind: KindLocate, Target: mustName(t, "h:S"), Timeout: time.Second},
	} {
		b, err := AppendEnvelope([]byte("x"), &e)
		if err != nil {
			t.Fatal(err)
		}
		if len(b)-1 != e.EnvelopeSize() {
			t.Errorf("%d bytes, EnvelopeSize says %d", len(b)-1, e.EnvelopeSize())
		}
		got, err := DecodeEnvelope(b[1:])
		if err != nil {
			t.Fatalf("DecodeEnvelope(AppendEnvelope(%+v)): %v", e, err)
		}
		if got.Kind != e.Kind || got.Target != e.Target || got.Timeout != e.Timeout || got.MaxReply != e.MaxReply || got.Proxy != e.Proxy || got.Sent != e.Sent || !bytes.Equal(got.Payload, e.Payload) {
			t.Errorf("round trip: %+v, want %+v", got, e)
		}
	}
	// Without a sent time an envelope is "GSN1", which gateways built
	// before the sent field take: the target follows proxy at 24.
	v1 := []byte("GSN1\x01\x06\x00\x00")
	v1 = append(v1, 0x00, 0xe1, 0xf5, 0x05, 0, 0, 0, 0) // 100 ms
	v1 = append(v1, 64, 0, 0, 0, 0, 0, 0, 0)
	v1 = append(v1, "vm:SRVhello"...)
	if got, err := DecodeEnvelope(v1); err != nil || got.Kind != KindSend || got.Target != mustName(t, "vm:SRV") || got.Timeout != 100*time.Millisecond ||
		got.MaxReply != 64 || got.Sent != 0 || string(got.Payload) != "hello" {
		t.Errorf("DecodeEnvelope(GSN1) = %+v, %v", got, err)
	}
	if again, err := AppendEnvelope(nil, &Envelope{Kind: KindSend, Target: mustName(t, "vm:SRV"), Timeout: 100 * time.Millisecond, MaxReply: 64, Payload: []byte("hello")}); err != nil || !bytes.Equal(again, v1) {
		t.Errorf("AppendEnvelope without a sent time: %q, %v; want GSN1 %q", again, err, v1)
	}
	for _, e := range []Envelope{
		{Kind: KindSend, Target: mustName(t, "SRV")},
		{Kind: 9, Target: mustName(t, "h:S")},
		{Kind: KindSend, Target: mustName(t, "h:S"), MaxReply: -1},
		{Kind: KindSend, Target: mustName(t, "h:S"), Timeout: -1},
		{Kind: KindSend, Target: mustName(t, "h:S"), Sent: -1},
	} {
		if _, err := AppendEnvelope(nil, &e); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("AppendEnvelope(%+v) = %v, want ErrBadEnvelope", e, err)
		}
	}
	good, _ := AppendEnvelope(nil, &Envelope{Kind: KindTrigger, Target: mustName(t, "h:S"), Proxy: 3, Sent: 5})
	for name, mutate := range map[string]func([]byte) []byte{
		"short":        func(b []byte) []byte { return b[:10] },
		"magic":        func(b []byte) []byte { b[0] = 'X'; return b },
		"kind":         func(b []byte) []byte { b[4] = 0; return b },
		"reserved":     func(b []byte) []byte { b[7] = 1; return b },
		"target long":  func(b []byte) []byte { b[5] = 200; return b },
		"target cut":   func(b []byte) []byte { return b[:len(b)-1] },
		"local target": func(b []byte) []byte { b[5] = 0; return b },
		"proxy 0":      func(b []byte) []byte { b[20] = 0; return b },
		"proxy huge":   func(b []byte) []byte { b[23] = 0x80; return b },
		"timeout":      func(b []byte) []byte { b[15] = 0x80; return b },
		"sent":         func(b []byte) []byte { b[31] = 0x80; return b },
		"sent 0":       func(b []byte) []byte { b[24] = 0; return b },
		"short v1":     func(b []byte) []byte { copy(b, "GSN1"); return b[:23] },
		"trigger data": func(b []byte) []byte { return append(b, 'x') },
	} {
		b := mutate(bytes.Clone(good))
		if e, err := DecodeEnvelope(b); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("%s: DecodeEnvelope = %+v, %v; want ErrBadEnvelope", name, e, err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, e := range []Envelope{
		{Kind: KindSend, Target: naming.Name{Host: "vm", Name: "SRV"}, Timeout: time.Second, MaxReply: 64, Payload: []byte("hi")},
		{Kind: KindTrigger, Target: naming.Name{Protocol: "_simplTCP", Host: "h", Name: "S"}, Proxy: 1},
	} {
		b, _ := AppendEnvelope(nil, &e)
		f.Add(b)
	}
	f.Add([]byte("GSN1"))
	f.Add([]byte("GSN1\x02\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00h:S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("error %v is not ErrBadEnvelope", err)
			}
			return
		}
		again, err := AppendEnvelope(nil, &e)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("DecodeEnvelope(%x) = %+v, which encodes as %x, %v", b, e, again, err)
		}
	})
}

func TestStatus(t *testing.T) {
	for s := StatusOK; int(s) < len(statusNames); s++ {
		got, err := ParseStatus(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s.String(), got, err)
		}
		err = s.Err(5)
		if (err == nil) != (s == StatusOK) {
			t.Errorf("%v.Err = %v", s, err)
		}
		back, _ := StatusOf(err)
		want := s
		if s == StatusClosed {
			want = StatusPeerGone // the sender cannot tell the two apart, nor need to
		}
		if s == StatusBusy || s == StatusFull {
			want = StatusUnreachable // nothing was sent, either way
		}
		if back != want {
			t.Errorf("StatusOf(%v.Err()) = %v", s, back)
		}
	}
	for err, want := range map[error]Status{
		transport.TooLarge(100, 64):                          StatusTooLarge,
		transport.ReplyTooLarge(100, 64):                     StatusReplyTooLarge,
		context.DeadlineExceeded:                             StatusDeadline,
		errors.New("what"):                                   StatusUnknown,
		transport.ErrClosed:                                  StatusPeerGone,
		&transport.LaneLimitError{Per: "process", Limit: 64}: StatusBusy,
	} {
		if got, _ := StatusOf(err); got != want {
			t.Errorf("StatusOf(%v) = %v, want %v", err, got, want)
		}
	}
	// A receiver that took no more, behind the other host's gateway, is
	// ErrTooManyLanes for the remote sender too: nothing delivered
	// (helper-65: it was "outcome unknown").
	if s, d := StatusOf(&transport.LaneLimitError{Per: "process", Limit: 64}); s != StatusBusy || d != 0 {
		t.Errorf("ErrTooManyLanes: %v detail %d, want busy detail 0", s, d)
	} else if err := s.Err(d); !errors.Is(err, transport.ErrTooManyLanes) {
		t.Errorf("StatusBusy.Err(0) = %v, want ErrTooManyLanes", err)
	}
	if _, d := StatusOf(transport.TooLarge(100, 64)); d != 64 {
		t.Errorf("a too-large status carries %d, want the limit 64", d)
	}
	var se *transport.SizeError
	if err := StatusTooLarge.Err(64); !errors.As(err, &se) || se.Limit != 64 {
		t.Errorf("StatusTooLarge.Err(64) = %v", err)
	}
	if _, err := ParseStatus("fine"); err == nil {
		t.Error("ParseStatus(fine) succeeded")
	}
}

func TestReplyHeader(t *testing.T) {
	b := AppendReplyHeader(nil, StatusOK, 0)
	b = append(b, "reply"...)
	s, d, r, err := DecodeReply(b)
	if err != nil || s != StatusOK || d != 0 || string(r) != "reply" {
		t.Fatalf("DecodeReply = %v, %d, %q, %v", s, d, r, err)
	}
	s, d, r, err = DecodeReply(AppendReplyHeader(nil, StatusTooLarge, 99))
	if err != nil || s != StatusTooLarge || d != 99 || len(r) != 0 {
		t.Fatalf("DecodeReply = %v, %d, %q, %v", s, d, r, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {99, 0, 0, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0, 0, 0}, append(AppendReplyHeader(nil, StatusRejected, 0), 'x')} {
		if _, _, _, err := DecodeReply(bad); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("DecodeReply(% x) = %v, want ErrBadEnvelope", bad, err)
		}
	}
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(append(AppendReplyHeader(nil, StatusOK, 0), "hi"...))
	f.Add(AppendReplyHeader(nil, StatusTooLarge, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, d, r, err := DecodeReply(b)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("error %v is not ErrBadEnvelope", err)
			}
			return
		}
		if again := append(AppendReplyHeader(nil, s, d), r...); !bytes.Equal(again, b) {
			t.Fatalf("DecodeReply(%x) = %v %d %x, which encodes as %x", b, s, d, r, again)
		}
	})
}

// The statuses of chunking say what the sender needs: how much of a
// request in chunks went out before it stopped (nothing delivered), and
// a gateway's byte limit, in KiB; both are ErrUnreachable, nothing sent.
func TestStatusChunks(t *testing.T) {
	for _, c := range []struct {
		s      Status
		detail int
		want   string
	}{
		{StatusUnreachable, 0, "no gateway serves the host"},
		{StatusUnreachable, 5242880, "5242880 bytes of the request went out in chunks, then no more could; nothing was delivered"},
		{StatusFull, 262144, "a gateway holds 262144 KiB of messages, its limit, and sent nothing"},
	} {
		err := c.s.Err(c.detail)
		if !errors.Is(err, transport.ErrUnreachable) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v.Err(%d) = %v, want ErrUnreachable saying %q", c.s, c.detail, err, c.want)
		}
	}
	if s, err := ParseStatus("full"); err != nil || s != StatusFull {
		t.Errorf(`ParseStatus("full") = %v, %v`, s, err)
	}
}
