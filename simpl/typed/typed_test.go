package typed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// Cross-process tests run against both transports: Auto (shared memory
// between gosimpl processes) and FIFO (C SIMPL's wire).
var transports = []string{"auto", simpl.FIFO}

func eachTransport(t *testing.T, f func(t *testing.T, tr string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { f(t, tr) })
	}
}

// env is a helper's environment: the test's FIFO directory and transport.
func env(dir string, tr string) []string {
	return []string{"FIFO_PATH=" + dir, "GOSIMPL_TRANSPORT=" + tr}
}

// client attaches name in this process and locates to.
func client(t *testing.T, dir string, tr string, name, to string) *simpl.Conn {
	t.Helper()
	ch, err := simpl.Attach(name, simpl.WithDir(dir), withTransport(tr))
	if err != nil {
		t.Fatalf("attach %q: %v", name, err)
	}
	t.Cleanup(func() { ch.Close() })
	conn, err := ch.Locate(context.Background(), to)
	if err != nil {
		t.Fatalf("locate %q: %v", to, err)
	}
	t.Cleanup(func() { conn.Close() })
	want := simpl.SHM
	if tr == simpl.FIFO {
		want = simpl.FIFO
	}
	if conn.Transport() != want {
		t.Fatalf("connection through %v, want %v", conn.Transport(), want)
	}
	return conn
}

// startServer runs roleServer as SRV.
func startServer(t *testing.T, dir string, tr string) *simpltest.Proc {
	t.Helper()
	return simpltest.Start(t, "server", env(dir, tr), "SRV")
}

// stopServer stops it with SIGTERM, which ends Serve's context, and checks
// that Serve returned and the helper exited cleanly, with nothing in its
// stderr that looks like a crash.
func stopServer(t *testing.T, p *simpltest.Proc) {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	if line := p.Expect("serve returned", 10*time.Second); !strings.HasSuffix(line, context.Canceled.Error()) {
		t.Errorf("server: %q", line)
	}
	if err := p.Wait(10 * time.Second); err != nil {
		t.Errorf("server: %v", err)
	}
	if s := p.Stderr(); strings.Contains(s, "goroutine ") && !strings.Contains(s, "panicked") {
		t.Errorf("server stderr: %s", s)
	}
}

// Many goroutines in two processes call one server at once; every reply
// and every error reply reaches the call it answers.
func TestConcurrentCalls(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, 2*time.Minute)
		srv := startServer(t, dir, tr)
		other := simpltest.Start(t, "client", env(dir, tr), "OTHER", "SRV", "4", "100")
		conn := client(t, dir, tr, "CLI", "SRV")
		if err := calls(ctx, conn, "CLI", 8, 200); err != nil {
			t.Error(err)
		}
		other.Expect("ok", time.Minute)
		if err := other.Wait(10 * time.Second); err != nil {
			t.Errorf("other client: %v", err)
		}
		stopServer(t, srv)
	})
}

// A slow request, received first, is answered after faster ones received
// after it: replies go out of order.
func TestOutOfOrder(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, time.Minute)
		srv := startServer(t, dir, tr)
		conn := client(t, dir, tr, "CLI", "SRV")

		type result struct {
			rep Slow
			err error
		}
		slow := make(chan result, 1)
		go func() {
			rep, err := typed.Call[Slow, Slow](ctx, conn, Slow{ID: 7})
			slow <- result{rep, err}
		}()
		srv.Expect("slow 7 received", 10*time.Second)
		for i := range 20 {
			rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{S: "fast", N: i})
			if err != nil || rep.N != i {
				t.Fatalf("fast call %d: %+v, %v", i, rep, err)
			}
		}
		select {
		case r := <-slow:
			t.Fatalf("the slow call was answered before it was let go: %+v", r)
		default:
		}
		if _, err := typed.Call[Open, Ack](ctx, conn, Open{}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-slow:
			if r.err != nil || r.rep.ID != 7 {
				t.Errorf("slow call: %+v, %v", r.rep, r.err)
			}
		case <-ctx.Done():
			t.Fatal("the slow call was never answered")
		}
		stopServer(t, srv)
	})
}

