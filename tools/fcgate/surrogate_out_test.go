package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/simpl"
)

// cHost plays a C SIMPL host's surrogateTcp (surrogate_S, and a
// surrogate_s per connection) with a receiver SRV behind it, written
// from the spec (simpl-network-wire.md §4), not with internal/surwire, so
// that the gateway's frames are checked against the spec rather than
// against themselves. What its SRV does with a SEND is its mode.
type cHost struct {
	bad    func(string) // a frame the spec does not allow here
	ln     net.Listener
	binary bool

	mu      sync.Mutex
	mode    string   // "echo": REPLY each byte XOR 0x80; "error": ERROR; "drop": close; "mute": nothing, ALIVE unanswered; "hold": nothing, ALIVE answered
	sends   [][]byte // every SEND frame as it came, whole
	proxies []int32
	wg      sync.WaitGroup
	conns   chan net.Conn
	onSend  func() // called at each SEND, if set (before serve reads more)
	active  int    // connections open now
	busy    int    // SENDs being answered now...
	most    int    // ...and the most at once
}

func startCHost(t *testing.T, binaryEnc bool) *cHost {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := serveCHost(ln, binaryEnc, "echo", func(s string) { t.Error(s) })
	t.Cleanup(h.close)
	return h
}

// serveCHost serves ln until close.
func serveCHost(ln net.Listener, binaryEnc bool, mode string, bad func(string)) *cHost {
	h := &cHost{bad: bad, ln: ln, binary: binaryEnc, mode: mode, conns: make(chan net.Conn, 64)}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer close(h.conns)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns <- c
			h.wg.Add(1)
			h.mu.Lock()
			h.active++
			h.mu.Unlock()
			go func() {
				defer h.wg.Done()
				defer c.Close()
				h.serve(c)
				h.mu.Lock()
				h.active--
				h.mu.Unlock()
			}()
		}
	}()
	return h
}

func (h *cHost) close() {
	h.ln.Close()
	for c := range h.conns {
		c.Close()
	}
	h.wg.Wait()
}

func (h *cHost) port() string { return strconv.Itoa(h.ln.Addr().(*net.TCPAddr).Port) }

func (h *cHost) setMode(m string) {
	h.mu.Lock()
	h.mode = m
	h.mu.Unlock()
}

// intSize is one integer's size: 4 bytes, or 8 nibbles in char.
func (h *cHost) intSize() int {
	if h.binary {
		return 4
	}
	return 8
}

func (h *cHost) putInt(v int32) []byte {
	if h.binary {
		return binary.LittleEndian.AppendUint32(nil, uint32(v))
	}
	b := make([]byte, 8)
	for i, u := 7, uint32(v); i >= 0; i, u = i-1, u>>4 {
		b[i] = byte(u & 0xF)
	}
	return b
}

func (h *cHost) getInt(b []byte) int32 {
	if h.binary {
		return int32(binary.LittleEndian.Uint32(b))
	}
	var u uint32
	for _, c := range b[:8] {
		u = u<<4 + uint32(c)
	}
	return int32(u)
}

// frame is a header of token, nbytes, ybytes and a stale surPid byte (as
// C SIMPL leaves it), then body.
func (h *cHost) frame(token, nbytes, ybytes int32, body []byte) []byte {
	b := append(h.putInt(token), h.putInt(nbytes)...)
	b = append(b, h.putInt(ybytes)...)
	pid := make([]byte, h.intSize())
	pid[0] = 0xa8
	return append(append(b, pid...), body...)
}

