package fifo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

func init() { roles["forge"] = runForge }

// runForge (DIR RECEIVER WHOM PID NBYTES MODE) makes a segment of its own
// (IPC_PRIVATE, octal MODE, no gosimpl trailer: as a C sender would)
// whose header says it comes from WHOM of PID ("self": this process), with
// a 2-byte request 'E','x' and nbytes NBYTES, rings RECEIVER's FIFO with
// it and prints "rang". Then, for each "look" on stdin, it prints
// "answered" if the receiver has written into the segment and "no answer"
// otherwise; it exits when stdin closes.
func runForge(args []string) error {
	reg, err := naming.Open(args[0])
	if err != nil {
		return err
	}
	ent, err := reg.Lookup(args[1])
	if err != nil {
		return err
	}
	pid := os.Getpid()
	if args[3] != "self" {
		pid, _ = strconv.Atoi(args[3])
	}
	nbytes, _ := strconv.Atoi(args[4])
	mode, _ := strconv.ParseUint(args[5], 8, 32)
	id, err := unix.SysvShmGet(unix.IPC_PRIVATE, sys.PageSize, unix.IPC_CREAT|unix.IPC_EXCL|int(mode))
	if err != nil {
		return err
	}
	mem, err := unix.SysvShmAttach(id, 0, 0)
	unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	if err != nil {
		return err
	}
	s := segment{id: id, mem: mem}
	s.writeHeader(args[2], pid, s.capacity(), nbytes, s.capacity())
	copy(s.data(2), "Ex")
	fd, err := sys.OpenWriter(ent.Path)
	if err != nil {
		return err
	}
	if err := sys.WriteInt32(fd, int32(id)); err != nil {
		return err
	}
	fmt.Println("rang")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "look" {
			return fmt.Errorf("unknown command %q", in.Text())
		}
		if int(s.get(offNBytes)) != nbytes {
			fmt.Println("answered")
		} else {
			fmt.Println("no answer")
		}
	}
	return in.Err()
}

// forge runs the forge helper against receiver, calls settled, which
// waits until the receiver has done what it does with the doorbell
// (dropped it: Dropped counts it; or answered it), then asks the helper
// whether its segment was answered, and returns that verdict. Nothing is
// left to timing: the look comes after the receiver's decision.
func forge(t *testing.T, dir, receiver, whom, pid string, nbytes int, mode string, settled func()) (verdict string, helperPID int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), proctest.Env("forge", dir, receiver, whom, pid, strconv.Itoa(nbytes), mode)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.StartCmd(t, cmd)
	defer in.Close()
	p.Expect("rang", helperTimeout)
	settled()
	if _, err := fmt.Fprintln(in, "look"); err != nil {
		t.Fatalf("forge: %v", err)
	}
	verdict = p.ReadLine(helperTimeout)
	in.Close()
	if err := p.Wait(helperTimeout); err != nil {
		t.Fatalf("forge: %v", err)
	}
	return verdict, p.PID()
}

// waitDropped waits until ep has dropped n doorbells in all.
func waitDropped(t *testing.T, ep *Endpoint, n int64) {
	t.Helper()
	waitRead(t, ep, "the doorbell dropped", func() bool { return ep.Dropped() >= n })
	if got := ep.Dropped(); got != n {
		t.Errorf("dropped %d doorbells, want %d", got, n)
	}
}

// receiveNothing fails the test if ep delivers anything before a marker
// request sent to it now. Doorbells are read from the FIFO in order, so
// whatever ep made of one rung before would come first: the check ends
// with an event, the marker's arrival, rather than after a time.
func receiveNothing(t *testing.T, ep *Endpoint) {
	t.Helper()
	mark, err := Attach("MARK", Options{Registry: ep.reg})
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Close()
	c, err := mark.Locate(ep.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := proctest.Context(t, helperTimeout)
	sent := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("marker"), make([]byte, 8))
		sent <- err
	}()
	for {
		req, proxy, err := ep.Receive(ctx)
		if err != nil {
			t.Fatalf("%s: no marker received: %v", ep.Name(), err)
		}
		who, pid := "", 0
		if req.Valid() {
			who, pid = req.Sender()
			if who == "MARK" && string(req.Data()) == "marker" {
				req.Reply(nil)
				break
			}
			req.ReplyError()
		}
		t.Errorf("%s received a request from %s (pid %d), proxy %d; want nothing", ep.Name(), who, pid, proxy)
	}
	if err := <-sent; err != nil {
		t.Errorf("marker: %v", err)
	}
}

// nothingRung fails the test if a doorbell waits in ep's primary reply
// FIFO.
func nothingRung(t *testing.T, ep *Endpoint) {
	t.Helper()
	ep.slotMu.Lock()
	s := ep.free[0]
	ep.slotMu.Unlock()
	if v, ok := s.poll(); ok {
		t.Errorf("%s's reply FIFO was rung with %d by a receiver it never sent to", ep.Name(), v)
	}
}