// The pool is bounded: with all 8 workers busy, the server takes no
// further message until one is free.
func TestWorkersBound(t *testing.T) {
	dir := simpltest.Dir(t)
	ctx := simpltest.Context(t, time.Minute)
	srv := startServer(t, dir, "auto")
	conn := client(t, dir, "auto", "CLI", "SRV")
	errs := make(chan error, 9)
	for id := range 8 {
		go func() {
			_, err := typed.Call[Slow, Slow](ctx, conn, Slow{ID: id})
			errs <- err
		}()
	}
	for range 8 {
		srv.Expect("received", 10*time.Second)
	}
	echoed := make(chan error, 1)
	go func() {
		_, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{})
		echoed <- err
	}()
	// A negative check over a window: nothing this process can see tells
	// that the ninth request is waiting at the server (over shared memory
	// it sits in the server's memory), so it is given 300 ms to be served
	// wrongly. A correct server never serves it before the gate opens, so
	// the check cannot fail spuriously, however slow the machine.
	select {
	case err := <-echoed:
		t.Fatalf("a ninth call was served while 8 workers were busy: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	srv.Signal(syscall.SIGUSR1) // opens the gate, as Open would
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("slow call: %v", err)
		}
	}
	if err := <-echoed; err != nil {
		t.Errorf("the ninth call, once a worker was free: %v", err)
	}
	stopServer(t, srv)
}

// A handler that returns ErrDeferred keeps its message without holding a
// worker; the messages are answered later, newest first, each from its own
// goroutine, and each answer reaches its own caller.
func TestDeferred(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, time.Minute)
		srv := startServer(t, dir, tr)
		conn := client(t, dir, tr, "CLI", "SRV")

		const n = 20 // more than the server's 8 workers
		type result struct {
			id  int
			rep HoldReply
			err error
		}
		results := make(chan result, n)
		for id := range n {
			go func() {
				rep, err := typed.Call[Hold, HoldReply](ctx, conn, Hold{ID: id})
				results <- result{id, rep, err}
			}()
		}
		srv.Expect(fmt.Sprintf("held %d", n), 20*time.Second)
		if rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{N: 1}); err != nil || rep.N != 1 {
			t.Fatalf("echo with %d held: %+v, %v", n, rep, err)
		}
		select {
		case r := <-results:
			t.Fatalf("a held call was answered before the release: %+v", r)
		default:
		}
		ack, err := typed.Call[Release, Ack](ctx, conn, Release{})
		if err != nil || ack.N != n {
			t.Fatalf("release: %+v, %v", ack, err)
		}
		var arrivals []int
		for range n {
			select {
			case r := <-results:
				switch {
				case r.err != nil:
					t.Errorf("held call %d: %v", r.id, r.err)
				case r.rep.ID != r.id:
					t.Errorf("held call %d got the answer for %d", r.id, r.rep.ID)
				case r.rep.Seq != n+1-r.rep.Arrival:
					t.Errorf("held call %d: arrival %d answered %d-th", r.id, r.rep.Arrival, r.rep.Seq)
				}
				arrivals = append(arrivals, r.rep.Arrival)
			case <-ctx.Done():
				t.Fatal("held calls not answered")
			}
		}
		slices.Sort(arrivals)
		for i, a := range arrivals {
			if a != i+1 {
				t.Fatalf("arrivals %v", arrivals)
			}
		}
		stopServer(t, srv)
	})
}

