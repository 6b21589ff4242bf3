package simpl_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

func TestMain(m *testing.M) {
	roles := map[string]simpltest.Role{
		"server":      roleServer,
		"relay":       roleRelay,
		"hold":        roleHold,
		"client":      roleClient,
		"burst":       roleBurst,
		"echo":        roleEcho,
		"pump":        rolePump,
		"quit":        roleQuit,
		"zerocopy":    roleZeroCopy,
		"zerocopybig": roleZeroCopyBig,
	}
	for _, more := range []map[string]simpltest.Role{stressRoles, permRoles, metricsRoles, credRoles, floodRoles, memRoles, lanesRoles, originRoles, prioRoles, relayWaitRoles, threadRxRoles, relayClaimRoles} {
		for name, role := range more {
			roles[name] = role
		}
	}
	simpltest.Main(m, roles)
}

// Requests to a test server start with an op byte:
//
//	'E' data...     reply data with every byte +1
//	'S' n(4) pad... reply n bytes of pattern(n)
//	'X'             ReplyError
//	'H'             hold the message until a 'F'
//	'F'             reply "F", then answer every held message, newest
//	                first, each from its own goroutine, with 'E' semantics
//
// An empty request gets an empty reply. Proxies print "proxy N".
const (
	opEcho  = 'E'
	opSized = 'S'
	opError = 'X'
	opHold  = 'H'
	opFlush = 'F'
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

func incremented(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = c + 1
	}
	return out
}

func sizedReq(n, pad int) []byte {
	req := make([]byte, max(5, pad))
	req[0] = opSized
	binary.LittleEndian.PutUint32(req[1:5], uint32(n))
	return req
}

// serve answers requests on ch as described above until ctx ends or the
// channel closes. Proxies go to proxies, if not nil.
func serve(ctx context.Context, ch *simpl.Channel, proxies func(int)) error {
	var held []simpl.Message
	for {
		msg, err := ch.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, simpl.ErrClosed) {
				return nil
			}
			return err
		}
		if msg.Proxy() > 0 {
			if proxies != nil {
				proxies(msg.Proxy())
			}
			continue
		}
		d := msg.Data()
		if len(d) == 0 {
			err = msg.Reply(nil)
			continue
		}
		switch d[0] {
		case opEcho:
			err = msg.Reply(incremented(d[1:]))
		case opSized:
			err = msg.Reply(pattern(int(binary.LittleEndian.Uint32(d[1:5]))))
		case opError:
			err = msg.ReplyError()
		case opHold:
			held = append(held, msg)
		case opFlush:
			msg.Reply([]byte("F"))
			var wg sync.WaitGroup
			for i := len(held) - 1; i >= 0; i-- {
				m := held[i]
				wg.Add(1)
				go func() {
					defer wg.Done()
					m.Reply(incremented(m.Data()[1:]))
				}()
				wg.Wait() // newest first, each from its own goroutine
			}
			held = nil
		default:
			err = msg.ReplyError()
		}
		_ = err // a failed reply (sender gone, reply too large) is the sender's to report
	}
}

// roleServer NAME [MAXMSG]: attach NAME and serve until SIGTERM/kill.
func roleServer(args []string) error {
	var opts []simpl.Option
	if len(args) > 1 {
		n, _ := strconv.Atoi(args[1])
		opts = append(opts, simpl.WithMaxMessage(n))
	}
	ch, err := simpl.Attach(args[0], opts...)
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	return serve(context.Background(), ch, func(p int) { fmt.Printf("proxy %d\n", p) })
}

// roleRelay NAME TO: relay every request to TO.
func roleRelay(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	for {
		msg, err := ch.Receive(context.Background())
		if err != nil {
			return err
		}
		if err := msg.Relay(to); err != nil {
			return err
		}
		fmt.Println("relayed")
	}
}

// roleHold NAME: attach NAME and do nothing until killed.
func roleHold(args []string) error {
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	select {}
}

// roleClient NAME TO: run the size matrix against TO; print "ok".
func roleClient(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	if err := sizeMatrix(context.Background(), to); err != nil {
		return err
	}
	if err := to.Trigger(9); err != nil {
		return err
	}
	fmt.Println("ok")
	return nil
}

