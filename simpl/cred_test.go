package simpl_test

// Message.Cred across real processes: on both transports it reports the
// sending helper's own pid, uid and gid; a helper that switched to another
// user (as root) is reported as that user; a request relayed through FIFOs
// reports its original sender, one forwarded from shared memory the
// forwarding process; a proxy has none.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// credRoles are the helper roles of the credential tests.
var credRoles = map[string]simpltest.Role{
	"cred-send": roleCredSend,
}

// credTime bounds each credential test's waits.
const credTime = 30 * time.Second

// roleCredSend CRED TRANSPORT NAME TO PROXY: become CRED ("self": stay as
// is), attach NAME with TRANSPORT (fifo, shm or auto), locate TO, print
// "via TRANSPORT", send "who?", print "reply R", trigger PROXY unless it is
// 0 and print "done".
func roleCredSend(args []string) error {
	if args[0] != "self" {
		if err := becomeUser(args[0]); err != nil {
			return err
		}
	}
	ch, err := simpl.Attach(args[2], withTransport(parseTransport(args[1])))
	if err != nil {
		return err
	}
	defer ch.Close()
	to, err := ch.Locate(context.Background(), args[3])
	if err != nil {
		return err
	}
	defer to.Close()
	simpltest.Ready()
	fmt.Printf("via %s\n", to.Transport())
	reply := make([]byte, 16)
	ctx, cancel := context.WithTimeout(context.Background(), credTime)
	defer cancel()
	n, err := to.Send(ctx, []byte("who?"), reply)
	if err != nil {
		return err
	}
	fmt.Printf("reply %s\n", reply[:n])
	if proxy, _ := strconv.Atoi(args[4]); proxy != 0 {
		if err := to.Trigger(proxy); err != nil {
			return err
		}
	}
	fmt.Println("done")
	return nil
}

// credSender is a cred-send helper's request as the receiver saw it.
type credSender struct {
	name string
	proc *simpltest.Proc
}

// startCredSender starts a cred-send helper as cred sending to "to"
// through tr, then triggering proxy (unless 0), and checks that it chose
// tr.
func startCredSender(t *testing.T, dir, cred, tr, name, to string, proxy int) credSender {
	t.Helper()
	p := simpltest.Start(t, "cred-send", permEnv(dir), cred, tr, name, to, strconv.Itoa(proxy))
	if tr != "auto" {
		if via := p.Expect("via", credTime); via != "via "+tr {
			t.Fatalf("sender %s: %q, want via %s", name, via, tr)
		}
	}
	return credSender{name, p}
}

// receiveCred receives the request of s on srv, checks that Sender and
// Cred name wantPID, wantUID and wantGID, and answers it; then it
// receives the proxy s triggers, which has no credentials.
func receiveCred(t *testing.T, srv *simpl.Channel, s credSender, wantName string, wantPID, wantUID, wantGID int) {
	t.Helper()
	ctx := simpltest.Context(t, credTime)
	m, err := srv.Receive(ctx)
	if err != nil {
		t.Fatalf("receive from %s: %v", s.name, err)
	}
	if (m.Proxy() > 0) || string(m.Data()) != "who?" {
		t.Fatalf("received proxy %d / %q from %s, want the request \"who?\"", m.Proxy(), m.Data(), s.name)
	}
	want := simpl.Cred{PID: wantPID, UID: wantUID, GID: wantGID}
	if c, ok := m.Cred(); !ok || c != want {
		t.Errorf("%s: Cred() = %+v, %v; want %+v, true", s.name, c, ok, want)
	}
	if name, pid := m.Sender(); name != wantName || pid != wantPID {
		t.Errorf("%s: Sender() = %s, %d; want %s, %d", s.name, name, pid, wantName, wantPID)
	}
	if err := m.Reply([]byte("ok")); err != nil {
		t.Fatalf("reply to %s: %v", s.name, err)
	}
	// Still there once answered: it is the sender's, not the request's.
	if c, ok := m.Cred(); !ok || c != want {
		t.Errorf("%s: Cred() once answered = %+v, %v; want %+v, true", s.name, c, ok, want)
	}
	s.proc.Expect("reply ok", credTime)
	if m, err = srv.Receive(ctx); err != nil {
		t.Fatalf("receive the proxy of %s: %v", s.name, err)
	}
	if m.Proxy() != 7 {
		t.Fatalf("received %q from %s, want proxy 7", m.Data(), s.name)
	}
	if c, ok := m.Cred(); ok {
		t.Errorf("%s: a proxy's Cred() = %+v, true; want false", s.name, c)
	}
	s.proc.Expect("done", credTime)
	if err := s.proc.Wait(credTime); err != nil {
		t.Fatalf("sender %s: %v", s.name, err)
	}
}