// Error replies arrive as *Error with their codes and match their
// sentinels; local limits give simpl's sentinels; the server serves on.
func TestErrors(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, time.Minute)
		srv := startServer(t, dir, tr)
		conn := client(t, dir, tr, "CLI", "SRV")
		alive := func(what string) {
			t.Helper()
			if rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{S: what, N: 1}); err != nil || rep.S != what {
				t.Fatalf("echo after %s: %+v, %v", what, rep, err)
			}
		}
		check := func(what string, err error, code typed.Code, msg string, sentinel error) {
			t.Helper()
			var e *typed.Error
			switch {
			case !errors.As(err, &e):
				t.Errorf("%s: %v, want an *Error", what, err)
			case e.Code != code || !strings.Contains(e.Message, msg):
				t.Errorf("%s: code %v %q, want %v containing %q", what, e.Code, e.Message, code, msg)
			case !errors.Is(err, typed.ErrRemote) || !errors.Is(err, simpl.ErrRejected):
				t.Errorf("%s: %v does not match ErrRemote and ErrRejected", what, err)
			case sentinel != nil && !errors.Is(err, sentinel):
				t.Errorf("%s: %v does not match %v", what, err, sentinel)
			}
			alive(what)
		}

		_, err := typed.Call[Unknown, Ack](ctx, conn, Unknown{})
		check("unknown type", err, typed.CodeUnknownType, "test.Unknown", typed.ErrUnknownType)

		_, err = typed.Call[Fail, Ack](ctx, conn, Fail{Code: 404, Text: "no such thing"})
		check("application error", err, 404, "no such thing", nil)
		if errors.Is(err, typed.ErrUnknownType) || errors.Is(err, typed.ErrInternal) {
			t.Errorf("application error %v matches a code sentinel", err)
		}

		_, err = typed.Call[Fail, Ack](ctx, conn, Fail{Text: "plain failure"})
		check("plain error", err, typed.CodeFailed, "plain failure", nil)

		_, err = typed.Call[Fail, Ack](ctx, conn, Fail{Text: strings.Repeat("long ", 1000)})
		var e *typed.Error
		if check("long error", err, typed.CodeFailed, "long", nil); errors.As(err, &e) && len(e.Message) > 1024 {
			t.Errorf("error text of %d bytes", len(e.Message))
		}

		// An error text is cut to fit a small reply buffer.
		_, err = typed.Call[Fail, Ack](ctx, conn, Fail{Code: 150, Text: strings.Repeat("y", 500)},
			typed.WithReplyLimits(typed.Limits{MaxSize: 100}))
		if check("error into a small buffer", err, 150, "yyy", nil); errors.As(err, &e) && len(e.Message) > 100-22 {
			t.Errorf("error text of %d bytes for a 100-byte reply buffer", len(e.Message))
		}

		_, err = typed.Call[Boom, Ack](ctx, conn, Boom{})
		check("panic", err, typed.CodeInternal, "panicked", typed.ErrInternal)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(srv.Stderr(), "nil pointer dereference") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// slog's text quotes the message: look for its words.
		if s := srv.Stderr(); !strings.Contains(s, "test.Boom") || !strings.Contains(s, "panicked") || !strings.Contains(s, "nil pointer dereference") {
			t.Errorf("the panic was not logged: %s", s)
		}

		_, err = typed.Call[Echo, EchoReply](ctx, conn, Echo{S: strings.Repeat("x", serverMaxSize)})
		check("request too large", err, typed.CodeTooLarge, "limit", simpl.ErrTooLarge)

		_, err = typed.Call[Big, Blob](ctx, conn, Big{N: typed.DefaultMaxReply})
		if !errors.Is(err, simpl.ErrReplyTooLarge) || errors.Is(err, typed.ErrRemote) {
			t.Errorf("reply over the default limit: %v, want ErrReplyTooLarge", err)
		}
		alive("reply too large")
		if s := srv.Stderr(); strings.Contains(s, "too large for the sender") {
			t.Errorf("a reply too large, which its sender hears of, was logged too: %s", s)
		}
		blob, err := typed.Call[Big, Blob](ctx, conn, Big{N: typed.DefaultMaxReply}, typed.WithReplyLimits(typed.Limits{MaxSize: 1 << 20}))
		if err != nil || len(blob.B) != typed.DefaultMaxReply {
			t.Errorf("reply under a raised limit: %d bytes, %v", len(blob.B), err)
		}

		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = typed.Call[Slow, Slow](short, conn, Slow{ID: 1})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("call past its deadline: %v", err)
		}
		if _, err := typed.Call[Open, Ack](ctx, conn, Open{}); err != nil {
			t.Error(err)
		}
		alive("a call that gave up")
		stopServer(t, srv)
	})
}

