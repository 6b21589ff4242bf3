package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/nats-io/nats.go"
)

// TestMain runs the helper roles, and checks, once the tests are done,
// that they left nothing behind.
func TestMain(m *testing.M) { proctest.Main(m, roles) }

// roles are the helper processes the tests start.
var roles = map[string]proctest.Role{"skewsend": runSkewSend}

func sample() request {
	return request{kind: netwire.KindSend, timeout: 1500 * time.Millisecond, maxReply: 4096, fromHost: "a", fromName: "fcsend_12#3", fromPID: 12, id: "0123abcd-7"}
}

// A request's headers read back as they were written, for every kind.
func TestRequestHeader(t *testing.T) {
	for _, r := range []request{
		sample(),
		{kind: netwire.KindSend, maxReply: 0, fromHost: "plant-7.example.com", fromName: "X", fromPID: 1, id: "i"},
		{kind: netwire.KindTrigger, proxy: 5, fromHost: "a", fromName: "P", fromPID: 99, id: "t-1"},
		{kind: netwire.KindLocate, timeout: 1, fromHost: "a", fromName: "L", fromPID: 2, id: "l-1"},
	} {
		got, err := parseRequest(r.header())
		if err != nil || got != r {
			t.Errorf("parseRequest(%+v's header) = %+v, %v", r, got, err)
		}
	}
}

// Headers that are missing, repeated, out of range, or do not fit the
// kind are refused, each with an error that says which.
func TestRequestHeaderBad(t *testing.T) {
	for _, c := range []struct {
		why  string
		edit func(h nats.Header)
	}{
		{"no kind", func(h nats.Header) { h.Del(netwire.HeaderKind) }},
		{"unknown kind", func(h nats.Header) { h.Set(netwire.HeaderKind, "relay") }},
		{"two kinds", func(h nats.Header) { h.Add(netwire.HeaderKind, "send") }},
		{"timeout 0", func(h nats.Header) { h.Set(netwire.HeaderTimeout, "0") }},
		{"timeout negative", func(h nats.Header) { h.Set(netwire.HeaderTimeout, "-5") }},
		{"timeout not decimal", func(h nats.Header) { h.Set(netwire.HeaderTimeout, "1s") }},
		{"timeout with a plus", func(h nats.Header) { h.Set(netwire.HeaderTimeout, "+5") }},
		{"timeout too big", func(h nats.Header) { h.Set(netwire.HeaderTimeout, "9223372036854775808") }},
		{"no max reply", func(h nats.Header) { h.Del(netwire.HeaderMaxReply) }},
		{"max reply too big", func(h nats.Header) { h.Set(netwire.HeaderMaxReply, "4294967296") }},
		{"proxy on a send", func(h nats.Header) { h.Set(netwire.HeaderProxy, "3") }},
		{"no host", func(h nats.Header) { h.Del(netwire.HeaderFromHost) }},
		{"host too long", func(h nats.Header) { h.Set(netwire.HeaderFromHost, strings.Repeat("h", 52)) }},
		{"name with a space", func(h nats.Header) { h.Set(netwire.HeaderFromName, "a b") }},
		{"empty name", func(h nats.Header) { h.Set(netwire.HeaderFromName, "") }},
		{"pid 0", func(h nats.Header) { h.Set(netwire.HeaderFromPID, "0") }},
		{"no id", func(h nats.Header) { h.Del(netwire.HeaderID) }},
		{"id too long", func(h nats.Header) { h.Set(netwire.HeaderID, strings.Repeat("i", maxID+1)) }},
		{"id with a control byte", func(h nats.Header) { h.Set(netwire.HeaderID, "a\x01") }},
	} {
		r := sample()
		h := r.header()
		c.edit(h)
		if got, err := parseRequest(h); err == nil || !errors.Is(err, netwire.ErrBadEnvelope) {
			t.Errorf("%s: parseRequest = %+v, %v; want ErrBadEnvelope", c.why, got, err)
		}
	}
	trigger := request{kind: netwire.KindTrigger, proxy: 1, fromHost: "a", fromName: "P", fromPID: 1, id: "x"}
	h := trigger.header()
	h.Set(netwire.HeaderMaxReply, "10")
	if _, err := parseRequest(h); err == nil {
		t.Error("a trigger with a largest reply was taken")
	}
	h = trigger.header()
	h.Set(netwire.HeaderProxy, "0")
	if _, err := parseRequest(h); err == nil {
		t.Error("a trigger of proxy 0 was taken")
	}
	locate := request{kind: netwire.KindLocate, fromHost: "a", fromName: "P", fromPID: 1, id: "x"}
	h = locate.header()
	h.Set(netwire.HeaderProxy, "2")
	if _, err := parseRequest(h); err == nil {
		t.Error("a locate with a proxy was taken")
	}
}

