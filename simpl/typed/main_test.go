package typed_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

func TestMain(m *testing.M) {
	simpltest.Main(m, map[string]simpltest.Role{
		"server": roleServer,
		"client": roleClient,
		"canned": roleCanned,
	})
}

// The test server's types. Each request type's handler is described at
// roleServer.

type Echo struct {
	S string `msgpack:"s"`
	N int    `msgpack:"n"`
}

func (Echo) TypeTag() string { return "test.Echo" }

type EchoReply struct {
	S    string `msgpack:"s"`
	N    int    `msgpack:"n"`
	From string `msgpack:"from"`
}

func (EchoReply) TypeTag() string { return "test.EchoReply" }

type Slow struct {
	ID int `msgpack:"id"`
}

func (Slow) TypeTag() string { return "test.Slow" }

type Open struct{}

func (Open) TypeTag() string { return "test.Open" }

type Fail struct {
	Code int    `msgpack:"code"`
	Text string `msgpack:"text"`
}

func (Fail) TypeTag() string { return "test.Fail" }

type Boom struct{}

func (Boom) TypeTag() string { return "test.Boom" }

type Hold struct {
	ID int `msgpack:"id"`
}

func (Hold) TypeTag() string { return "test.Hold" }

type HoldReply struct {
	ID      int `msgpack:"id"`
	Arrival int `msgpack:"arrival"` // 1 for the first message held
	Seq     int `msgpack:"seq"`     // 1 for the first message answered
}

func (HoldReply) TypeTag() string { return "test.HoldReply" }

type Release struct{}

func (Release) TypeTag() string { return "test.Release" }

type Big struct {
	N int `msgpack:"n"`
}

func (Big) TypeTag() string { return "test.Big" }

type Blob struct {
	B []byte `msgpack:"b"`
}

func (Blob) TypeTag() string { return "test.Blob" }

type Ack struct {
	N int `msgpack:"n"`
}

func (Ack) TypeTag() string { return "test.Ack" }

type Stamp struct {
	At time.Time `msgpack:"at"`
}

func (Stamp) TypeTag() string { return "test.Stamp" }

// Unknown has no handler anywhere.
type Unknown struct{}

func (Unknown) TypeTag() string { return "test.Unknown" }

// serverMaxSize is the test server's request limit.
const serverMaxSize = 64 << 10

// roleServer NAME: attach NAME and serve it with 8 workers until SIGTERM,
// then print "serve returned: ERR" and exit. SIGUSR1 does what Open does.
// Handlers:
//
//	Echo     reply with its fields and the sender's name
//	Slow     print "slow ID received", wait for an Open (or the end of
//	         Serve's context: print "slow ID cancelled" and fail)
//	Open     let every Slow go on; reply Ack
//	Fail     return &Error{Code, Text}, or errors.New(Text) when Code is 0
//	Boom     panic
//	Hold     keep the message (ErrDeferred); print "held K" (K in all)
//	Release  answer every held message, newest first, each from its own
//	         goroutine; reply Ack{N: how many}
//	Big      reply with N bytes
//	Stamp    reply with the request
//
// Proxies print "proxy N".
func roleServer(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	defer ch.Close()
	mux := typed.NewMux(typed.WithLimits(typed.Limits{MaxSize: serverMaxSize}),
		typed.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	open := registerServer(mux)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		<-usr1
		open()
	}()
	simpltest.Ready()
	err = mux.Serve(ctx, ch, typed.WithWorkers(8))
	fmt.Println("serve returned:", err)
	return nil
}