// wireReply splits a reply as docs/typed.md lays it out, checking the
// header byte by byte.
func wireReply(t *testing.T, b []byte) (kind byte, tag string, payload []byte) {
	t.Helper()
	if len(b) < 5 || string(b[:2]) != "GT" || b[2] != 1 || len(b) < 5+int(b[4]) {
		t.Fatalf("reply %q: not a version 1 typed message", b)
	}
	return b[3], string(b[5 : 5+int(b[4])]), b[5+int(b[4]):]
}

// errorReply decodes an error reply's payload by its documented keys.
func errorReply(t *testing.T, b []byte) (code int, msg string) {
	t.Helper()
	kind, tag, payload := wireReply(t, b)
	if kind != 3 || tag != "" {
		t.Fatalf("reply %q: kind %d tag %q, want an error reply (3) without a tag", b, kind, tag)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(payload, &m); err != nil || len(m) != 2 {
		t.Fatalf("error reply payload %x: %v, %v", payload, m, err)
	}
	c, ok1 := m["code"]
	msg, ok2 := m["message"].(string)
	n, err := strconv.Atoi(fmt.Sprint(c))
	if !ok1 || !ok2 || err != nil {
		t.Fatalf("error reply payload %v", m)
	}
	return n, msg
}

// Hostile bytes sent raw to a typed server get a clean error reply with
// the right code; the server never panics and serves on.
func TestHostile(t *testing.T) {
	const (
		bad     = int(typed.CodeBadMessage)
		version = int(typed.CodeVersion)
		unknown = int(typed.CodeUnknownType)
		large   = int(typed.CodeTooLarge)
	)
	echo := "GT\x01\x01\x09test.Echo"
	nest := func(n int) string { return strings.Repeat("\x91", n) + "\x00" }
	cases := []struct {
		name string
		msg  string
		code int
	}{
		{"empty", "", bad},
		{"one byte", "G", bad},
		{"a C struct", "\x01\x00\x00\x00hello\x00", bad},
		{"bad magic", "XT\x01\x01\x09test.Echo\x80", bad},
		{"version 2", "GT\x02\x01\x09test.Echo\x80", version},
		{"version 0", "GT\x00", version},
		{"version 255", "GT\xff\xff\xff\xff", version},
		{"no kind", "GT\x01", bad},
		{"no tag length", "GT\x01\x01", bad},
		{"reply as request", "GT\x01\x02\x09test.Echo\x80", bad},
		{"error as request", "GT\x01\x03\x00\x80", bad},
		{"kind 9", "GT\x01\x09\x09test.Echo\x80", bad},
		{"tag too long", "GT\x01\x01\x41" + strings.Repeat("a", 65) + "\x80", bad},
		{"tag past the end", "GT\x01\x01\x20test", bad},
		{"empty tag", "GT\x01\x01\x00\x80", bad},
		{"tag not UTF-8", "GT\x01\x01\x02\xff\xfe\x80", bad},
		{"unknown tag", "GT\x01\x01\x05nope!\x80", unknown},
		{"no payload", echo, bad},
		{"trailing bytes", echo + "\x80\x00", bad},
		{"code 0xc1", echo + "\xc1", bad},
		{"33 deep", echo + nest(33), bad},
		{"60000 deep", echo + nest(60000), bad},
		{"array of 4G", echo + "\xdd\xff\xff\xff\xff\x00", bad},
		{"map of 4G", echo + "\xdf\xff\xff\xff\xff\xa1s\xa1x", bad},
		{"string of 2G", echo + "\x81\xa1s\xdb\x7f\xff\xff\xffabc", bad},
		{"binary of 4G", echo + "\x81\xa1s\xc6\xff\xff\xff\xff", bad},
		{"ext of 4G", echo + "\xc9\xff\xff\xff\xff\x01", bad},
		{"short string", echo + "\x81\xa1s\xa5ab", bad},
		{"wrong field type", echo + "\x81\xa1s\x05", bad},
		{"timestamp for a string", echo + "\x81\xa1s\xd6\xff\x00\x00\x00\x00", bad},
		{"bad timestamp", echo + "\x81\xa1s\xd4\xff\x00", bad},
		{"an array for a struct", echo + "\x93\x01\x02\x03", bad},
		// msgpack v5.4.1 panics decoding nil into a time.Time; the
		// panic is recovered.
		{"nil for a time", "GT\x01\x01\x0atest.Stamp\x81\xa2at\xc0", bad},
		{"over the size limit", echo + "\x81\xa1s\xdb\x00\x01\x00\x00" + strings.Repeat("x", 1<<16), large},
	}
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, time.Minute)
		srv := startServer(t, dir, tr)
		conn := client(t, dir, tr, "CLI", "SRV")
		reply := make([]byte, 4096)
		for _, c := range cases {
			n, err := conn.Send(ctx, []byte(c.msg), reply)
			if err != nil {
				t.Fatalf("%s: Send: %v", c.name, err)
			}
			if code, msg := errorReply(t, reply[:n]); code != c.code || msg == "" {
				t.Errorf("%s: code %d %q, want %d", c.name, code, msg, c.code)
			}
		}
		// A well-formed request built by hand, as a C or Python peer
		// would, gets a reply that decodes by the same rules.
		n, err := conn.Send(ctx, []byte(echo+"\x82\xa1s\xa2hi\xa1n\x2a"), reply)
		if err != nil {
			t.Fatal(err)
		}
		kind, tag, payload := wireReply(t, reply[:n])
		var rep map[string]any
		if err := msgpack.Unmarshal(payload, &rep); err != nil || kind != 2 || tag != "test.EchoReply" ||
			rep["s"] != "hi" || fmt.Sprint(rep["n"]) != "42" || !strings.HasPrefix(fmt.Sprint(rep["from"]), "CLI") {
			t.Errorf("hand-built request: kind %d tag %q payload %v, %v", kind, tag, rep, err)
		}
		at := time.Unix(1700000000, 123).UTC()
		if rep, err := typed.Call[Stamp, Stamp](ctx, conn, Stamp{At: at}); err != nil || !rep.At.Equal(at) {
			t.Errorf("a time after the hostile messages: %+v, %v", rep, err)
		}
		if rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{S: "still here"}); err != nil || rep.S != "still here" {
			t.Errorf("after the hostile messages: %+v, %v", rep, err)
		}
		stopServer(t, srv)
		if s := srv.Stderr(); strings.Contains(s, "panic") {
			t.Errorf("server stderr: %s", s)
		}
	})
}

