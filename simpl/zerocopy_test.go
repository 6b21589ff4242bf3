package simpl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/transport/shm"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// zcSizes are the request sizes the zero-copy client sends from a Buffer.
var zcSizes = []int{0, 1, 100, 4096, 65536}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func lowerPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// roleZeroCopy NAME TO: send TO one plain request, then one request of
// each of zcSizes built in a Buffer, and check that each reply is the
// request in upper case; misuse the Buffer; print "ok".
func roleZeroCopy(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reply := make([]byte, 8)
	if n, err := to.Send(ctx, []byte("plain"), reply); err != nil || string(reply[:n]) != "PLAIN" {
		return fmt.Errorf("plain Send: %q, %v", reply[:n], err)
	}
	b, err := to.Buffer(ctx, 65536)
	if err != nil {
		return err
	}
	for _, n := range zcSizes {
		want := lowerPattern(n)
		copy(b.Bytes(), want)
		got, err := b.Send(ctx, n, n)
		if err != nil {
			return fmt.Errorf("%d bytes from a Buffer: %v", n, err)
		}
		if !bytes.Equal(got, bytes.ToUpper(want)) {
			return fmt.Errorf("%d bytes from a Buffer: wrong reply", n)
		}
		if n > 0 && to.Transport() == simpl.SHM && &got[0] != &b.Bytes()[0] {
			return fmt.Errorf("%d bytes from a Buffer: the reply is not in place", n)
		}
	}
	copy(b.Bytes(), "too large?")
	if _, err := b.Send(ctx, 10, 4); !errors.Is(err, simpl.ErrReplyTooLarge) {
		return fmt.Errorf("a reply past maxReply: %v, want ErrReplyTooLarge", err)
	}
	if _, err := b.Send(ctx, 65537, 1); !errors.Is(err, simpl.ErrTooLarge) {
		return fmt.Errorf("Send past the Buffer: %v, want ErrTooLarge", err)
	}
	b.Close()
	b.Close()
	if _, err := b.Send(ctx, 1, 1); !errors.Is(err, simpl.ErrClosed) {
		return fmt.Errorf("Send from a closed Buffer: %v, want ErrClosed", err)
	}
	fmt.Println("ok")
	return nil
}

// Requests read in place and replies written in place, on both transports;
// a Message that was answered stays answered when the sender's next message
// reuses its memory.
func TestZeroCopy(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "ZC")
	cli := simpltest.Start(t, "zerocopy", env(dir), "ZCLI", "ZC")
	ctx := simpltest.Context(t, time.Minute)
	var prev simpl.Message
	for i := range 2 + len(zcSizes) {
		m, err := srv.Receive(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		// Both transports know the sender (see TestCred).
		if cred, ok := m.Cred(); !ok || cred.PID != cli.PID() || cred.UID != os.Getuid() || cred.GID != os.Getgid() {
			t.Errorf("message %d: Cred %+v, %v; want pid %d uid %d gid %d", i, cred, ok, cli.PID(), os.Getuid(), os.Getgid())
		}
		if i > 0 {
			// The previous message was answered; its memory may now carry
			// this one.
			if d := prev.Data(); d != nil {
				t.Errorf("message %d: the answered message still shows %d bytes", i, len(d))
			}
			if b := prev.ReplyBuffer(); b != nil {
				t.Errorf("message %d: the answered message still offers a reply buffer", i)
			}
			for name, err := range map[string]error{
				"Reply":        prev.Reply([]byte("STALE")),
				"ReplyInPlace": prev.ReplyInPlace(1),
				"ReplyError":   prev.ReplyError(),
			} {
				if !errors.Is(err, simpl.ErrReplied) {
					t.Errorf("message %d: %s on the answered message: %v, want ErrReplied", i, name, err)
				}
			}
		}
		d := m.Data()
		buf := m.ReplyBuffer()
		if len(buf) != m.MaxReply() {
			t.Fatalf("message %d: reply buffer of %d bytes, MaxReply %d", i, len(buf), m.MaxReply())
		}
		prev = m
		if bytes.Equal(d, []byte("too large?")) {
			if err := m.ReplyInPlace(len(buf) + 1); !errors.Is(err, simpl.ErrReplyTooLarge) {
				t.Fatalf("ReplyInPlace past MaxReply: %v, want ErrReplyTooLarge", err)
			}
			break
		}
		n := len(d)
		for j := range n {
			buf[j] = upper(d[j]) // on shm, the very byte just read
		}
		if err := m.ReplyInPlace(n); err != nil {
			t.Fatalf("message %d: ReplyInPlace: %v", i, err)
		}
	}
	cli.Expect("ok", time.Minute)
	if err := cli.Wait(10 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, cli.Stderr())
	}
}

// bigZC is the size of the large zero-copy round trip: a camera frame.
const bigZC = 4 << 20

// laneRanges are this process's mappings of shm lanes (the memfds the
// transport names "gosimpl-lane"), as [start, end) address ranges read
// from /proc/self/maps.
func laneRanges() ([][2]uint64, error) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	var r [][2]uint64
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "/memfd:gosimpl-lane") {
			continue
		}
		lo, hi, ok := strings.Cut(strings.Fields(line)[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %q", line)
		}
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("maps line %q: %w", line, err)
		}
		r = append(r, [2]uint64{s, e})
	}
	return r, nil
}

