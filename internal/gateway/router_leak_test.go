package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
)

// Registrations that C SIMPL's router refuses give their surrogates'
// places back: with room for one surrogate, the gateway registers again
// and again. Before, each refused registration kept its place until
// Close, so the second attempt already found the limit reached (busy)
// and, with the default 256, a router refusing for four minutes left C
// programs no surrogate for good.
func TestRefusedRegistrations(t *testing.T) {
	const host = "gw-refused-host"
	g, dir, _ := setupOn(t, &Network{Host: host, Listen: "127.0.0.1:0"}, host)
	router, err := simpl.Attach(RouterName, simpl.WithDir(dir), simpl.WithTransport(simpl.FIFO))
	if err != nil {
		t.Fatal(err)
	}
	defer router.Close()
	refused := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			msg, err := router.Receive(ctx)
			if err != nil {
				return
			}
			msg.ReplyError()
			refused <- struct{}{}
		}
	}()
	c, err := NewCSimpl(g, WithMaxSurrogates(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 { // a second apart (roleRetry)
		select {
		case <-refused:
		case <-time.After(10 * time.Second):
			t.Fatalf("registration %d never came: %+v", i+1, c.Stats())
		}
	}
	if st := c.Stats(); st.Busy != 0 {
		t.Errorf("%d surrogates refused for the limit, want none: %+v", st.Busy, st)
	}
}