// Call turns bad replies into errors: hostile or foreign bytes,
// another wire version, the wrong type, a raw ReplyError.
func TestBadReplies(t *testing.T) {
	hdr := "GT\x01\x02\x0etest.EchoReply"
	cases := []struct {
		name  string
		reply string // "error" answers with ReplyError
		check func(EchoReply, error) bool
	}{
		{"hand-built", hdr + "\x83\xa1s\xa2hi\xa1n\x07\xa4from\xa1x", func(r EchoReply, err error) bool {
			return err == nil && r == EchoReply{S: "hi", N: 7, From: "x"}
		}},
		{"unknown fields", hdr + "\x82\xa1n\x07\xa5extra\x93\x01\x02\x03", func(r EchoReply, err error) bool {
			return err == nil && r == EchoReply{N: 7}
		}},
		{"version 2", "GT\x02\x02\x0etest.EchoReply\x80", isNot(typed.ErrVersion, typed.ErrRemote)},
		{"bad magic", "HT\x01\x02\x0etest.EchoReply\x80", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"empty", "", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"wrong type", "GT\x01\x02\x08test.Ack\x80", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"a request", "GT\x01\x01\x0etest.EchoReply\x80", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"deep", hdr + strings.Repeat("\x91", 40) + "\xc0", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"array of 4G", hdr + "\x81\xa1s\xdd\xff\xff\xff\xff", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"error reply", "GT\x01\x03\x00\x82\xa4code\xcd\x01\x94\xa7message\xa4gone", func(r EchoReply, err error) bool {
			var e *typed.Error
			return errors.As(err, &e) && e.Code == 404 && e.Message == "gone" && r == EchoReply{}
		}},
		{"error reply with a tag", "GT\x01\x03\x01x\x80", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"error reply of junk", "GT\x01\x03\x00\xc1", isNot(simpl.ErrBadMessage, typed.ErrRemote)},
		{"raw ReplyError", "error", isNot(simpl.ErrRejected, typed.ErrRemote)},
	}
	eachTransport(t, func(t *testing.T, tr string) {
		dir := simpltest.Dir(t)
		ctx := simpltest.Context(t, time.Minute)
		var args []string
		for _, c := range cases {
			if c.reply == "error" {
				args = append(args, "error")
			} else {
				args = append(args, fmt.Sprintf("%x", c.reply))
			}
		}
		srv := simpltest.Start(t, "canned", env(dir, tr), append([]string{"CANNED"}, args...)...)
		conn := client(t, dir, tr, "CLI", "CANNED")
		for _, c := range cases {
			rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{S: c.name})
			if !c.check(rep, err) {
				t.Errorf("%s: %+v, %v", c.name, rep, err)
			}
		}
		srv.Signal(syscall.SIGTERM)
		if err := srv.Wait(10 * time.Second); err != nil {
			t.Error(err)
		}
	})
}