// registerServer registers roleServer's handlers and returns what Open
// does.
func registerServer(mux *typed.Mux) (open func()) {
	gate := make(chan struct{})
	var openOnce sync.Once
	open = func() { openOnce.Do(func() { close(gate) }) }
	var (
		mu      sync.Mutex
		held    []heldMsg
		arrived int
	)
	typed.Handle(mux, func(ctx context.Context, req Echo, m simpl.Message) (EchoReply, error) {
		name, _ := m.Sender()
		return EchoReply{S: req.S, N: req.N, From: name}, nil
	})
	typed.Handle(mux, func(ctx context.Context, req Slow, m simpl.Message) (Slow, error) {
		fmt.Printf("slow %d received\n", req.ID)
		select {
		case <-gate:
			return req, nil
		case <-ctx.Done():
			fmt.Printf("slow %d cancelled\n", req.ID)
			return Slow{}, ctx.Err()
		}
	})
	typed.Handle(mux, func(ctx context.Context, req Open, m simpl.Message) (Ack, error) {
		open()
		return Ack{}, nil
	})
	typed.Handle(mux, func(ctx context.Context, req Fail, m simpl.Message) (Ack, error) {
		if req.Code == 0 {
			return Ack{}, errors.New(req.Text)
		}
		return Ack{}, &typed.Error{Code: typed.Code(req.Code), Message: req.Text}
	})
	typed.Handle(mux, func(ctx context.Context, req Boom, m simpl.Message) (Ack, error) {
		var p *Ack
		return *p, nil // nil dereference
	})
	typed.Handle(mux, func(ctx context.Context, req Hold, m simpl.Message) (HoldReply, error) {
		mu.Lock()
		arrived++
		held = append(held, heldMsg{m: m, id: req.ID, arrival: arrived})
		fmt.Printf("held %d\n", len(held))
		mu.Unlock()
		return HoldReply{}, typed.ErrDeferred
	})
	typed.Handle(mux, func(ctx context.Context, req Release, m simpl.Message) (Ack, error) {
		mu.Lock()
		hs := held
		held = nil
		mu.Unlock()
		var wg sync.WaitGroup
		for i := len(hs) - 1; i >= 0; i-- {
			h, seq := hs[i], len(hs)-i
			wg.Go(func() {
				if err := typed.Reply(h.m, HoldReply{ID: h.id, Arrival: h.arrival, Seq: seq}); err != nil {
					fmt.Fprintln(os.Stderr, "reply to held:", err)
				}
			})
			wg.Wait() // newest first, each from its own goroutine
		}
		return Ack{N: len(hs)}, nil
	})
	typed.Handle(mux, func(ctx context.Context, req Stamp, m simpl.Message) (Stamp, error) {
		return req, nil
	})
	typed.Handle(mux, func(ctx context.Context, req Big, m simpl.Message) (Blob, error) {
		return Blob{B: make([]byte, req.N)}, nil
	})
	mux.HandleProxy(func(ctx context.Context, proxy int) {
		fmt.Printf("proxy %d\n", proxy)
	})
	return open
}

type heldMsg struct {
	m       simpl.Message
	id      int
	arrival int
}

// roleClient NAME TO G K: attach NAME, then make K calls from each of G
// goroutines to TO (see calls); print "ok".
func roleClient(args []string) error {
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	defer ch.Close()
	conn, err := ch.Locate(context.Background(), args[1])
	if err != nil {
		return err
	}
	defer conn.Close()
	g, _ := strconv.Atoi(args[2])
	k, _ := strconv.Atoi(args[3])
	simpltest.Ready()
	if err := calls(context.Background(), conn, args[0], g, k); err != nil {
		return err
	}
	fmt.Println("ok")
	return nil
}

// calls makes k calls from each of g goroutines and checks each answer:
// every 10th is a Fail whose code must come back, the rest Echoes whose
// fields must; me is the caller's attached name.
func calls(ctx context.Context, conn *simpl.Conn, me string, g, k int) error {
	errs := make(chan error, g)
	for i := range g {
		go func() {
			errs <- func() error {
				for j := range k {
					id := i*100000 + j
					if j%10 == 9 {
						_, err := typed.Call[Fail, Ack](ctx, conn, Fail{Code: 100 + id, Text: strconv.Itoa(id)})
						var e *typed.Error
						if !errors.As(err, &e) || e.Code != typed.Code(100+id) || e.Message != strconv.Itoa(id) {
							return fmt.Errorf("call %d: Fail got %v, want code %d", id, err, 100+id)
						}
						continue
					}
					s := strings.Repeat("x", j%50) + strconv.Itoa(id)
					rep, err := typed.Call[Echo, EchoReply](ctx, conn, Echo{S: s, N: id})
					if err != nil {
						return fmt.Errorf("call %d: %w", id, err)
					}
					if rep.S != s || rep.N != id || !sameSender(rep.From, me) {
						return fmt.Errorf("call %d: reply %+v, want %q %d from %s", id, rep, s, id, me)
					}
				}
				return nil
			}()
		}()
	}
	var first error
	for range g {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sameSender reports whether from is name or one of its concurrent
// identities (NAME#k through FIFOs).
func sameSender(from, name string) bool {
	return from == name || strings.HasPrefix(from, name+"#") ||
		len(name) > 28 && strings.HasPrefix(from, name[:28])
}

// roleCanned NAME HEX...: attach NAME and answer the i-th request with the
// i-th HEX's bytes ("error" answers with ReplyError, later requests too)
// until SIGTERM.
func roleCanned(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	defer ch.Close()
	simpltest.Ready()
	for i := 1; ; i++ {
		m, err := ch.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if i >= len(args) || args[i] == "error" {
			err = m.ReplyError()
		} else {
			b, herr := hex.DecodeString(args[i])
			if herr != nil {
				return herr
			}
			err = m.Reply(b)
		}
		if err != nil {
			return err
		}
	}
}

// withTransport is the option for a transport of the tests' own naming:
// "auto" (every transport), "fifo" or "shm".
func withTransport(tr string) simpl.Option {
	if tr == "auto" {
		return simpl.WithTransport()
	}
	return simpl.WithTransport(tr)
}
