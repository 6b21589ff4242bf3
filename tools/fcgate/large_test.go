// Messages larger than one NATS message, in chunks between real
// gateways: 64 MiB each way with every byte checked, the size error one
// byte over, a slow receiver under many large requests, and a request
// whose sending gateway went away after some of its chunks.
package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/gateway"
	"github.com/gosimpl/gosimpl/internal/netlab"
	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// bigTimeout bounds one run of bigpeer send: 64 MiB each way, with the
// race detector on a shared 2-core machine.
const bigTimeout = 90 * time.Second

var (
	bigOnce sync.Once
	bigErr  error
)

// bigpeer builds the test program that sends and receives large
// messages whose every byte it checks (internal/gateway/internal/bigpeer),
// once.
func bigpeer(t *testing.T) string {
	t.Helper()
	bigOnce.Do(func() {
		bigErr = proctest.Build(binDir+string(filepath.Separator), buildTimeout, nil, "./internal/gateway/internal/bigpeer")
	})
	if bigErr != nil {
		t.Fatal(bigErr)
	}
	return bin("bigpeer")
}

// mostHeld reads "most held N bytes" from a gateway's counts line.
func mostHeld(t *testing.T, counts string) int64 {
	t.Helper()
	m := regexp.MustCompile(`most held (\d+) bytes`).FindStringSubmatch(counts)
	if m == nil {
		t.Fatalf("no bytes held in %q", counts)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// stopHeld stops a gateway started with -v, checks that its counts hold
// want, and returns the most bytes it held.
func stopHeld(t *testing.T, p *proctest.Proc, want string) int64 {
	t.Helper()
	p.Signal(15)
	got := p.Expect("fcgate: stopped: ", lineTimeout)
	if !strings.Contains(got, want) {
		t.Errorf("fcgate's counts: %q, want %q", got, want)
	}
	if err := p.Wait(runTimeout); err != nil {
		t.Errorf("fcgate after SIGTERM: %v", err)
	}
	return mostHeld(t, got)
}

// A 64 MiB request and a 64 MiB reply cross between two hosts, in chunks,
// every byte in place; a request one byte larger is refused on its host
// with both sizes, sent nowhere.
func TestLargeTwoHosts(t *testing.T) {
	big := bigpeer(t)
	h := newTwoHosts(t)
	const size = netwire.MaxPayload
	srv := proctest.StartCmd(t, h.b.Command(context.Background(), big, "recv", "-n", "BIG", "-reply", strconv.Itoa(size), "-count", "2"))
	srv.Expect("attached BIG", lineTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), bigTimeout)
	defer cancel()
	r := runCmd(t, h.a.Command(ctx, big, "send", "-r", "b:BIG", "-size", strconv.Itoa(size), "-max-reply", strconv.Itoa(size)))
	if want := "reply 67108864 bytes intact\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("bigpeer send of 64 MiB for 64 MiB: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	t.Logf("64 MiB from a to b and 64 MiB back, with the processes' start: %v", r.elapsed)
	if got := srv.Expect("got ", lineTimeout); got != "got 67108864 bytes intact" {
		t.Errorf("the receiver on b: %q", got)
	}

	r = runCmd(t, h.a.Command(ctx, big, "send", "-r", "b:BIG", "-size", strconv.Itoa(size+1)))
	if want := "67108865 bytes, limit 67108864"; r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "message too large") {
		t.Errorf("bigpeer send of 64 MiB + 1: exit %d, stdout %q, stderr %q; want a size error saying %q", r.code, r.stdout, r.stderr, want)
	}
	srv.Kill() // it waits for a second request, which never came
	// b held the request being put together and the reply buffer (each
	// 64 MiB), a the request and the reply being put together.
	for _, gw := range []*proctest.Proc{h.gwB, h.gwA} {
		if held := stopHeld(t, gw, "partial 0, partial replies 0"); held != 2*size {
			t.Errorf("a gateway held at most %d bytes, want %d", held, 2*size)
		}
	}
}