func (h *cHost) serve(c net.Conn) {
	n := h.intSize()
	hdr := make([]byte, 4*n)
	if _, err := io.ReadFull(c, hdr); err != nil || h.getInt(hdr) != 2 {
		return
	}
	body := make([]byte, 136)
	if _, err := io.ReadFull(c, body); err != nil {
		return
	}
	name := string(body[52:84])
	name = name[:strings.IndexByte(name, 0)]
	result := int32(0)
	if name != "SRV" {
		result = -1
	}
	// The reply echoes the request's header with token 2, then the result.
	if _, err := c.Write(append(append([]byte(nil), hdr...), h.putInt(result)...)); err != nil || result != 0 {
		return
	}
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		switch token := h.getInt(hdr); token {
		case 3: // SEND
			size, ybytes := h.getInt(hdr[n:]), h.getInt(hdr[2*n:])
			data := make([]byte, size)
			if _, err := io.ReadFull(c, data); err != nil {
				return
			}
			h.mu.Lock()
			h.sends = append(h.sends, append(append([]byte(nil), hdr...), data...))
			mode := h.mode
			h.busy++
			h.most = max(h.most, h.busy)
			h.mu.Unlock()
			if h.onSend != nil {
				h.onSend()
			}
			switch mode {
			case "slow":
				// A receiver that takes its time, so that Sends overlap.
				time.Sleep(20 * time.Millisecond)
				fallthrough
			case "echo":
				for i := range data {
					data[i] ^= 0x80
				}
				c.Write(h.frame(4, int32(len(data)), ybytes, data))
			case "error":
				c.Write(h.frame(7, 0, 0, nil))
				return
			case "drop":
				return
			}
			h.mu.Lock()
			h.busy--
			h.mu.Unlock()
		case 6: // PROXY
			v := make([]byte, n)
			if _, err := io.ReadFull(c, v); err != nil {
				return
			}
			h.mu.Lock()
			h.proxies = append(h.proxies, h.getInt(v))
			h.mu.Unlock()
		case 8: // ALIVE
			h.mu.Lock()
			mute := h.mode == "mute"
			h.mu.Unlock()
			if !mute {
				c.Write(h.frame(9, 0, 0, nil))
			}
		case 5: // CLOSE
			return
		default:
			h.bad(fmt.Sprintf("C SIMPL host: token %d", token))
			return
		}
	}
}

func (h *cHost) lastSend() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sends) == 0 {
		return nil
	}
	return h.sends[len(h.sends)-1]
}

// This host's senders reach a receiver on a C SIMPL host through its
// surrogateTcp (issue 14, the other direction): as "chost:SRV" once
// -csimpl-hosts names chost, and as "_simplTCP:127.0.0.1:SRV" always;
// Send and Reply (the SEND frame byte for byte as the spec's captured
// 64-byte exchange, in both encodings), proxies, a name not there, and
// each failure the spec lists, mapped to our errors within their bounds.
func TestCSimplTCPOut(t *testing.T) {
	for _, enc := range []string{"char", "binary"} {
		t.Run(enc, func(t *testing.T) {
			peer := startCHost(t, enc == "binary")
			dir := proctest.Dir(t)
			const k = 200 * time.Millisecond
			args := []string{"-v", "-host", "me", "-listen", "127.0.0.1:0", "-csimpl-hosts", "chost=127.0.0.1:" + peer.port(),
				"-csimpl-tcp-port", peer.port(), "-csimpl-tcp-k", k.String(), "-csimpl-tcp-conns", "3"}
			if enc == "binary" {
				args = append(args, "-csimpl-tcp-binary")
			}
			gw, _ := startGate(t, local(t, dir, "me", "fcgate", args...))
			defer stopGate(t, gw)
			ch, err := simpl.Attach("OUT", simpl.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()

			payload := make([]byte, 64)
			for i := range payload {
				payload[i] = byte(i) // as the spec's own runs: 00..3f, replied 80..bf
			}
			for _, name := range []string{"chost:SRV", "_simplTCP:127.0.0.1:SRV"} {
				c, err := ch.Locate(ctx, name)
				if err != nil {
					t.Fatalf("Locate(%s): %v", name, err)
				}
				reply := make([]byte, 64)
				n, err := c.Send(ctx, payload, reply)
				if err != nil {
					t.Fatalf("Send to %s: %v", name, err)
				}
				for i, b := range reply[:n] {
					if n != 64 || b != byte(i)^0x80 {
						t.Fatalf("the reply from %s: % x", name, reply[:n])
					}
				}
				// The SEND as the spec's captured one: token 3, nbytes 64,
				// ybytes 64 (the reply the sender takes), surPid (unused)
				// zero rather than stale, the payload verbatim.
				var want []byte
				if enc == "binary" {
					want = []byte{3, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}
				} else {
					want = []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0}
				}
				want = append(want, payload...)
				if got := peer.lastSend(); !bytes.Equal(got, want) {
					t.Errorf("the SEND frame to %s:\n got % x\nwant % x", name, got, want)
				}
				c.Close()
			}

			c, err := ch.Locate(ctx, "chost:SRV")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			// Eight Sends at once to a slow receiver over at most three
			// connections (-csimpl-tcp-conns): one SEND a connection, the
			// others wait; the C SIMPL host never holds more than three.
			peer.setMode("slow")
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reply := make([]byte, 64)
					if n, err := c.Send(ctx, payload, reply); err != nil || n != 64 || reply[1] != 0x81 {
						t.Errorf("one of eight Sends at once: %d bytes, %v", n, err)
					}
				}()
			}
			wg.Wait()
			peer.setMode("echo")
			peer.mu.Lock()
			most := peer.most
			peer.mu.Unlock()
			if most > 3 || most < 2 {
				t.Errorf("the C SIMPL host answered %d SENDs at once, want 2 or 3 (at most 3 connections)", most)
			}
			if err := c.Trigger(5); err != nil {
				t.Errorf("Trigger: %v", err)
			}
			if _, err := ch.Locate(ctx, "chost:NOBODY"); !errors.Is(err, simpl.ErrNotFound) {
				t.Errorf("Locate of a name not there: %v, want ErrNotFound", err)
			}
			// The proxy went before the locate of NOBODY ended, on its
			// own connection: it is there by now, or soon.
			deadline := time.Now().Add(lineTimeout)
			for {
				peer.mu.Lock()
				got := append([]int32(nil), peer.proxies...)
				peer.mu.Unlock()
				if len(got) == 1 && got[0] == 5 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("proxies at the C SIMPL host: %v, want [5]", got)
				}
				time.Sleep(10 * time.Millisecond) // polling the peer's record, bounded
			}

			for _, f := range []struct {
				mode  string
				want  error
				bound time.Duration
			}{
				{"error", simpl.ErrPeerGone, time.Second},      // the receiver failed: its surrogate says ERROR
				{"drop", simpl.ErrOutcomeUnknown, time.Second}, // its surrogate exited (a receiver killed, a dropped link)
				{"mute", simpl.ErrOutcomeUnknown, 4*k + 2*time.Second},
			} {
				peer.setMode(f.mode)
				t0 := time.Now()
				_, err := c.Send(ctx, payload, make([]byte, 64))
				if took := time.Since(t0); !errors.Is(err, f.want) || took > f.bound {
					t.Errorf("Send when the C SIMPL host does %q: %v after %v; want %v within %v", f.mode, err, took, f.want, f.bound)
				}
			}
			peer.setMode("echo")
			if n, err := c.Send(ctx, payload, make([]byte, 64)); err != nil || n != 64 {
				t.Errorf("Send after the failures: %d, %v", n, err)
			}

			// No surrogate listening there (the peer listens on
			// 127.0.0.1 only): refused, nothing was sent.
			if _, err := ch.Locate(ctx, "_simplTCP:127.0.0.2:SRV"); !errors.Is(err, simpl.ErrUnreachable) {
				t.Errorf("Locate with no surrogate listening: %v, want ErrUnreachable", err)
			}
		})
	}
}

