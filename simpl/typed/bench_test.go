package typed_test

import (
	"context"
	"testing"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
	"github.com/gosimpl/gosimpl/simpl/typed"
)

// benchConn serves the Add handler in this process and returns a
// connection to it.
func benchConn(b *testing.B, tr string) *simpl.Conn {
	dir := simpltest.Dir(b)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := simpl.Attach("SRV", simpl.WithDir(dir), withTransport(tr))
	if err != nil {
		b.Fatal(err)
	}
	mux := typed.NewMux()
	typed.Handle(mux, func(ctx context.Context, req Add, m simpl.Message) (Sum, error) {
		return Sum{N: req.A + req.B}, nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mux.Serve(ctx, srv, typed.WithWorkers(1))
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	cli, err := simpl.Attach("CLI", simpl.WithDir(dir), withTransport(tr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	conn, err := cli.Locate(ctx, "SRV")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// A typed round trip, client and server both counted in allocs/op.
func BenchmarkCall(b *testing.B) {
	for _, tr := range []string{"auto", simpl.FIFO} {
		b.Run(tr, func(b *testing.B) {
			conn := benchConn(b, tr)
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sum, err := typed.Call[Add, Sum](ctx, conn, Add{A: i, B: 1})
				if err != nil || sum.N != i+1 {
					b.Fatalf("%+v, %v", sum, err)
				}
			}
		})
	}
}

// The same round trip in raw bytes (8 in, 8 out), for comparison: what a
// C-struct user pays, with no typed layer.
func BenchmarkRawSend(b *testing.B) {
	for _, tr := range []string{"auto", simpl.FIFO} {
		b.Run(tr, func(b *testing.B) {
			dir := simpltest.Dir(b)
			srv, err := simpl.Attach("SRV", simpl.WithDir(dir), withTransport(tr))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				var out [8]byte
				for {
					m, err := srv.Receive(ctx)
					if err != nil {
						return
					}
					copy(out[:], m.Data())
					m.Reply(out[:])
				}
			}()
			b.Cleanup(func() {
				cancel()
				<-done
				srv.Close()
			})
			cli, err := simpl.Attach("CLI", simpl.WithDir(dir), withTransport(tr))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cli.Close() })
			conn, err := cli.Locate(ctx, "SRV")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { conn.Close() })
			req, reply := make([]byte, 8), make([]byte, 8)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := conn.Send(context.Background(), req, reply); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