// Answers: heartbeats, every status with its detail, NATS's "no
// responders", and what is refused.
func TestAnswer(t *testing.T) {
	a, err := parseAnswer(&nats.Msg{Header: answerHeader(StatusWorking, 0)})
	if err != nil || !a.working {
		t.Errorf("heartbeat: %+v, %v", a, err)
	}
	for s := netwire.StatusOK; s <= netwire.StatusFull; s++ {
		m := &nats.Msg{Header: answerHeader(s.String(), 77)}
		if s == netwire.StatusOK {
			m.Data = []byte("reply")
		}
		a, err := parseAnswer(m)
		if err != nil || a.working || a.status != s || a.detail != 77 {
			t.Errorf("%v: %+v, %v", s, a, err)
		}
	}
	if a, err := parseAnswer(&nats.Msg{Header: answerHeader("ok", 0)}); err != nil || a.detail != 0 {
		t.Errorf("ok without a detail: %+v, %v", a, err)
	}
	nr := &nats.Msg{Header: nats.Header{}}
	nr.Header.Set(natsStatus, noResponders)
	if a, err := parseAnswer(nr); err != nil || a.status != netwire.StatusUnreachable {
		t.Errorf("no responders: %+v, %v", a, err)
	}
	bad := []*nats.Msg{
		{Header: nats.Header{}},
		{Header: answerHeader("fine", 0)},
		{Header: answerHeader("not_found", 0), Data: []byte("x")},
		{Header: answerHeader(StatusWorking, 0), Data: []byte("x")},
		{Header: nats.Header{netwire.HeaderStatus: {"ok", "ok"}}},
		{Header: nats.Header{netwire.HeaderStatus: {"too_large"}, netwire.HeaderDetail: {"-1"}}},
		{Header: nats.Header{netwire.HeaderStatus: {"too_large"}, netwire.HeaderDetail: {"4294967296"}}},
	}
	for _, m := range bad {
		if a, err := parseAnswer(m); err == nil {
			t.Errorf("parseAnswer(%v, %q) = %+v, want an error", m.Header, m.Data, a)
		}
	}
}

// The statuses a gateway answers with become, for the sending program,
// the errors package transport names (through netwire.Status.Err), and
// the local Send's errors map to those statuses (netwire.StatusOf): the
// whole chain a remote Send's outcome takes.
func TestStatusChain(t *testing.T) {
	for s := netwire.StatusOK; s <= netwire.StatusFull; s++ {
		m := &nats.Msg{Header: answerHeader(s.String(), 5)}
		a, err := parseAnswer(m)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		err = a.status.Err(a.detail)
		if (err == nil) != (s == netwire.StatusOK) {
			t.Errorf("%v: error %v", s, err)
		}
	}
}

// seen tells a repeated id within its window, forgets ids older than the
// window, and holds at most its bound, forgetting the oldest first.
func TestSeen(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newSeen(time.Minute, 4)
	if !s.add("a", t0) || s.add("a", t0.Add(time.Second)) {
		t.Fatal("a repeated id within the window was not told")
	}
	if !s.add("a", t0.Add(61*time.Second)) {
		t.Fatal("an id older than the window was still remembered")
	}
	for i := range 4 {
		if !s.add(strconv.Itoa(i), t0.Add(62*time.Second)) {
			t.Fatalf("new id %d taken for a repeat", i)
		}
	}
	if s.n != 4 || len(s.ids) != 4 {
		t.Fatalf("holding %d ids (map %d), bound 4", s.n, len(s.ids))
	}
	if !s.add("a", t0.Add(62*time.Second)) {
		t.Error("the oldest id was not the one forgotten at the bound")
	}
	if s.add("3", t0.Add(62*time.Second)) {
		t.Error("a recent id was forgotten")
	}
}