// isNot checks for an error that matches want and not notWant.
func isNot(want, notWant error) func(EchoReply, error) bool {
	return func(r EchoReply, err error) bool {
		return errors.Is(err, want) && !errors.Is(err, notWant) && r == EchoReply{}
	}
}

// Proxies go to the proxy handler.
func TestProxy(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := startServer(t, dir, "auto")
	conn := client(t, dir, "auto", "CLI", "SRV")
	if err := conn.Trigger(7); err != nil {
		t.Fatal(err)
	}
	srv.Expect("proxy 7", 10*time.Second)
	stopServer(t, srv)
}

// When Serve's context ends, a handler in flight sees it, its error reply
// goes out, and only then does Serve return.
func TestShutdown(t *testing.T) {
	dir := simpltest.Dir(t)
	ctx := simpltest.Context(t, time.Minute)
	srv := startServer(t, dir, "auto")
	conn := client(t, dir, "auto", "CLI", "SRV")
	done := make(chan error, 1)
	go func() {
		_, err := typed.Call[Slow, Slow](ctx, conn, Slow{ID: 3})
		done <- err
	}()
	srv.Expect("slow 3 received", 10*time.Second)
	srv.Signal(syscall.SIGTERM)
	srv.Expect("slow 3 cancelled", 10*time.Second)
	if line := srv.Expect("serve returned", 10*time.Second); !strings.HasSuffix(line, "context canceled") {
		t.Errorf("server: %q", line)
	}
	var e *typed.Error
	select {
	case err := <-done:
		if !errors.As(err, &e) || e.Code != typed.CodeFailed || e.Message != context.Canceled.Error() {
			t.Errorf("call in flight at shutdown: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the call in flight at shutdown never returned")
	}
	if err := srv.Wait(10 * time.Second); err != nil {
		t.Error(err)
	}
}

// Serve returns ErrClosed once its Channel is closed; ServeMessage serves
// a loop of one's own; a Mux may be given handlers while it serves.
func TestServeInProcess(t *testing.T) {
	dir := simpltest.Dir(t)
	ctx := simpltest.Context(t, 30*time.Second)
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	own, err := simpl.Attach("OWN", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	mux := typed.NewMux()
	served := make(chan error, 1)
	go func() { served <- mux.Serve(ctx, srv, typed.WithWorkers(2)) }()
	go func() {
		for {
			m, err := own.Receive(ctx)
			if err != nil {
				return
			}
			mux.ServeMessage(ctx, m)
		}
	}()

	cli, err := simpl.Attach("CLI", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c1, err := cli.Locate(ctx, "SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := cli.Locate(ctx, "OWN")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()

	if _, err := typed.Call[Echo, EchoReply](ctx, c1, Echo{}); !errors.Is(err, typed.ErrUnknownType) {
		t.Errorf("before Handle: %v", err)
	}
	typed.Handle(mux, func(ctx context.Context, req Echo, m simpl.Message) (EchoReply, error) {
		return EchoReply{S: req.S + "!"}, nil
	})
	for _, c := range []*simpl.Conn{c1, c2} {
		if rep, err := typed.Call[Echo, EchoReply](ctx, c, Echo{S: c.Name()}); err != nil || rep.S != c.Name()+"!" {
			t.Errorf("%s: %+v, %v", c.Name(), rep, err)
		}
	}
	srv.Close()
	select {
	case err := <-served:
		if !errors.Is(err, simpl.ErrClosed) {
			t.Errorf("Serve after Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return after Close")
	}
}

type noTag struct{}

func (noTag) TypeTag() string { return "" }

type longTag struct{}

func (longTag) TypeTag() string { return strings.Repeat("t", typed.MaxTagLen+1) }

type badUTF8 struct{}

func (badUTF8) TypeTag() string { return "\xff" }

// Types without a usable tag fail before anything is sent, and Handle
// refuses them and a second handler for one type.
func TestBadTags(t *testing.T) {
	ctx := simpltest.Context(t, 10*time.Second)
	for name, call := range map[string]func() error{
		"empty":       func() error { _, err := typed.Call[noTag, Ack](ctx, nil, noTag{}); return err },
		"long":        func() error { _, err := typed.Call[longTag, Ack](ctx, nil, longTag{}); return err },
		"not UTF-8":   func() error { _, err := typed.Call[Echo, badUTF8](ctx, nil, Echo{}); return err },
		"nil pointer": func() error { _, err := typed.Call[*Echo, EchoReply](ctx, nil, &Echo{}); return err },
	} {
		if err := call(); !errors.Is(err, typed.ErrBadTag) {
			t.Errorf("%s: %v, want ErrBadTag", name, err)
		}
	}
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: Handle did not panic", name)
			}
		}()
		f()
	}
	mux := typed.NewMux()
	typed.Handle(mux, func(context.Context, Echo, simpl.Message) (Ack, error) { return Ack{}, nil })
	panics("twice", func() {
		typed.Handle(mux, func(context.Context, Echo, simpl.Message) (EchoReply, error) { return EchoReply{}, nil })
	})
	panics("no tag", func() {
		typed.Handle(mux, func(context.Context, noTag, simpl.Message) (Ack, error) { return Ack{}, nil })
	})
	panics("bad reply tag", func() {
		typed.Handle(mux, func(context.Context, Ack, simpl.Message) (longTag, error) { return longTag{}, nil })
	})
}
