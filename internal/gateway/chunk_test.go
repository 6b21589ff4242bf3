package gateway

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/nats-io/nats.go"
)

// bytesOf is n bytes that differ from every shift of themselves, so that
// a chunk lost, repeated or misplaced shows.
func bytesOf(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond) // polling a state, bounded above
	}
}

// A request and a reply several times the NATS payload limit go in
// chunks and arrive whole, every byte in place, through one gateway to
// itself; the bytes it held for them are given back.
func TestChunks(t *testing.T) {
	const host = "gw-chunk-host"
	// A long silence: what this test is about is the bytes, and a loaded
	// machine with the race detector may take long between messages.
	g, dir, _ := setupFree(t, host, WithTiming(100*time.Millisecond, 10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, rep := bytesOf(1, 3*g.Limit()+17), bytesOf(2, 5*g.Limit()+3)
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	served := make(chan error, 1)
	go func() {
		msg, err := srv.Receive(ctx)
		if err == nil && !bytes.Equal(msg.Data(), req) {
			err = errors.New("the receiver got other bytes than were sent")
		}
		if err == nil {
			err = msg.Reply(rep)
		}
		served <- err
	}()
	c := locateIn(t, ctx, dir, host+":SRV")
	got := make([]byte, len(rep)+100)
	n, err := c.Send(ctx, req, got)
	if err != nil || !bytes.Equal(got[:n], rep) {
		t.Fatalf("a Send of %d bytes for a reply of %d: %d bytes, equal %v, %v", len(req), len(rep), n, bytes.Equal(got[:n], rep), err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	// Out: the request and the reply buffer; in: the same again.
	if want := 2 * (int64(len(req)) + int64(len(got))); st.MostHeld < int64(len(req))+int64(len(got)) || st.MostHeld > want {
		t.Errorf("most held %d bytes, want from %d to %d", st.MostHeld, want/2, want)
	}
	waitFor(t, 5*time.Second, "the bytes held given back", func() bool { return g.Stats().Held == 0 })
	if st.Partial != 0 || st.PartialReplies != 0 || st.BadRequests != 0 || st.BadAnswers != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A request that would hold more than WithMaxBytes is answered full,
// having sent nothing; the sender's error says so with the limit.
func TestChunksFull(t *testing.T) {
	const host = "gw-full-host"
	g, dir, _ := setupFree(t, host, WithMaxBytes(2<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := simpl.Attach("", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := cli.Locate(ctx, host+":SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(ctx, make([]byte, 3<<20), make([]byte, 16))
	if !errors.Is(err, simpl.ErrUnreachable) || !strings.Contains(err.Error(), "holds 2048 KiB of messages, its limit, and sent nothing") {
		t.Errorf("a Send of 3 MiB through a gateway holding at most 2 MiB: %v, want full", err)
	}
	if st := g.Stats(); st.Busy != 1 || st.In != 1 || st.Held != 0 { // in: the Locate
		t.Errorf("stats %+v", st)
	}
}

// rawChunked publishes the first chunk of a request of size bytes to
// host's name SRV, as another gateway would, and returns the reply
// subject's subscription and where the receiving gateway wants the rest.
func rawChunked(t *testing.T, nc *nats.Conn, host, id string, size int, first []byte) (*nats.Subscription, string) {
	t.Helper()
	inbox := peerInbox("a")
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	r := sample()
	r.id, r.size = id, size
	if err := nc.PublishMsg(&nats.Msg{Subject: netwire.Subject(host, "SRV", "a"), Reply: inbox, Header: r.header(), Data: first}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseAck(m)
	if err != nil || a.got != len(first) {
		t.Fatalf("the acknowledgement of the first chunk: %+v, %v (headers %v)", a, err, m.Header)
	}
	return sub, a.chunksTo
}

// Requests in chunks that do not come whole are never delivered: one
// whose sender stops is dropped after the silence and counted; one with
// a chunk out of place is answered bad_message. A chunk after that is
// not taken. Then a whole one is delivered.
func TestPartialRequests(t *testing.T) {
	const host = "gw-partial-host"
	g, dir, _ := setupFree(t, host, WithTiming(50*time.Millisecond, time.Second))
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const size = 100
	data := bytesOf(3, size)

	// The sender stops after a chunk.
	_, to := rawChunked(t, g.nc, host, "p-1", size, data[:10])
	if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: chunkHeader(10), Data: data[10:20]}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the stalled request dropped", func() bool { return g.Stats().Partial == 1 })
	// The rest, late: not taken.
	if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: chunkHeader(20), Data: data[20:]}); err != nil {
		t.Fatal(err)
	}

	// A chunk out of place.
	sub, to := rawChunked(t, g.nc, host, "p-2", size, data[:10])
	if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: chunkHeader(50), Data: data[50:]}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || m.Header.Get(netwire.HeaderStatus) != "bad_message" {
		t.Fatalf("a chunk out of place: %v, %v; want bad_message", m, err)
	}

	// A whole one, in two chunks: the only one delivered.
	sub, to = rawChunked(t, g.nc, host, "p-3", size, data[:60])
	if err := g.nc.PublishMsg(&nats.Msg{Subject: to, Header: chunkHeader(60), Data: data[60:]}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := srv.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg.Data(), data) {
		t.Errorf("delivered %d bytes, not the request's %d", len(msg.Data()), size)
	}
	if err := msg.Reply([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if s := m.Header.Get(netwire.HeaderStatus); s == "ok" {
			break
		} else if s != StatusMore && s != StatusWorking {
			t.Fatalf("the whole request answered %q", s)
		}
	}
	st := g.Stats()
	if st.Partial != 2 || st.In != 3 || st.BadRequests != 1 {
		t.Errorf("stats %+v: want 2 partial (1 bad), 3 in", st)
	}
	waitFor(t, 5*time.Second, "the bytes held given back", func() bool { return g.Stats().Held == 0 })
}

// FuzzParseChunking feeds the decoders of chunking's headers: the
// acknowledgement, the chunk after the first, and an answer's first
// chunk. What they take is in range.
func FuzzParseChunking(f *testing.F) {
	f.Add("more", "10", "_INBOX.abc.c.7", "20", "ok", "100", 5)
	f.Add("more", "0", "gosimpl.v1.h.N", "-1", "ok", "x", 0)
	f.Add("working", "99999999999", "a..b", "5", "too_large", "5", 200)
	f.Fuzz(func(t *testing.T, status, acked, to, offset, answerStatus, size string, n int) {
		n = max(0, min(n, 1<<12))
		h := nats.Header{}
		for k, v := range map[string]string{netwire.HeaderStatus: status, netwire.HeaderAcked: acked, netwire.HeaderChunksTo: to} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if a, err := parseAck(&nats.Msg{Header: h}); err == nil {
			if a.got < 1 || a.got > netwire.MaxPayload || subject("to", a.chunksTo) != nil {
				t.Fatalf("parseAck took %+v", a)
			}
		}
		data := make([]byte, n)
		const whole = 1000
		if off, err := parseChunk(&nats.Msg{Header: nats.Header{netwire.HeaderOffset: {offset}}, Data: data}, whole); err == nil {
			if off < 1 || n == 0 || off+n > whole || strconv.Itoa(off) != offset {
				t.Fatalf("parseChunk took offset %d for %d bytes of %d", off, n, whole)
			}
		}
		ah := answerHeader(answerStatus, 0)
		for k, v := range map[string]string{netwire.HeaderSize: size, netwire.HeaderAcksTo: to} {
			if v != "" {
				ah.Set(k, v)
			}
		}
		if a, err := parseAnswer(&nats.Msg{Header: ah, Data: data}); err == nil && a.size != 0 {
			if a.status != netwire.StatusOK || a.size <= n || a.size > netwire.MaxPayload || subject("to", a.acksTo) != nil {
				t.Fatalf("parseAnswer took %+v for %d bytes", a, n)
			}
		}
	})
}

// On the sending side: a request in chunks whose receiving gateway
// (here a raw NATS peer serving host "peer") stops acknowledging has at
// most window chunks out beyond what was acknowledged, and fails, once
// the silence passes, as unreachable with nothing delivered when its
// last chunk had not gone out; as outcome unknown when it had.
func TestChunksStopped(t *testing.T) {
	const host = "gw-stopped-host"
	g, dir, _ := setupFree(t, host, WithTiming(50*time.Millisecond, time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer := g.nc // the peer's own subscriptions, on the gateway's server
	var (
		ackAll  atomic.Bool  // acknowledge every chunk, else the first only
		chunks  atomic.Int64 // chunks after the first that came
		replyTo atomic.Value // the request's reply subject
	)
	chunkInbox := peerInbox("peer")
	csub, err := peer.Subscribe(chunkInbox, func(m *nats.Msg) {
		chunks.Add(1)
		if ackAll.Load() {
			off, _ := strconv.Atoi(m.Header.Get(netwire.HeaderOffset))
			peer.PublishMsg(&nats.Msg{Subject: replyTo.Load().(string), Header: ackHeader(off+len(m.Data), chunkInbox)})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer csub.Unsubscribe()
	sub, err := peer.Subscribe(netwire.HostSubjects("peer"), func(m *nats.Msg) {
		if answerBatch(t, peer, m) {
			return // the Locate, small: in a batch
		}
		r, err := parseRequest(m.Header)
		switch {
		case err != nil:
			t.Errorf("the peer got a request it cannot read: %v", err)
		case r.kind == netwire.KindLocate:
			peer.PublishMsg(&nats.Msg{Subject: m.Reply, Header: answerHeader("ok", 0)})
		default:
			replyTo.Store(m.Reply)
			peer.PublishMsg(&nats.Msg{Subject: m.Reply, Header: ackHeader(len(m.Data), chunkInbox)})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := peer.Flush(); err != nil {
		t.Fatal(err)
	}
	c := locateIn(t, ctx, dir, "peer:SRV")

	// Only the first chunk acknowledged: window chunks follow it, then
	// nothing.
	size := 10 * g.Limit()
	_, err = c.Send(ctx, make([]byte, size), make([]byte, 16))
	want := strconv.Itoa((1+window)*g.Limit()) + " bytes of the request went out in chunks, then no more could; nothing was delivered"
	if !errors.Is(err, simpl.ErrUnreachable) || !strings.Contains(err.Error(), want) {
		t.Errorf("a Send whose chunks are not acknowledged: %v, want ErrUnreachable saying %q", err, want)
	}
	// Those that went out did before the silence; they may still be on
	// their way to the peer.
	waitFor(t, 5*time.Second, "the chunks sent arriving", func() bool { return chunks.Load() >= window })
	if n := chunks.Load(); n != window {
		t.Errorf("%d chunks went out beyond the one acknowledged, want %d", n, window)
	}

	// Every chunk acknowledged, then silence: it may have been delivered.
	ackAll.Store(true)
	chunks.Store(0)
	_, err = c.Send(ctx, make([]byte, size), make([]byte, 16))
	if !errors.Is(err, simpl.ErrOutcomeUnknown) {
		t.Errorf("a Send whose chunks all went out, then silence: %v, want ErrOutcomeUnknown", err)
	}
	waitFor(t, 5*time.Second, "the chunks sent arriving", func() bool { return chunks.Load() >= 9 })
	if n := chunks.Load(); n != 9 {
		t.Errorf("%d chunks after the first, want 9", n)
	}
	if st := g.Stats(); st.Unreachable != 1 || st.Unknown != 1 {
		t.Errorf("stats %+v: want 1 unreachable, 1 unknown", st)
	}
}

// Replies in chunks that stop: the requesting gateway, whose chunks stop
// coming after the first, tells its program the outcome is unknown (the
// request was delivered, its reply lost); the serving gateway, whose
// chunks are not acknowledged, gives the reply up after the silence.
// Both count a partial reply and give back the bytes they held.
func TestPartialReplies(t *testing.T) {
	const host = "gw-preply-host"
	g, dir, _ := setupFree(t, host, WithTiming(50*time.Millisecond, time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer := g.nc
	acks := make(chan *nats.Msg, 16)
	ackInbox := peerInbox("peer")
	asub, err := peer.ChanSubscribe(ackInbox, acks)
	if err != nil {
		t.Fatal(err)
	}
	defer asub.Unsubscribe()
	size := 3 * g.Limit()
	// A peer serving host "peer" that answers a Send with the first
	// chunk of a reply and no more.
	firstChunk := func(reply string) {
		h := answerHeader("ok", 0)
		h.Set(netwire.HeaderSize, strconv.Itoa(size))
		h.Set(netwire.HeaderAcksTo, ackInbox)
		peer.PublishMsg(&nats.Msg{Subject: reply, Header: h, Data: make([]byte, g.Limit())})
	}
	sub, err := peer.Subscribe(netwire.HostSubjects("peer"), func(m *nats.Msg) {
		// The Locate and the Send (a small request) come in batches;
		// the Send's reply, large, is answered alone.
		if !answerBatch(t, peer, m, firstChunk) {
			t.Errorf("the peer got a request alone: %s", m.Subject)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := peer.Flush(); err != nil {
		t.Fatal(err)
	}
	c := locateIn(t, ctx, dir, "peer:SRV")
	if _, err := c.Send(ctx, []byte("x"), make([]byte, size)); !errors.Is(err, simpl.ErrOutcomeUnknown) {
		t.Errorf("a Send whose reply in chunks stops after the first: %v, want ErrOutcomeUnknown", err)
	}
	select {
	case m := <-acks:
		if a, err := parseAck(m); err != nil || a.got != g.Limit() {
			t.Errorf("the acknowledgement of the reply's first chunk: %+v, %v", a, err)
		}
	case <-ctx.Done():
		t.Error("the reply's first chunk was not acknowledged")
	}
	if st := g.Stats(); st.PartialReplies != 1 || st.Unknown != 1 {
		t.Errorf("stats %+v: want 1 partial reply, 1 unknown", st)
	}
	// Given back once the program has its answer: maybe just after.
	waitFor(t, 5*time.Second, "the bytes held given back", func() bool { return g.Stats().Held == 0 })

	// The serving side: a receiver replies in chunks to a requester that
	// acknowledges none of them.
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	served := make(chan error, 1)
	go func() {
		msg, err := srv.Receive(ctx)
		if err == nil {
			err = msg.Reply(make([]byte, size))
		}
		served <- err
	}()
	inbox := peerInbox("a")
	rsub, err := peer.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer rsub.Unsubscribe()
	r := sample()
	r.maxReply, r.timeout = size, 0
	if err := peer.PublishMsg(&nats.Msg{Subject: netwire.Subject(host, "SRV", "a"), Reply: inbox, Header: r.header(), Data: []byte("q")}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := rsub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(netwire.HeaderStatus) == StatusWorking {
			continue
		}
		a, err := parseAnswer(m)
		if err != nil || a.status != netwire.StatusOK || a.size != size || len(m.Data) != g.Limit() {
			t.Fatalf("the reply's first chunk: %+v, %d bytes, %v", a, len(m.Data), err)
		}
		break
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the unacknowledged reply given up", func() bool { return g.Stats().PartialReplies == 2 })
	waitFor(t, 5*time.Second, "the bytes held given back", func() bool { return g.Stats().Held == 0 })
}

// Two gateways serving one host share its requests (a queue group): the
// chunks of each request reach the gateway that took its first chunk, so
// every request, whichever took it, arrives whole and its reply too.
func TestChunksQueueGroup(t *testing.T) {
	const host, from = "gw-queue-host", "gw-queue-from"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&Network{Host: host, NATS: []string{deployment(t)}}).Connect(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(5 * time.Second) })
	// start starts a gateway for host on the shared server, with a FIFO
	// directory of its own; serving, an echoing receiver SRV.
	start := func(host string, nc *nats.Conn, serving bool) (*Gateway, string) {
		dir := t.TempDir()
		ch, err := simpl.Attach(netwire.GatewayName, simpl.WithDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ch.Close() })
		g, err := New(ch, nc, host, WithTiming(100*time.Millisecond, 10*time.Second)) // as TestChunks
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		if serving {
			srv, err := simpl.Attach("SRV", simpl.WithDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					msg, err := srv.Receive(ctx)
					if err != nil {
						return
					}
					_ = msg.Reply(msg.Data()) // the Send checks what came back
				}
			}()
			t.Cleanup(func() { srv.Close(); <-done })
		}
		return g, dir
	}
	var served []*Gateway
	for range 2 {
		g, _ := start(host, peerOn(t, conn), true)
		served = append(served, g)
	}
	sender, dir := start(from, conn.Conn, false)
	c := locateIn(t, ctx, dir, host+":SRV")
	const n = 8
	errs := make(chan error, n)
	for k := range n {
		go func() {
			req := bytesOf(uint64(10+k), 3*sender.Limit()+k)
			got := make([]byte, len(req))
			m, err := c.Send(ctx, req, got)
			if err == nil && !bytes.Equal(got[:m], req) {
				err = errors.New("the echo differs from the request")
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("a Send in chunks to a host of two gateways: %v", err)
		}
	}
	var in int64
	for i, g := range served {
		st := g.Stats()
		in += st.In
		if st.Partial != 0 || st.BadRequests != 0 || st.StrayAnswers != 0 {
			t.Errorf("gateway %d: %+v", i, st)
		}
		t.Logf("gateway %d took %d requests", i, st.In)
	}
	if in != n+1 { // and the Locate
		t.Errorf("the two gateways took %d requests, want %d", in, n+1)
	}
}

// setupFree is setup on a NATS server of the test's own without
// permissions: the chunk tests' raw clients play other hosts' gateways.
func setupFree(t testing.TB, host string, opts ...Option) (*Gateway, string, *Connected) {
	return setupOn(t, &Network{Host: host, NATS: []string{deployment(t)}}, host, opts...)
}

// peerInbox is a new subject under host's inbox, for a raw peer playing
// host: a gateway answers, acknowledges and sends chunks to another host
// only under that host's inbox.
func peerInbox(host string) string {
	return netwire.Inbox(host) + strings.TrimPrefix(nats.NewInbox(), "_INBOX")
}

// peerOn is a client of conn's server of its own (a raw peer playing
// another host), closed when the test ends.
func peerOn(t testing.TB, conn *Connected) *nats.Conn {
	t.Helper()
	peer, err := nats.Connect(conn.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	return peer
}

// answerBatch answers, as a raw peer playing another host's gateway, a
// batch of requests (small ones come in batches): each entry ok, with no
// data, but for Sends when send is given: send answers those alone, on
// the subject it is given. It says whether m was a batch.
func answerBatch(t testing.TB, peer *nats.Conn, m *nats.Msg, send ...func(reply string)) bool {
	if _, name, _, err := netwire.ParseSubject(m.Subject); err != nil || name != "" {
		return false
	}
	ans := netwire.AppendAnswers(nil)
	inbox := ""
	_, err := netwire.DecodeBatch(m.Data, func(h netwire.Batch, e netwire.BatchEntry, err error) bool {
		if err != nil {
			t.Errorf("the peer got a batch entry it cannot read: %v", err)
		}
		inbox = h.Inbox
		if e.Kind == netwire.KindSend && len(send) > 0 {
			send[0](h.Inbox + "." + strconv.FormatUint(e.Seq, 10))
			return true
		}
		ans, _ = netwire.AppendAnswer(ans, &netwire.Answer{Seq: e.Seq, Status: netwire.StatusOK})
		return true
	})
	if err != nil {
		t.Errorf("the peer got a batch it cannot read: %v", err)
		return true
	}
	if len(ans) > len(netwire.AppendAnswers(nil)) {
		peer.Publish(inbox+".a", ans)
	}
	return true
}
