package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/surwire"
)

// A C SIMPL host's surrogate (surrogate_r), played from the spec with
// internal/surwire, reaches a receiver here through fcgate -csimpl-tcp,
// in both encodings: NAME_LOCATE, SEND and its REPLY, PROXY, ALIVE,
// CLOSE; a name nobody holds is -1 and the connection closes; a first
// frame that is not a NAME_LOCATE, or a SEND over the limit, costs that
// connection only.
func TestCSimplTCP(t *testing.T) {
	for _, enc := range []surwire.Encoding{surwire.Char, surwire.Binary} {
		t.Run(enc.String(), func(t *testing.T) {
			dir := proctest.Dir(t)
			args := []string{"-v", "-host", "other", "-listen", "127.0.0.1:0", "-csimpl-tcp", "127.0.0.1:0", "-csimpl-tcp-max", "1000"}
			if enc == surwire.Binary {
				args = append(args, "-csimpl-tcp-binary")
			}
			gw, _ := startGate(t, local(t, dir, "me", "fcgate", args...))
			line := gw.Expect("C SIMPL surrogates", lineTimeout)
			addr := line[strings.LastIndex(line, " ")+1:]
			if !strings.Contains(line, "("+enc.String()+")") {
				t.Errorf("fcgate: %q", line)
			}
			recv := proctest.StartCmd(t, local(t, dir, "me", "fcrecv", "-n", "SRV", "-count", "2"))
			recv.Expect("attached SRV", lineTimeout)

			dial := func() net.Conn {
				t.Helper()
				c, err := net.DialTimeout("tcp", addr, lineTimeout)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(lineTimeout))
				t.Cleanup(func() { c.Close() })
				return c
			}
			send := func(c net.Conn, f surwire.Frame, reply bool) {
				t.Helper()
				b, err := surwire.AppendFrame(nil, enc, &f, reply)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			read := func(c net.Conn, reply bool) *surwire.Frame {
				t.Helper()
				f, err := surwire.ReadFrame(c, enc, reply, 1<<20)
				if err != nil {
					t.Fatalf("reading a frame: %v", err)
				}
				return f
			}
			closed := func(c net.Conn, why string) {
				t.Helper()
				// EOF, or a reset when the server closed with bytes of
				// ours unread.
				if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%s: read %d bytes, %v; want the connection closed", why, n, err)
				}
			}

			c := dial()
			send(c, surwire.Frame{Token: surwire.TokenNameLocate, RHost: "other", RProgram: "SRV", SHost: "chost"}, false)
			if f := read(c, true); f.Token != surwire.TokenNameLocate || f.Result != 0 {
				t.Fatalf("the locate's reply: %+v, want found", *f)
			}
			payload := make([]byte, 64)
			for i := range payload {
				payload[i] = byte(i)
			}
			send(c, surwire.Frame{Token: surwire.TokenSend, YBytes: 64, Data: payload}, false)
			if f := read(c, false); f.Token != surwire.TokenReply || !bytes.Equal(f.Data, payload) {
				t.Errorf("the SEND's answer: %+v, want the echo", *f)
			}
			send(c, surwire.Frame{Token: surwire.TokenProxy, Proxy: 5}, false)
			send(c, surwire.Frame{Token: surwire.TokenAlive}, false)
			if f := read(c, false); f.Token != surwire.TokenAliveReply {
				t.Errorf("the ALIVE's answer: %+v", *f)
			}
			send(c, surwire.Frame{Token: surwire.TokenClose}, false)
			closed(c, "after CLOSE")
			recv.Expect("message from", lineTimeout)
			if got := recv.Expect("proxy", lineTimeout); !strings.Contains(got, "proxy 5") {
				t.Errorf("fcrecv: %q, want proxy 5", got)
			}
			if err := recv.Wait(runTimeout); err != nil {
				t.Error(err)
			}

			c = dial()
			send(c, surwire.Frame{Token: surwire.TokenNameLocate, RHost: "other", RProgram: "NOPE", SHost: "chost"}, false)
			if f := read(c, true); f.Result != -1 {
				t.Errorf("locate NOPE: %+v, want -1", *f)
			}
			closed(c, "after a locate that failed")

			c = dial()
			send(c, surwire.Frame{Token: surwire.TokenAlive}, false)
			closed(c, "a first frame that is not NAME_LOCATE")

			srv := proctest.StartCmd(t, local(t, dir, "me", "fcrecv", "-n", "SRV2", "-count", "1"))
			srv.Expect("attached SRV2", lineTimeout)
			c = dial()
			send(c, surwire.Frame{Token: surwire.TokenNameLocate, RHost: "other", RProgram: "SRV2", SHost: "chost"}, false)
			read(c, true)
			send(c, surwire.Frame{Token: surwire.TokenSend, YBytes: 10, Data: make([]byte, 2000)}, false)
			closed(c, "a SEND over -csimpl-tcp-max")
			// Still serving: SRV2 takes a Send on a new connection.
			c = dial()
			send(c, surwire.Frame{Token: surwire.TokenNameLocate, RHost: "other", RProgram: "SRV2", SHost: "chost"}, false)
			read(c, true)
			send(c, surwire.Frame{Token: surwire.TokenSend, YBytes: 10, Data: []byte("ok")}, false)
			if f := read(c, false); f.Token != surwire.TokenReply || string(f.Data) != "ok" {
				t.Errorf("after the refusals: %+v", *f)
			}
			if err := srv.Wait(runTimeout); err != nil {
				t.Error(err)
			}
			stopGate(t, gw)
		})
	}
	// Beyond loopback it needs an allow-list: this protocol authenticates
	// nobody.
	r := runCmd(t, local(t, proctest.Dir(t), "me", "fcgate", "-csimpl-tcp", "0.0.0.0:8001"))
	if r.code != 2 || !strings.Contains(r.stderr, "-csimpl-tcp-allow") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("fcgate -csimpl-tcp 0.0.0.0:8001: exit %d, stderr %q; want exit 2, one line asking for -csimpl-tcp-allow", r.code, r.stderr)
	}
}
