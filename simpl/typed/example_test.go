package typed_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// A request type and its reply type, each naming itself on the wire.
type Add struct {
	A int `msgpack:"a"`
	B int `msgpack:"b"`
}

func (Add) TypeTag() string { return "calc.Add" }

type Sum struct {
	N int `msgpack:"n"`
}

func (Sum) TypeTag() string { return "calc.Sum" }

// A server with one handler, run by Serve on a pool of 4 workers until
// its context ends.
func ExampleMux() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ch, err := simpl.Attach("CALC", simpl.WithDir(dir))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()

	mux := typed.NewMux()
	typed.Handle(mux, func(ctx context.Context, req Add, m simpl.Message) (Sum, error) {
		if req.A < 0 || req.B < 0 {
			return Sum{}, &typed.Error{Code: 100, Message: "negative operand"}
		}
		return Sum{N: req.A + req.B}, nil
	})
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		err := mux.Serve(ctx, ch, typed.WithWorkers(4))
		fmt.Println("Serve:", err)
	})

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(ctx, "CALC")
	defer conn.Close()
	sum, err := typed.Call[Add, Sum](context.Background(), conn, Add{A: 2, B: 3})
	fmt.Println(sum.N, err)

	stop()
	wg.Wait()
	// Output:
	// 5 <nil>
	// Serve: context canceled
}

// What a client sees when the server answers with an error reply, has no
// handler for the type, or is gone.
func ExampleCall() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ch, _ := simpl.Attach("CALC", simpl.WithDir(dir))
	mux := typed.NewMux()
	typed.Handle(mux, func(ctx context.Context, req Add, m simpl.Message) (Sum, error) {
		return Sum{}, &typed.Error{Code: 100, Message: "negative operand"}
	})
	go mux.Serve(context.Background(), ch)

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(context.Background(), "CALC")
	defer conn.Close()
	ctx := context.Background()

	_, err := typed.Call[Add, Sum](ctx, conn, Add{A: -1})
	var e *typed.Error
	if errors.As(err, &e) {
		fmt.Println("code", e.Code, e.Message)
	}
	_, err = typed.Call[Sum, Sum](ctx, conn, Sum{}) // no handler for calc.Sum
	fmt.Println(errors.Is(err, typed.ErrUnknownType), errors.Is(err, typed.ErrRemote))

	ch.Close()
	_, err = typed.Call[Add, Sum](ctx, conn, Add{})
	fmt.Println(errors.Is(err, simpl.ErrPeerGone))
	// Output:
	// code 100 negative operand
	// true true
	// true
}

type Wait struct{}

func (Wait) TypeTag() string { return "ex.Wait" }

type Wake struct{}

func (Wake) TypeTag() string { return "ex.Wake" }

type Woken struct {
	Order int `msgpack:"order"`
}

func (Woken) TypeTag() string { return "ex.Woken" }

// Deferred replies: Wait requests are held, without holding a worker,
// until a Wake answers them all, the newest first.
func ExampleErrDeferred() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ch, _ := simpl.Attach("EVENTS", simpl.WithDir(dir))
	defer ch.Close()

	var (
		mu      sync.Mutex
		waiting []simpl.Message
		arrived = make(chan struct{}, 3)
	)
	mux := typed.NewMux()
	typed.Handle(mux, func(ctx context.Context, req Wait, m simpl.Message) (Woken, error) {
		mu.Lock()
		defer mu.Unlock()
		waiting = append(waiting, m)
		arrived <- struct{}{}
		return Woken{}, typed.ErrDeferred // answered by Wake
	})
	typed.Handle(mux, func(ctx context.Context, req Wake, m simpl.Message) (Sum, error) {
		mu.Lock()
		defer mu.Unlock()
		for i := len(waiting) - 1; i >= 0; i-- {
			typed.Reply(waiting[i], Woken{Order: len(waiting) - i})
		}
		n := len(waiting)
		waiting = nil
		return Sum{N: n}, nil
	})
	go mux.Serve(context.Background(), ch, typed.WithWorkers(1))

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(context.Background(), "EVENTS")
	defer conn.Close()
	ctx := context.Background()

	woken := make(chan int, 3)
	for range 3 {
		go func() {
			w, _ := typed.Call[Wait, Woken](ctx, conn, Wait{})
			woken <- w.Order
		}()
	}
	for range 3 {
		<-arrived // all three are held, by one worker
	}
	n, err := typed.Call[Wake, Sum](ctx, conn, Wake{})
	total := 0
	for range 3 {
		total += <-woken
	}
	fmt.Println("woke", n.N, err, "orders sum to", total)
	// Output: woke 3 <nil> orders sum to 6
}