// inLane reports whether all of b lies inside one of this process's lane
// mappings, that is, whether b is shared memory of a lane and not a copy.
// (The address is taken through %p, which needs no unsafe.)
func inLane(b []byte) error {
	if len(b) == 0 {
		return errors.New("empty slice")
	}
	start, err := strconv.ParseUint(strings.TrimPrefix(fmt.Sprintf("%p", &b[0]), "0x"), 16, 64)
	if err != nil {
		return err
	}
	maps, err := laneRanges()
	if err != nil {
		return err
	}
	for _, m := range maps {
		if start >= m[0] && start+uint64(len(b)) <= m[1] {
			return nil
		}
	}
	return fmt.Errorf("%d bytes at %#x are in none of the %d lane mappings %x", len(b), start, len(maps), maps)
}

// bigPattern is the request of round trip i: every byte depends on its
// position and on i, so that a stale or shifted buffer shows.
func bigPattern(b []byte, i int) {
	for j := range b {
		b[j] = byte(j*7 + j>>12 + i)
	}
}

// roleZeroCopyBig NAME TO: through shm, build two bigZC-byte requests in
// a Buffer and check each reply (every request byte plus one) in place,
// with the transport copying nothing; print "ok".
func roleZeroCopyBig(args []string) error {
	ch, err := simpl.Attach(args[0], simpl.WithTransport(simpl.SHM))
	if err != nil {
		return err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	to, err := ch.Locate(ctx, args[1])
	if err != nil {
		return err
	}
	simpltest.Ready()
	b, err := to.Buffer(ctx, bigZC)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := inLane(b.Bytes()); err != nil {
		return fmt.Errorf("Buffer.Bytes: %v", err)
	}
	for i := range 2 {
		req := b.Bytes()
		bigPattern(req, i)
		before := shm.CopiedBytes()
		got, err := b.Send(ctx, bigZC, bigZC)
		if err != nil {
			return fmt.Errorf("round trip %d: %v", i, err)
		}
		if c := shm.CopiedBytes() - before; c != 0 {
			return fmt.Errorf("round trip %d: the transport copied %d bytes", i, c)
		}
		if err := inLane(got); err != nil {
			return fmt.Errorf("round trip %d: reply: %v", i, err)
		}
		if len(got) != bigZC || &got[0] != &req[0] {
			return fmt.Errorf("round trip %d: reply of %d bytes, not in place", i, len(got))
		}
		want := make([]byte, bigZC)
		bigPattern(want, i)
		for j := range want {
			if got[j] != want[j]+1 {
				return fmt.Errorf("round trip %d: reply byte %d is %d, want %d", i, j, got[j], want[j]+1)
			}
		}
	}
	fmt.Println("ok")
	return nil
}

// A 4 MiB round trip through the zero-copy calls over shm copies nothing
// in either process: the sender builds the request in its lane, the
// receiver reads it there (Data lies inside its mapping of the lane) and
// writes the reply over it, and the sender reads the reply there; the
// transports' counters of copied bytes stay still in both processes, and
// every byte of request and reply is checked.
func TestZeroCopyLarge(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "ZCBIG", simpl.WithTransport(simpl.SHM))
	cli := simpltest.Start(t, "zerocopybig", env(dir), "ZCBIGCLI", "ZCBIG")
	ctx := simpltest.Context(t, time.Minute)
	want := make([]byte, bigZC)
	for i := range 2 {
		m, err := srv.Receive(ctx)
		if err != nil {
			t.Fatalf("round trip %d: %v\n%s", i, err, cli.Stderr())
		}
		before := shm.CopiedBytes()
		d := m.Data()
		if len(d) != bigZC || m.MaxReply() != bigZC {
			t.Fatalf("round trip %d: %d bytes with room for %d, want %d", i, len(d), m.MaxReply(), bigZC)
		}
		if err := inLane(d); err != nil {
			t.Fatalf("round trip %d: Data is not the lane: %v", i, err)
		}
		bigPattern(want, i)
		if !bytes.Equal(d, want) {
			t.Fatalf("round trip %d: the request differs from what the sender built", i)
		}
		buf := m.ReplyBuffer()
		if err := inLane(buf); err != nil {
			t.Fatalf("round trip %d: ReplyBuffer is not the lane: %v", i, err)
		}
		for j := range buf {
			buf[j] = d[j] + 1 // the same byte: read, then overwritten
		}
		if err := m.ReplyInPlace(bigZC); err != nil {
			t.Fatalf("round trip %d: ReplyInPlace: %v", i, err)
		}
		if c := shm.CopiedBytes() - before; c != 0 {
			t.Fatalf("round trip %d: the receiver's transport copied %d bytes", i, c)
		}
	}
	cli.Expect("ok", time.Minute)
	if err := cli.Wait(10 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, cli.Stderr())
	}
}

// The copy counter counts: the copying calls move every byte of the
// request and reply through it (so TestZeroCopyLarge's zero means
// something).
func TestCopiedBytesCounts(t *testing.T) {
	dir := simpltest.Dir(t)
	srv := attach(t, dir, "CNT", simpl.WithTransport(simpl.SHM))
	cli := attach(t, dir, "CNTCLI", simpl.WithTransport(simpl.SHM))
	c := locate(t, cli, "CNT")
	ctx := simpltest.Context(t, time.Minute)
	errc := make(chan error, 1)
	go func() {
		m, err := srv.Receive(ctx)
		if err == nil {
			err = m.Reply(make([]byte, 300))
		}
		errc <- err
	}()
	before := shm.CopiedBytes()
	n, err := c.Send(ctx, make([]byte, 1000), make([]byte, 500))
	if err != nil || n != 300 {
		t.Fatalf("Send: %d, %v", n, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	// Request in (1000), reply by the receiver (300), reply out (300).
	if got := shm.CopiedBytes() - before; got != 1600 {
		t.Fatalf("copied %d bytes, want 1600", got)
	}
}