// TestCred: a sender of this process's user, through FIFOs (to a FIFO-only
// receiver and to one that serves both transports) and through shared
// memory, is reported with its own pid, uid and gid.
func TestCred(t *testing.T) {
	dir := simpltest.Dir(t)
	for i, tc := range []struct {
		name string
		rx   string
		tx   string
	}{
		{"fifo to a FIFO-only receiver", simpl.FIFO, "fifo"},
		{"fifo to a receiver of both", "auto", "fifo"},
		{"shm", "auto", "shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvName, cliName := "CRED"+strconv.Itoa(i), "CREDCLI"+strconv.Itoa(i)
			srv := attach(t, dir, srvName, withTransport(tc.rx))
			s := startCredSender(t, dir, "self", tc.tx, cliName, srvName, 7)
			receiveCred(t, srv, s, cliName, s.proc.PID(), os.Getuid(), os.Getgid())
			srv.Close()
		})
	}
}

// TestCredOtherUser (root): helpers that switched to nobody, in nogroup
// and in another group, sending to a 0666 receiver of root's through
// either transport, are reported as nobody with their own group.
func TestCredOtherUser(t *testing.T) {
	needRoot(t)
	dir := simpltest.Dir(t)
	shareDir(t, dir)
	srv := attach(t, dir, "CREDPUB", simpl.WithPerm(0o666), simpl.WithTransport())
	for i, tc := range []struct {
		cred, tx string
	}{
		{nobodyCred, "fifo"},
		{outsiderCred, "fifo"},
		{nobodyCred, "shm"},
		{outsiderCred, "shm"},
	} {
		t.Run(tc.tx+" as "+tc.cred, func(t *testing.T) {
			f := strings.Split(tc.cred, ":")
			uid, _ := strconv.Atoi(f[0])
			gid, _ := strconv.Atoi(f[1])
			if uid == os.Getuid() && gid == os.Getgid() {
				t.Fatalf("%s is the test's own user: nothing would be shown", tc.cred)
			}
			name := "CREDUSR" + strconv.Itoa(i)
			s := startCredSender(t, dir, tc.cred, tc.tx, name, "CREDPUB", 7)
			receiveCred(t, srv, s, name, s.proc.PID(), uid, gid)
		})
	}
}

// TestCredRelayed: a request relayed through FIFOs reaches the receiver
// in its sender's segment and is reported as the sender's; a request that
// came to the relay through shared memory is forwarded by the relay, which
// is then the sender.
func TestCredRelayed(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "CREDEND", simpl.WithTransport())
	for i, tc := range []struct {
		name string
		tx   string // the sender's and the relay's transport
	}{
		{"fifo, handed over", "fifo"},
		{"shm, forwarded", "shm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relayName, cliName := "CREDRLY"+strconv.Itoa(i), "CREDORIG"+strconv.Itoa(i)
			relayEnv := []string{"GOSIMPL_TRANSPORT=" + map[string]string{"fifo": "fifo", "shm": "auto"}[tc.tx]}
			relay := simpltest.Start(t, "relay", append(permEnv(dir), relayEnv...), relayName, "CREDEND")
			s := startCredSender(t, dir, "self", tc.tx, cliName, relayName, 0)
			wantName, wantPID := cliName, s.proc.PID()
			if tc.tx == "shm" {
				wantName, wantPID = relayName, relay.PID()
			}
			receiveRelayed(t, dir, srv, s, relay, wantName, wantPID)
		})
	}
}

// receiveRelayed receives the request s sent through relay and checks its
// Sender and Cred, then stops the relay and removes its FIFOs.
func receiveRelayed(t *testing.T, dir string, srv *simpl.Channel, s credSender, relay *simpltest.Proc, wantName string, wantPID int) {
	t.Helper()
	ctx := simpltest.Context(t, credTime)
	m, err := srv.Receive(ctx)
	if err != nil {
		t.Fatalf("receive from %s: %v", s.name, err)
	}
	if (m.Proxy() > 0) || string(m.Data()) != "who?" {
		t.Fatalf("received proxy %d / %q from %s, want the request \"who?\"", m.Proxy(), m.Data(), s.name)
	}
	relay.Expect("relayed", credTime)
	want := simpl.Cred{PID: wantPID, UID: os.Getuid(), GID: os.Getgid()}
	if c, ok := m.Cred(); !ok || c != want {
		t.Errorf("Cred() = %+v, %v; want %+v, true", c, ok, want)
	}
	if name, pid := m.Sender(); name != wantName || pid != wantPID {
		t.Errorf("Sender() = %s, %d; want %s, %d", name, pid, wantName, wantPID)
	}
	if err := m.Reply([]byte("ok")); err != nil {
		t.Fatalf("reply: %v", err)
	}
	s.proc.Expect("reply ok", credTime)
	s.proc.Expect("done", credTime)
	if err := s.proc.Wait(credTime); err != nil {
		t.Fatalf("sender %s: %v", s.name, err)
	}
	relay.Signal(syscall.SIGKILL)
	relay.Wait(credTime)
	reap(t, dir)
}
