package pubsub_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// After Close, Next returns ErrClosed even with messages of the last
// batch not yet returned: Close discards them, as it says, and the
// broker counts them delivered (Close acknowledged the batch). Before,
// Next went on returning them.
func TestNextAfterClose(t *testing.T) {
	dir := simpltest.Dir(t)
	broker, _ := startBroker(t, []string{"FIFO_PATH=" + dir})
	ctx := simpltest.Context(t, time.Minute)
	ch := attach(t, dir, "SUB")
	sub, err := pubsub.Subscribe(ctx, ch, "", "t/#")
	if err != nil {
		t.Fatal(err)
	}
	pub := pubsub.NewPublisher(attach(t, dir, "PUB"), "")
	for range 3 {
		if _, err := pub.Publish(ctx, "t/x", []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := sub.Next(ctx); err != nil || string(m.Data) != "m" {
		t.Fatalf("Next = %+v, %v", m, err) // one returned, two left in the batch
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Next(ctx); !errors.Is(err, simpl.ErrClosed) {
		t.Fatalf("Next after Close = %+v, %v; want ErrClosed", m, err)
	}
	pub.Close()
	stopProc(t, broker)
}