func attachT(t *testing.T, reg *naming.Registry, name string, perm os.FileMode) *Endpoint {
	t.Helper()
	ep, err := Attach(name, Options{Registry: reg, Perm: perm, ThreadReceive: threadRx()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// TestForgedSender: a header naming a process other than the segment's
// creator is dropped unanswered, whether it is well formed or not, so the
// receiver never rings the reply FIFO of a process that did not send to
// it (TestPermDeputy/whom in simpl, without other users).
func TestForgedSender(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := attachT(t, reg, "SRV", 0)
	victim := attachT(t, reg, "VICTIM", 0)
	me := strconv.Itoa(os.Getpid())

	for i, tc := range []struct {
		name   string
		nbytes int
	}{
		{"well formed", 2},
		{"nbytes past the segment", 1 << 30}, // would be answered -1
	} {
		t.Run(tc.name, func(t *testing.T) {
			verdict, _ := forge(t, dir, "SRV", "VICTIM", me, tc.nbytes, "600", func() { waitDropped(t, srv, int64(i+1)) })
			if verdict != "no answer" {
				t.Errorf("forger: %s", verdict)
			}
			nothingRung(t, victim)
			receiveNothing(t, srv)
		})
	}

	// The control: the same helper, in its own name, is served.
	t.Run("own name", func(t *testing.T) {
		done := serveForger(t, srv)
		var got string
		v, pid := forge(t, dir, "SRV", "FORGER", "self", 2, "600", func() { got = <-done })
		if want := fmt.Sprintf("FORGER %d Ex", pid); got != want {
			t.Errorf("received %q, want %q", got, want)
		}
		if v != "answered" {
			t.Errorf("forger in its own name: %s", v)
		}
		if n := srv.Dropped(); n != 2 {
			t.Errorf("dropped %d doorbells, want 2", n)
		}
	})
}

// serveForger receives one request on ep and answers it. There is no
// reply FIFO YFORGER.PID, so the reply is written but not rung. It sends
// "WHOM PID DATA" on the channel.
func serveForger(t *testing.T, ep *Endpoint) <-chan string {
	done := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
		defer cancel()
		req, _, err := ep.Receive(ctx)
		if err != nil {
			done <- err.Error()
			return
		}
		whom, pid := req.Sender()
		got := fmt.Sprintf("%s %d %s", whom, pid, req.Data())
		if err := req.Reply([]byte("fine")); !errors.Is(err, transport.ErrPeerGone) {
			t.Errorf("Reply: %v, want ErrPeerGone", err)
		}
		done <- got
	}()
	return done
}

// ringWith writes segment id to the receive FIFO of ep, as anyone allowed
// to write it could.
func ringWith(t *testing.T, ep *Endpoint, id int) {
	t.Helper()
	fd, err := sys.OpenWriter(ep.rxPath)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(fd)
	if err := sys.WriteInt32(fd, int32(id)); err != nil {
		t.Fatal(err)
	}
}

// serveOne receives one request on ep and answers it with its data and
// suffix.
func serveOne(t *testing.T, ep *Endpoint, suffix string) {
	t.Helper()
	ctx := proctest.Context(t, helperTimeout)
	req, _, err := ep.Receive(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	if err := req.Reply(append(append([]byte{}, req.Data()...), suffix...)); err != nil {
		t.Error(err)
	}
}

// TestClaim: a public receiver (0666) takes a segment its ringers could
// not use only if it was sent to it, and once (TestPermDeputy/segid in
// simpl, without other users): not another exchange's segment, not one
// it already answered, not one from a sender without a claim (as a C
// sender's). A relay hands the request over.
func TestClaim(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub := attachT(t, reg, "PUB", 0o666)
	srv := attachT(t, reg, "SRV", 0)
	cli := attachT(t, reg, "CLI", 0)
	cSRV, err := cli.Locate("SRV")
	if err != nil {
		t.Fatal(err)
	}
	defer cSRV.Close()
	cPub, err := cli.Locate("PUB")
	if err != nil {
		t.Fatal(err)
	}
	defer cPub.Close()
	ctx := proctest.Context(t, time.Minute)
	dropped := int64(0)
	waitDrop := func(t *testing.T) {
		t.Helper()
		dropped++
		waitDropped(t, pub, dropped)
	}
	expectDropped := func(t *testing.T) {
		t.Helper()
		waitDrop(t)
		receiveNothing(t, pub)
	}
	send := func(c *Conn, msg string) <-chan string {
		ch := make(chan string, 1)
		go func() {
			reply := make([]byte, 64)
			n, err := c.Send(ctx, []byte(msg), reply)
			if err != nil {
				ch <- err.Error()
				return
			}
			ch <- string(reply[:n])
		}()
		return ch
	}

	t.Run("another exchange", func(t *testing.T) {
		got := send(cSRV, "to SRV")
		req, _, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := req
		ringWith(t, pub, segmentOf(r))
		expectDropped(t)
		r.Reply([]byte("SRV's answer"))
		if s := <-got; s != "SRV's answer" {
			t.Errorf("the Send to SRV got %q", s)
		}
	})

	var seg int
	t.Run("sent to it, then again", func(t *testing.T) {
		got := send(cPub, "to PUB")
		ctx := proctest.Context(t, helperTimeout)
		req, _, err := pub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seg = segmentOf(req)
		req.Reply([]byte("PUB's answer"))
		if s := <-got; s != "PUB's answer" {
			t.Fatalf("the Send to PUB got %q", s)
		}
		ringWith(t, pub, seg)
		expectDropped(t)
		next := send(cPub, "again")
		serveOne(t, pub, ".")
		if s := <-next; s != "again." {
			t.Errorf("the next Send to PUB got %q", s)
		}
	})

	t.Run("relayed to it", func(t *testing.T) {
		srvToPub, err := srv.Locate("PUB")
		if err != nil {
			t.Fatal(err)
		}
		defer srvToPub.Close()
		got := send(cSRV, "relay me")
		req, _, err := srv.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		relayed := segmentOf(req)
		if err := req.Relay(ctx, srvToPub); err != nil {
			t.Fatal(err)
		}
		serveOne(t, pub, " by PUB")
		if s := <-got; s != "relay me by PUB" {
			t.Errorf("the relayed Send got %q", s)
		}
		// Its claim was PUB's and is spent: ringing it again is dropped.
		ringWith(t, pub, relayed)
		expectDropped(t)
	})

	t.Run("no claim", func(t *testing.T) {
		// A segment of mode 0600 without a claim, as a C sender makes
		// them: dropped.
		if verdict, _ := forge(t, dir, "PUB", "FORGER", "self", 2, "600", func() { waitDrop(t) }); verdict != "no answer" {
			t.Errorf("forger, 0600: %s", verdict)
		}
		receiveNothing(t, pub)
		// One every user may use anyway (C SIMPL's segments are 0777).
		done := serveForger(t, pub)
		var got string
		v, pid := forge(t, dir, "PUB", "FORGER", "self", 2, "666", func() { got = <-done })
		if want := fmt.Sprintf("FORGER %d Ex", pid); got != want {
			t.Errorf("received %q, want %q", got, want)
		}
		if v != "answered" {
			t.Errorf("forger, 0666: %s", v)
		}
	})
}

// TestRingersMayUse: whom a FIFO's mode lets ring, against a segment's
// mode and groups.
func TestRingersMayUse(t *testing.T) {
	const fifoGID, other = 100, 200
	for _, tc := range []struct {
		fifo, seg  uint32
		gid, cgid  uint32
		mayUse     bool
		annotation string
	}{
		{0o600, 0o600, other, other, true, "private FIFO"},
		{0o666, 0o600, fifoGID, fifoGID, false, "public FIFO, private segment"},
		{0o666, 0o666, other, other, true, "public FIFO, public segment"},
		{0o666, 0o777, other, other, true, "C SIMPL"},
		{0o666, 0o606, other, other, false, "group members are refused by the group bits"},
		{0o666, 0o660, fifoGID, fifoGID, false, "public FIFO, group segment"},
		{0o660, 0o660, fifoGID, other, true, "group FIFO, segment of its group"},
		{0o660, 0o660, other, fifoGID, true, "group FIFO, segment made by its group"},
		{0o660, 0o660, other, other, false, "group FIFO, segment of another group"},
		{0o660, 0o666, other, other, true, "group FIFO, public segment"},
		{0o620, 0o600, fifoGID, fifoGID, false, "group may only write the FIFO"},
		{0o1600, 0o1600, other, other, true, "marked for removal"},
	} {
		info := sys.ShmInfo{Mode: tc.seg, GID: tc.gid, CGID: tc.cgid}
		if got := ringersMayUse(tc.fifo, fifoGID, info); got != tc.mayUse {
			t.Errorf("%s: FIFO %o, segment %o (gid %d, cgid %d): %v, want %v", tc.annotation, tc.fifo, tc.seg, tc.gid, tc.cgid, got, tc.mayUse)
		}
	}
}

// TestTrailer: a sender's segment keeps room for its claim, and a receiver
// never lets a reply overwrite it.
func TestTrailer(t *testing.T) {
	s := &segment{mem: make([]byte, 4096)}
	if s.hasTrailer() {
		t.Fatal("a zeroed segment has a trailer")
	}
	s.setClaim(42)
	if !s.hasTrailer() || s.room() != 4096-HeaderSize-trailerSize {
		t.Fatalf("trailer %v, room %d", s.hasTrailer(), s.room())
	}
	if s.takeClaim(41) || !s.takeClaim(42) || s.takeClaim(42) {
		t.Error("a claim is taken by its token only, once")
	}
	if (&segment{mem: make([]byte, 4095)}).hasTrailer() {
		t.Error("an odd-sized segment has a trailer")
	}
}