// cHostHelper is the helper's chost mode: a C SIMPL host's surrogateTcp
// listening at addr (char encoding), its SRV in mode; it prints
// "listening", then "got SEND" at each SEND, and serves until killed.
func cHostHelper(addr, mode string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := serveCHost(ln, false, mode, func(s string) { fmt.Fprintln(os.Stderr, s) })
	h.onSend = func() { fmt.Println("got SEND") }
	fmt.Println("listening")
	select {}
}

// Across a network (namespaces): a sender on a reaches SRV on the C SIMPL
// host c through c's surrogate, as c:SRV (a's gateway lists c in
// -csimpl-hosts); and when the C SIMPL host dies holding a request (the
// process SIGKILLed: its connections closed by the kernel), the sender
// fails at once, outcome unknown, where C SIMPL's may hang.
func TestCSimplTCPOutHosts(t *testing.T) {
	lab := netlab.New(t, "a", "c")
	a, c := lab.Host("a"), lab.Host("c")
	chost := func(mode string) *proctest.Proc {
		cmd := c.Command(context.Background(), os.Args[0], "-test.run=^$", c.Addr()+":8001", mode)
		cmd.Env = append(cmd.Env, helperEnv+"=chost")
		p := proctest.StartCmd(t, cmd)
		p.Expect("listening", lineTimeout)
		return p
	}
	echo := chost("echo")
	gw := proctest.StartCmd(t, a.Command(context.Background(), bin("fcgate"), "-listen", "127.0.0.1:4222", "-csimpl-hosts", "c="+c.Addr()+":8001"))
	gw.Expect("serving through", lineTimeout)
	r := runCmd(t, a.Command(context.Background(), bin("fcsend"), "-r", "c:SRV", "-m", "abc"))
	if want := "hex:e1e2e3"; r.code != 0 || !strings.Contains(r.stdout, want) { // "abc", each byte XOR 0x80
		t.Errorf("fcsend -r c:SRV: exit %d, stdout %q, stderr %q; want the reply %q", r.code, r.stdout, r.stderr, want)
	}
	echo.Kill()
	echo.Wait(runTimeout)

	hold := chost("hold")
	send := proctest.StartCmd(t, a.Command(context.Background(), bin("fcsend"), "-r", "c:SRV", "-m", "abc"))
	hold.Expect("got SEND", lineTimeout)
	t0 := time.Now()
	hold.Kill()
	err := send.Wait(runTimeout)
	if took := time.Since(t0); err == nil || took > 2*time.Second || !strings.Contains(send.Stderr(), "may or may not have been delivered") {
		t.Errorf("fcsend when the C SIMPL host died holding its request: %v after %v, stderr %q; want outcome unknown within 2 s", err, took, send.Stderr())
	}
	stopGate(t, gw)
}