// rssKiB reads a process's resident set (VmRSS) or its peak (VmHWM) in
// KiB from /proc.
func rssKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// A slow receiver with many large requests for it: the receiving
// gateway takes what -max-bytes allows (two of eight 16 MiB requests,
// with 40 MiB), answers the others "full" at once, undelivered, and its
// memory stays bounded while the two wait at the receiver.
func TestLargeSlowReceiver(t *testing.T) {
	big := bigpeer(t)
	lab := netlab.New(t, "a", "b")
	h := &twoHosts{lab: lab, a: lab.Host("a"), b: lab.Host("b")}
	h.gwA, _ = startGate(t, h.a.Command(context.Background(), bin("fcgate"), "-v",
		"-listen", h.a.Addr()+":4222", "-cluster", h.a.Addr()+":6222", "-insecure"))
	const maxBytes = 40 << 20
	h.gwB, _ = startGate(t, h.b.Command(context.Background(), bin("fcgate"), "-v", "-max-bytes", strconv.Itoa(maxBytes),
		"-listen", h.b.Addr()+":4222", "-cluster", h.b.Addr()+":6222", "-routes", "nats://"+h.a.Addr()+":6222", "-insecure"))
	h.waitRoute(t)
	before := rssKiB(t, h.gwB.PID(), "VmRSS")

	const size, n, taken = 16 << 20, 8, 2
	srv := proctest.StartCmd(t, h.b.Command(context.Background(), big, "recv", "-n", "SLOW", "-count", strconv.Itoa(taken), "-delay", "1500ms", "-reply", "16"))
	srv.Expect("attached SLOW", lineTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), bigTimeout)
	defer cancel()
	r := runCmd(t, h.a.Command(ctx, big, "send", "-r", "b:SLOW", "-size", strconv.Itoa(size), "-count", strconv.Itoa(n)))
	ok := strings.Count(r.stdout, "reply 16 bytes intact\n")
	full := strings.Count(r.stderr, "holds 40960 KiB of messages, its limit, and sent nothing")
	if r.code != 1 || ok != taken || full != n-taken {
		t.Errorf("%d Sends of 16 MiB at once to a slow receiver behind a gateway holding 40 MiB: exit %d, %d replies, %d full; want %d and %d; stdout %q, stderr %q",
			n, r.code, ok, full, taken, n-taken, r.stdout, r.stderr)
	}
	for range taken {
		if got := srv.Expect("got ", lineTimeout); got != "got 16777216 bytes intact" {
			t.Errorf("the receiver on b: %q", got)
		}
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("the receiver on b: %v", err)
	}
	peak := rssKiB(t, h.gwB.PID(), "VmHWM")
	t.Logf("b's gateway: resident %d KiB before, at most %d KiB", before, peak)
	// Its growth is bounded by -max-bytes, not by the requests: what it
	// holds (at most 40 MiB), up to twice over before the collector
	// frees it, the shared memory the local Sends copy it into, and a
	// few chunks in flight, and the embedded server's buffers: under 5
	// times -max-bytes (about 3 measured). The eight requests taken
	// would be 128 MiB of heap, as much again of chunks received and
	// 128 of shared memory. (The race
	// detector's shadow memory blurs this; Stats' count of bytes held,
	// below, is the exact check.)
	if grew := (peak - before) << 10; grew >= 5*maxBytes && !proctest.RaceEnabled() {
		t.Errorf("b's gateway grew by %d bytes, -max-bytes being %d", grew, maxBytes)
	}
	if held := stopHeld(t, h.gwB, "busy 6, "); held != taken*size {
		t.Errorf("b's gateway held at most %d bytes, want the two requests taken, %d", held, taken*size)
	}
	stopGate(t, h.gwA)
}