// Check refuses listeners and connections beyond loopback without TLS
// and authentication, in one line naming what is exposed, unless
// Insecure; and refuses contradictory flags.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pem")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsAll := func(n Network) Network { n.TLSCert, n.TLSKey, n.TLSCA = f, f, f; return n }
	for _, c := range []struct {
		n        Network
		insecure bool // want ErrInsecure
		bad      bool // want another error
	}{
		{Network{}, false, false},
		{Network{Listen: "127.0.0.1:0"}, false, false},
		{Network{Listen: "localhost:4222", Cluster: "127.0.0.1:6222"}, false, false},
		{Network{Listen: "0.0.0.0:4222"}, true, false},
		{Network{Listen: "10.0.0.1:4222"}, true, false},
		{Network{Listen: ":4222"}, true, false},
		{Network{Cluster: "10.0.0.1:6222"}, true, false},
		{Network{Cluster: "127.0.0.1:6222", Routes: []string{"nats://10.0.0.2:6222"}}, true, false},
		{Network{Listen: "0.0.0.0:4222", Insecure: true}, false, false},
		{tlsAll(Network{Listen: "0.0.0.0:4222", Cluster: "0.0.0.0:6222"}), false, false},
		{Network{Listen: "0.0.0.0:4222", TLSCert: f, TLSKey: f}, true, false}, // TLS without client certificates: no authentication
		{Network{NATS: []string{"nats://10.0.0.1:4222"}}, true, false},
		{Network{NATS: []string{"tls://10.0.0.1:4222"}}, true, false}, // no credentials
		{Network{NATS: []string{"tls://10.0.0.1:4222"}, Creds: f}, false, false},
		{Network{NATS: []string{"nats://127.0.0.1:4222"}}, false, false},
		{Network{NATS: []string{"nats://10.0.0.1:4222"}, Creds: f, TLSCA: f}, false, false},
		{Network{NATS: []string{"nats://10.0.0.1:4222"}, Insecure: true}, false, false},
		{Network{NATS: []string{"nats://h:4222"}, Listen: "127.0.0.1:1"}, false, true},
		{Network{NATS: []string{"http://h:4222"}}, false, true},
		{Network{Routes: []string{"nats://127.0.0.1:6222"}}, false, true},
		{Network{Listen: "127.0.0.1:70000"}, false, true},
		{Network{Listen: "nohost"}, false, true},
		{Network{TLSCert: f}, false, true},
		{Network{NATS: []string{"tls://h:1"}, Creds: f, NKey: f}, false, true},
		{Network{Creds: f}, false, true},
		{Network{NATS: []string{"tls://h:1"}, Creds: filepath.Join(dir, "missing")}, false, true},
	} {
		err := c.n.Check()
		switch {
		case c.insecure && !errors.Is(err, ErrInsecure):
			t.Errorf("%+v: Check = %v, want ErrInsecure", c.n, err)
		case c.bad && (err == nil || errors.Is(err, ErrInsecure)):
			t.Errorf("%+v: Check = %v, want a flag error", c.n, err)
		case !c.insecure && !c.bad && err != nil:
			t.Errorf("%+v: Check = %v, want nil", c.n, err)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%+v: Check's error is more than one line: %q", c.n, err)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	r := sample()
	f.Add(r.header()[netwire.HeaderKind][0], "1500000000", "4096", "", "a", "fcsend_1", "12", "id-1")
	f.Add("trigger", "", "", "3", "b", "P", "1", "x")
	f.Add("locate", "", "", "", "h", "N", "99", "y")
	f.Add("send", "-1", "x", "0", "", "", "0", "")
	f.Fuzz(func(t *testing.T, kind, timeout, maxReply, proxy, host, name, pid, id string) {
		h := nats.Header{}
		for k, v := range map[string]string{
			netwire.HeaderKind: kind, netwire.HeaderTimeout: timeout, netwire.HeaderMaxReply: maxReply,
			netwire.HeaderProxy: proxy, netwire.HeaderFromHost: host, netwire.HeaderFromName: name,
			netwire.HeaderFromPID: pid, netwire.HeaderID: id,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		sized := nats.Header{netwire.HeaderSize: {pid}} // a request in chunks: its size
		for k, v := range h {
			sized[k] = v
		}
		for _, h := range []nats.Header{h, sized} {
			got, err := parseRequest(h)
			if err != nil {
				continue
			}
			if got.size < 0 || got.size > netwire.MaxPayload || (got.size > 0 && got.kind != netwire.KindSend) {
				t.Fatalf("%+v: a size out of range, or on a %v", got, got.kind)
			}
			// What it takes, it writes back the same.
			again, err := parseRequest(got.header())
			if err != nil || again != got {
				t.Fatalf("%+v: written back and read again: %+v, %v", got, again, err)
			}
		}
	})
}

// A gateway answers a program "bad message" with detail 0 only for the
// program's own unreadable envelope; an answer from the other host, which
// may follow a delivery, reaches the program as BadMessageCarried, so the
// program never takes it for a gateway that cannot read its sent time and
// sends the request again (helper-52).
func TestBadMessageToProgram(t *testing.T) {
	dir := proctest.Dir(t)
	srv, err := simpl.Attach("GW", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := simpl.Attach("PROG", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cli.Locate(ctx, "GW")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		answer func(simpl.Message)
		want   int
	}{
		{func(m simpl.Message) { reply(m, netwire.StatusBadMessage, 0, nil) }, netwire.BadMessageCarried},
		{unreadable, 0},
	} {
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 64)
			n, _ := c.Send(ctx, []byte("envelope"), buf)
			got <- buf[:n]
		}()
		m, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tc.answer(m)
		s, detail, _, err := netwire.DecodeReply(<-got)
		if err != nil || s != netwire.StatusBadMessage || detail != tc.want {
			t.Errorf("answer read %v detail %d (%v), want bad_message detail %d", s, detail, err, tc.want)
		}
	}
}

// seen's ring grows as ids come, keeping them oldest first across its
// wrap, and takes no memory for ids that never came.
func TestSeenGrows(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := newSeen(time.Minute, 300)
	if len(s.order) != 0 {
		t.Fatalf("a new seen holds a ring of %d", len(s.order))
	}
	add := func(from, to int, at time.Time) {
		for i := from; i < to; i++ {
			if !s.add(strconv.Itoa(i), at) {
				t.Fatalf("new id %d taken for a repeat", i)
			}
		}
	}
	add(0, 100, t0)
	add(100, 150, t0.Add(61*time.Second)) // the first 100 forgotten: the ring's head moves on
	add(150, 400, t0.Add(62*time.Second)) // grows with its head past 0, then fills to 300
	if s.n != 300 || len(s.ids) != 300 || len(s.order) != 300 {
		t.Fatalf("holding %d ids (map %d, ring %d), want 300", s.n, len(s.ids), len(s.order))
	}
	for i := 100; i < 400; i++ {
		if _, ok := s.ids[strconv.Itoa(i)]; !ok {
			t.Fatalf("id %d forgotten", i)
		}
		if got := s.order[(s.head+i-100)%len(s.order)].id; got != strconv.Itoa(i) {
			t.Fatalf("ring place %d holds id %s, want %d", i-100, got, i)
		}
	}
	add(400, 401, t0.Add(62*time.Second)) // at the bound: the oldest, 100, goes
	if _, ok := s.ids["100"]; ok || s.n != 300 {
		t.Errorf("at the bound, id 100 kept (%d held)", s.n)
	}
	if _, ok := s.ids["101"]; !ok {
		t.Error("at the bound, not the oldest id was forgotten")
	}
}