// The listening side, byte for byte: a C SIMPL surrogate_r played from
// the spec sends the spec's captured frames of the 64-byte exchange
// (stale bytes and all: rHostName in the char NAME_LOCATE, surPid in the
// SEND) to fcgate -csimpl-tcp, whose echo receiver answers; the locate's
// reply and the REPLY must say what the spec's say in the fields that
// mean something, and zero in the others (never stale bytes of ours).
func TestCSimplTCPCaptured(t *testing.T) {
	for _, enc := range []string{"char", "binary"} {
		t.Run(enc, func(t *testing.T) {
			dir := proctest.Dir(t)
			args := []string{"-host", "vm", "-listen", "127.0.0.1:0", "-csimpl-tcp", "127.0.0.1:0"}
			if enc == "binary" {
				args = append(args, "-csimpl-tcp-binary")
			}
			gw, _ := startGate(t, local(t, dir, "vm", "fcgate", args...))
			defer stopGate(t, gw)
			line := gw.Expect("C SIMPL surrogates", lineTimeout)
			addr := line[strings.LastIndex(line, " ")+1:]
			echo := proctest.StartCmd(t, local(t, dir, "vm", "fcbench", "-serve", "cRecv"))
			defer func() { echo.Signal(15); echo.Wait(runTimeout) }()
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			probe, err := simpl.Attach("PROBE", simpl.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := probe.WaitFor(ctx, "cRecv"); err != nil {
				t.Fatal(err)
			}
			probe.Close()

			h := &cHost{binary: enc == "binary"}
			n := h.intSize()
			var locate []byte
			if h.binary {
				// As surrogate_r forwards the sender's 152 bytes: "localhost"
				// at 16, the name at 68, the sender's host at 100.
				locate = append(h.putInt(2), h.putInt(136)...)
				locate = append(locate, make([]byte, 8)...)
				body := make([]byte, 136)
				copy(body, "localhost")
				copy(body[52:], "cRecv")
				copy(body[84:], "vm")
				locate = append(locate, body...)
			} else {
				// Only the token, rProgramName and sHostName set; stale
				// bytes elsewhere, as captured.
				locate = []byte{0, 0, 0, 0, 0, 0, 0, 2, 0, 0x80, 0, 0, 0, 0, 0, 0, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0xa8, 0, 0, 0, 0, 0, 0, 0}
				body := make([]byte, 136)
				copy(body, "_tcp_Surrogate_R.")
				for i := 17; i < 52; i++ {
					body[i] = 0x5a // no NUL: not a string
				}
				copy(body[52:], "cRecv")
				copy(body[84:], "vm")
				locate = append(locate, body...)
			}
			payload := make([]byte, 64)
			for i := range payload {
				payload[i] = byte(i)
			}
			var send []byte
			if h.binary {
				send = []byte{3, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}
			} else {
				send = []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0xa8, 0, 0, 0, 0, 0, 0, 0}
			}
			send = append(send, payload...)

			c, err := net.DialTimeout("tcp", addr, lineTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(lineTimeout))
			if _, err := c.Write(locate); err != nil {
				t.Fatal(err)
			}
			reply := make([]byte, 5*n)
			if _, err := io.ReadFull(c, reply); err != nil {
				t.Fatalf("the locate's reply: %v", err)
			}
			// Token 2, nbytes the result's size (4 in binary, as C
			// SIMPL's; 8 in char, where C SIMPL echoes the request's
			// unset field), result 0 (found); the other fields are not
			// read by surrogate_r: ours are zero.
			want := append(h.putInt(2), h.putInt(int32(n))...)
			want = append(want, make([]byte, 2*n)...)
			want = append(want, h.putInt(0)...)
			if !bytes.Equal(reply, want) {
				t.Errorf("the locate's reply:\n got % x\nwant % x", reply, want)
			}
			if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4*n+64)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("the REPLY: %v", err)
			}
			// REPLY: token 4, nbytes 64, then fields surrogate_r does not
			// read (C SIMPL leaves the SEND's there; ours are zero), then
			// the reply: the echo of the payload.
			want = append(h.putInt(4), h.putInt(64)...)
			want = append(want, make([]byte, 2*n)...)
			want = append(want, payload...)
			if !bytes.Equal(got, want) {
				t.Errorf("the REPLY:\n got % x\nwant % x", got, want)
			}
		})
	}
}