// roleQuit NAME TO: send TO a message that is held, give up after 30ms,
// close and exit at once.
func roleQuit(args []string) error {
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	to, err := ch.Locate(context.Background(), args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := to.Send(ctx, []byte{opHold}, nil); !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("held Send: %v", err)
	}
	ch.Close()
	fmt.Println("ok")
	os.Exit(0)
	return nil
}

// rolePump NAME TO: send 64-byte requests to TO, one after another, until
// a Send fails.
func rolePump(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	req, reply := make([]byte, 64), make([]byte, 64)
	for {
		if _, err := to.Send(context.Background(), req, reply); err != nil {
			return nil
		}
	}
}

// roleBurst NAME TO N: send N 'H' messages concurrently, each carrying its
// index, and print "i ok" or "i err <sentinel>" for each.
func roleBurst(args []string) error {
	ch, to, err := attachLocate(args[0], args[1])
	if err != nil {
		return err
	}
	defer ch.Close()
	n, _ := strconv.Atoi(args[2])
	simpltest.Ready()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := []byte{opHold, byte(i), byte(i >> 8)}
			reply := make([]byte, 16)
			k, err := to.Send(context.Background(), req, reply)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && string(reply[:k]) == string(incremented(req[1:])):
				fmt.Printf("%d ok\n", i)
			case err == nil:
				fmt.Printf("%d wrong %x\n", i, reply[:k])
			case errors.Is(err, simpl.ErrPeerGone):
				fmt.Printf("%d err peer-gone\n", i)
			default:
				fmt.Printf("%d err %v\n", i, err)
			}
		}()
	}
	wg.Wait()
	return nil
}

var sizes = []int{0, 1, 64, 64 << 10, 1 << 20}

// sizeMatrix sends every request size with every reply size and checks
// the contents both ways.
func sizeMatrix(ctx context.Context, to *simpl.Conn) error {
	reply := make([]byte, 1<<20)
	for _, s := range sizes {
		// Echo: the request's bytes arrive intact.
		req := append([]byte{opEcho}, pattern(s)...)
		if s == 0 {
			req = nil
		}
		n, err := to.Send(ctx, req, reply)
		if err != nil {
			return fmt.Errorf("echo %d bytes: %w", s, err)
		}
		want := []byte{}
		if s > 0 {
			want = incremented(req[1:])
		}
		if string(reply[:n]) != string(want) {
			return fmt.Errorf("echo %d bytes: reply of %d bytes differs", s, n)
		}
		for _, r := range sizes {
			n, err := to.Send(ctx, sizedReq(r, s), reply[:r])
			if err != nil {
				return fmt.Errorf("request %d bytes, reply %d: %w", s, r, err)
			}
			if string(reply[:n]) != string(pattern(r)) {
				return fmt.Errorf("request %d bytes, reply %d: got %d bytes, contents differ", s, r, n)
			}
		}
	}
	return nil
}

// attachLocate is a helper role's preamble: attach name and locate to.
func attachLocate(name, to string) (*simpl.Channel, *simpl.Conn, error) {
	ch, err := simpl.Attach(name)
	if err != nil {
		return nil, nil, err
	}
	conn, err := ch.Locate(context.Background(), to)
	if err != nil {
		ch.Close()
		return nil, nil, err
	}
	return ch, conn, nil
}

func env(dir string) []string { return []string{"FIFO_PATH=" + dir} }

func attach(t *testing.T, dir, name string, opts ...simpl.Option) *simpl.Channel {
	t.Helper()
	ch, err := simpl.Attach(name, append([]simpl.Option{simpl.WithDir(dir)}, opts...)...)
	if err != nil {
		t.Fatalf("attach %q: %v", name, err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func locate(t *testing.T, ch *simpl.Channel, name string) *simpl.Conn {
	t.Helper()
	c, err := ch.Locate(context.Background(), name)
	if err != nil {
		t.Fatalf("locate %q: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// withTransport is the option for a transport of the tests' own naming:
// "auto" (every transport), "fifo" or "shm".
func withTransport(tr string) simpl.Option {
	if tr == "auto" {
		return simpl.WithTransport()
	}
	return simpl.WithTransport(tr)
}