// A request in chunks whose sending gateway goes away (its NATS
// connection closes, as a killed process's does) after some of them is
// dropped once its chunks stop for the silence time, counted, and never
// delivered.
func TestLargeSenderGone(t *testing.T) {
	bigpeer(t)
	dir := proctest.Dir(t)
	// On a NATS server of the test's own without permissions: the raw
	// client may publish anything, as another host's gateway could
	// (the embedded server keeps its programs from this host's names).
	url := testServer(t, server.Options{})
	gw, _ := startGate(t, local(t, dir, "me", "fcgate", "-v", "-host", "other", "-nats", url))
	recv := proctest.StartCmd(t, local(t, dir, "me", "bigpeer", "recv", "-n", "SRV", "-count", "1"))
	recv.Expect("attached SRV", lineTimeout)

	// A program of host "other" (it may send as that host only).
	nc, err := nats.Connect(url, nats.CustomInboxPrefix(gateway.ProgramInbox("other")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	h := reqHeader("send", "gone-1")
	h.Set(netwire.HeaderSize, "3000")
	if err := nc.PublishMsg(&nats.Msg{Subject: netwire.Subject("other", "SRV", "other"), Reply: inbox, Header: h, Data: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(lineTimeout)
	if err != nil {
		t.Fatal(err)
	}
	to := m.Header.Get(netwire.HeaderChunksTo)
	if m.Header.Get(netwire.HeaderStatus) != "more" || m.Header.Get(netwire.HeaderAcked) != "1000" || to == "" {
		t.Fatalf("the acknowledgement of the first chunk: %v", m.Header)
	}
	ch := nats.Header{}
	ch.Set(netwire.HeaderOffset, "1000")
	if err := nc.PublishMsg(&nats.Msg{Subject: to, Header: ch, Data: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(lineTimeout); err != nil || m.Header.Get(netwire.HeaderAcked) != "2000" {
		t.Fatalf("the acknowledgement of the second chunk: %v, %v", m, err)
	}
	nc.Close() // the sending gateway is gone, a third of its request short

	// The gateway's Close waits for what is in flight (up to 5 s): the
	// partial request is dropped at 1.5 s of silence, and counted.
	stopCounts(t, gw, "out 0, in 1, bad envelopes 0, bad requests 0, bad answers 0, duplicates 0, busy 0, outcome unknown 0, unreachable 0, partial 1, ")
	// The receiver got nothing from it: the first message it gets is
	// the local one sent now.
	if r := runCmd(t, local(t, dir, "me", "fcsend", "-r", "SRV", "-m", "after")); r.code != 0 {
		t.Errorf("fcsend -r SRV: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := recv.Expect("got ", lineTimeout); got != "got 5 bytes CORRUPT" {
		t.Errorf("the receiver's first message: %q, want the 5 bytes sent locally after the partial request", got)
	}
	if err := recv.Wait(runTimeout); err != nil {
		t.Errorf("the receiver: %v", err)
	}
}

// The sending host's gateway SIGKILLed while it holds a 64 MiB request:
// its program is told the outcome is unknown at once, and the receiving
// gateway either never saw the request, or dropped the part it had
// (counted), or had it whole and delivered it intact: never a part of
// it. Which depends on when the kill lands (it is made once a's gateway
// holds the request, most often while its chunks are going out); the
// test says which it saw.
func TestLargeSenderGatewayKilled(t *testing.T) {
	big := bigpeer(t)
	h := newTwoHosts(t)
	srv := proctest.StartCmd(t, h.b.Command(context.Background(), big, "recv", "-n", "BIG", "-count", "1"))
	srv.Expect("attached BIG", lineTimeout)
	before := rssKiB(t, h.gwA.PID(), "VmRSS")
	snd := proctest.StartCmd(t, h.a.Command(context.Background(), big, "send", "-r", "b:BIG", "-size", strconv.Itoa(netwire.MaxPayload)))
	// a's gateway holds the request once its resident memory has grown
	// by its size (it reads the envelope out of shared memory).
	end := time.Now().Add(bigTimeout)
	for rssKiB(t, h.gwA.PID(), "VmRSS")-before < netwire.MaxPayload>>10 {
		if time.Now().After(end) {
			t.Fatalf("a's gateway never held the request: resident %d KiB, %d before", rssKiB(t, h.gwA.PID(), "VmRSS"), before)
		}
		time.Sleep(time.Millisecond) // polling a state, bounded above
	}
	failsWithin(t, snd, h.gwA.Kill, "a's gateway was killed holding a 64 MiB request", outcomeUnknown, time.Second)

	// b's gateway drops a partial request at 1.5 s of silence; its
	// Close waits for that (up to 5 s).
	h.gwB.Signal(15)
	counts := h.gwB.Expect("fcgate: stopped: ", lineTimeout)
	if err := h.gwB.Wait(runTimeout); err != nil {
		t.Errorf("b's gateway after SIGTERM: %v", err)
	}
	partial := strings.Contains(counts, " partial 1,")
	if !partial && !strings.Contains(counts, " partial 0,") {
		t.Fatalf("b's gateway's counts: %q, want partial 0 or 1", counts)
	}
	// What the receiver got first: the request whole, or the local
	// message sent now. (Having had the request, it is gone: it takes
	// one message.)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	if r := runCmd(t, h.b.Command(ctx, bin("fcsend"), "-r", "BIG", "-m", "after")); r.code != 0 && !strings.Contains(r.stderr, "name not found") {
		t.Errorf("fcsend -r BIG on b: exit %d, stderr %q", r.code, r.stderr)
	}
	got := srv.Expect("got ", lineTimeout)
	switch {
	case got == "got 67108864 bytes intact" && !partial:
		t.Log("the kill came after the last chunk: b delivered the request whole")
	case got == "got 5 bytes CORRUPT" && partial:
		t.Log("the kill came while the chunks went out: b dropped the part it had")
	case got == "got 5 bytes CORRUPT":
		t.Log("the kill came before the first chunk went out: b saw nothing")
	default:
		t.Errorf("the receiver's first message: %q, b's counts %q", got, counts)
	}
	if err := srv.Wait(runTimeout); err != nil {
		t.Errorf("the receiver on b: %v", err)
	}
}
