package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Under the deployment's permissions (netwire.Permissions: one NATS
// user a host, as docs/network.md sets up), host c cannot answer host a's
// requests to host b, although it learns a's inbox (from a's request for
// its names list) and may publish to any host's inbox. Before, requests
// were numbered 1, 2, 3, and c's batch of answers numbered 1 to 50 was
// taken as b's answer.
func TestForgedAnswers(t *testing.T) {
	var users []*server.User
	for _, h := range []string{"ha", "hb", "hc"} {
		pub, sub := netwire.Permissions(h)
		users = append(users, &server.User{Username: h, Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: pub}, Subscribe: &server.SubjectPermission{Allow: sub}}})
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server is not ready after 10s")
	}
	url := func(u string) string { return strings.Replace(ns.ClientURL(), "nats://", "nats://"+u+":pw@", 1) }
	g, dir, _ := setupOn(t, &Network{Host: "ha", NATS: []string{url("ha")}}, "ha")

	// b: a gateway played raw, that holds a's Send until told.
	b, err := nats.Connect(url("hb"), nats.CustomInboxPrefix(netwire.Inbox("hb")))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	held := make(chan string, 4)
	if _, err := b.Subscribe(netwire.HostSubjects("hb"), func(m *nats.Msg) {
		answerBatch(t, b, m, func(reply string) { held <- reply })
	}); err != nil {
		t.Fatal(err)
	}
	b.Flush()

	// c: announces itself, and learns a's inbox from a's list request.
	c, err := nats.Connect(url("hc"), nats.CustomInboxPrefix(netwire.Inbox("hc")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	asked := make(chan string, 4)
	if _, err := c.Subscribe(netwire.NamesListSubject("hc", 1), func(m *nats.Msg) { asked <- m.Reply }); err != nil {
		t.Fatal(err)
	}
	c.Flush()
	p, _ := netwire.AppendNames(nil, &netwire.Names{Type: netwire.NamesPresence, Gen: 1})
	c.Publish(netwire.NamesSubject("hc"), p)
	var inbox string
	select {
	case r := <-asked:
		inbox = r[:strings.Index(r, ".n.")]
	case <-time.After(10 * time.Second):
		t.Fatal("gateway a did not ask c for its names within 10s")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := locateIn(t, ctx, dir, "hb:SRV")
	done := make(chan string, 1)
	go func() {
		reply := make([]byte, 64)
		n, err := conn.Send(ctx, []byte("to b"), reply)
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- string(reply[:n])
	}()
	var reply string
	select {
	case reply = <-held:
	case <-ctx.Done():
		t.Fatal("b did not get a's Send")
	}

	// c answers every small number, in a batch and alone.
	ans := netwire.AppendAnswers(nil)
	for seq := uint64(1); seq <= 50; seq++ {
		ans, _ = netwire.AppendAnswer(ans, &netwire.Answer{Seq: seq, Status: netwire.StatusOK, Data: []byte("forged")})
		c.PublishMsg(&nats.Msg{Subject: inbox + "." + strconv.FormatUint(seq, 10), Header: answerHeader("ok", 0), Data: []byte("forged")})
	}
	if err := c.Publish(inbox+".a", ans); err != nil {
		t.Fatal(err)
	}
	c.Flush()
	// Counted as stray once gateway a has them all; then b answers.
	answerAfter(t, ctx, g, func(st Stats) bool { return st.StrayAnswers >= 100 }, done, b, reply)
}

// answerAfter waits, within ctx, until gateway g's counts say the forged
// answers were all taken (counted), the Send still waiting (done: its
// result); then b answers it on reply, and the Send must get that answer.
func answerAfter(t *testing.T, ctx context.Context, g *Gateway, counted func(Stats) bool, done <-chan string, b *nats.Conn, reply string) {
	t.Helper()
	for !counted(g.Stats()) {
		select {
		case r := <-done:
			t.Fatalf("the Send ended before b answered: %q", r)
		case <-ctx.Done():
			t.Fatalf("the forged answers not all counted: %+v", g.Stats())
		case <-time.After(5 * time.Millisecond): // polling the count
		}
	}
	if err := b.PublishMsg(&nats.Msg{Subject: reply, Header: answerHeader("ok", 0), Data: []byte("from b")}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r != "from b" {
			t.Errorf("the Send to b got %q, want b's answer", r)
		}
	case <-ctx.Done():
		t.Fatal("the Send got no answer")
	}
}

// A request's answer goes to the sending host's inbox only: a request
// from host a whose reply subject is another host's inbox, or a subject
// names are followed on, is counted bad and answered nowhere, so that no
// host can have a gateway publish where it likes.
func TestAnswersOnlyToSender(t *testing.T) {
	const host = "gw-answers-host"
	g, _, conn := setupFree(t, host)
	peer := peerOn(t, conn)
	r := request{kind: netwire.KindSend, maxReply: 64, fromHost: "a", fromName: "P", fromPID: 1}
	elsewhere := []string{peerInbox("b"), netwire.NamesSubject(host), netwire.InboxPrefix + "a"}
	wrong := make(chan *nats.Msg, 8)
	for _, s := range elsewhere {
		if _, err := peer.ChanSubscribe(s, wrong); err != nil {
			t.Fatal(err)
		}
	}
	good := peerInbox("a")
	answered, err := peer.SubscribeSync(good)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range elsewhere {
		r.id = "bad-" + strconv.Itoa(i)
		peer.PublishMsg(&nats.Msg{Subject: netwire.Subject(host, "NOSUCH", "a"), Reply: s, Header: r.header(), Data: []byte("q")})
	}
	// A subject whose name does not parse is answered bad_message, but
	// to the sending host's inbox too, never elsewhere.
	r.id = "bad-subject"
	peer.PublishMsg(&nats.Msg{Subject: netwire.SubjectPrefix + host + ".a~ZZ.a", Reply: elsewhere[0], Header: r.header(), Data: []byte("q")})
	r.id = "good"
	peer.PublishMsg(&nats.Msg{Subject: netwire.Subject(host, "NOSUCH", "a"), Reply: good, Header: r.header(), Data: []byte("q")})
	if _, err := answered.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("no answer to the request with its own inbox: %v", err)
	}
	select {
	case m := <-wrong:
		t.Errorf("an answer went to %s", m.Subject)
	default:
	}
	if st := g.Stats(); st.BadRequests != int64(len(elsewhere)+1) {
		t.Errorf("%d bad requests counted, want %d", st.BadRequests, len(elsewhere)+1)
	}
}

// A program that connects to the embedded server's loopback listener
// (any local user can) may send to other hosts' names, never to this
// host's own: the gateway would deliver those as itself, past the FIFO
// modes of the names and of its own (-perm). Before, a bare NATS client
// reached a receiver attached with mode 0600.
func TestProgramsNotToOwnHost(t *testing.T) {
	const host = "gw-loop-host"
	_, dir, conn := setupOn(t, &Network{Host: host, Listen: "127.0.0.1:0"}, host)
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir), simpl.WithPerm(0o600))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	violations := make(chan error, 4)
	nc, err := nats.Connect(conn.URL, nats.CustomInboxPrefix(ProgramInbox(host)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := request{kind: netwire.KindSend, maxReply: 64, fromHost: host, fromName: "ANYUSER", fromPID: 4242, id: "loop-1"}
	if err := nc.PublishMsg(&nats.Msg{Subject: netwire.Subject(host, "SRV", host), Reply: ProgramInbox(host) + ".x", Header: r.header(), Data: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("publishing to this host's SRV: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publishing to this host's SRV: no permissions violation within 10s")
	}
}

// A "no responders" on <inbox>.x0, in the server's form or as a
// gateway's unreachable answer, is counted bad and settles nothing:
// batch 0 is "went out alone", so before, any host that knew the inbox
// failed every lone request in flight "unreachable, nothing delivered",
// delivered ones too (helper-52).
func TestForgedNoRespondersX0(t *testing.T) {
	const host = "gw-x0-host"
	g, dir, conn := setupFree(t, host)
	b := peerOn(t, conn)
	held := make(chan string, 4)
	if _, err := b.Subscribe(netwire.HostSubjects("hb"), func(m *nats.Msg) {
		if answerBatch(t, b, m) {
			return
		}
		held <- m.Reply // delivered; b answers once the forgeries are in
	}); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := locateIn(t, ctx, dir, "hb:SRV")
	done := make(chan string, 1)
	go func() {
		reply := make([]byte, 64)
		n, err := c.Send(ctx, make([]byte, 20<<10), reply) // over a batch's limit: goes alone
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- string(reply[:n])
	}()
	var reply string
	select {
	case reply = <-held:
	case <-ctx.Done():
		t.Fatal("b never got the Send")
	}
	inbox := reply[:strings.LastIndexByte(reply, '.')]
	before := g.Stats().BadAnswers
	forger := peerOn(t, conn)
	h := nats.Header{}
	h.Set(netwire.HeaderStatus, "unreachable")
	forger.PublishMsg(&nats.Msg{Subject: inbox + ".x0", Header: h})
	h = nats.Header{}
	h.Set(natsStatus, noResponders)
	forger.PublishMsg(&nats.Msg{Subject: inbox + ".x0", Header: h})
	forger.Flush()
	answerAfter(t, ctx, g, func(st Stats) bool { return st.BadAnswers >= before+2 }, done, b, reply)
}
