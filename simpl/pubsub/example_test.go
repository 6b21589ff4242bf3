package pubsub_test

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/pubsub"
)

// A broker, a publisher and a subscriber on a pattern. (Here all three
// are in one process; normally each is a process of its own, and the
// broker is often fcbroker.)
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx, stop := context.WithCancel(context.Background())

	bch, _ := simpl.Attach(pubsub.DefaultBroker, simpl.WithDir(dir))
	defer bch.Close()
	var wg sync.WaitGroup
	wg.Go(func() { pubsub.Serve(ctx, bch) })
	defer wg.Wait()
	defer stop() // after the subscriber has closed: deferred calls run last first

	sch, _ := simpl.Attach("DISPLAY", simpl.WithDir(dir))
	defer sch.Close()
	sub, err := pubsub.Subscribe(ctx, sch, "", "plant/+/temp", pubsub.WithQueue(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()

	pch, _ := simpl.Attach("SENSORS", simpl.WithDir(dir))
	defer pch.Close()
	pub := pubsub.NewPublisher(pch, "")
	defer pub.Close()
	pub.Publish(ctx, "plant/boiler/temp", []byte("71.5"))
	pub.Publish(ctx, "plant/boiler/pressure", []byte("2.1")) // no match
	pub.Publish(ctx, "plant/pump/temp", []byte("40.2"))
	pub.Publish(ctx, "plant/boiler/temp", []byte("72.0"))

	for range 3 {
		m, err := sub.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s #%d: %s\n", m.Topic, m.Seq, m.Data)
	}
	fmt.Println("dropped:", sub.Dropped())
	// Output:
	// plant/boiler/temp #1: 71.5
	// plant/pump/temp #1: 40.2
	// plant/boiler/temp #2: 72.0
	// dropped: 0
}

// A control loop reads set points in Latest mode: at each turn it takes,
// without waiting, the newest value of each set point that changed since
// its last turn, however many times it changed.
func ExampleWithLatest() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ctx, stop := context.WithCancel(context.Background())
	bch, _ := simpl.Attach(pubsub.DefaultBroker, simpl.WithDir(dir))
	defer bch.Close()
	var wg sync.WaitGroup
	wg.Go(func() { pubsub.Serve(ctx, bch) })
	defer wg.Wait()
	defer stop() // after the subscriber has closed: deferred calls run last first
	ch, _ := simpl.Attach("LOOP", simpl.WithDir(dir))
	defer ch.Close()
	pub := pubsub.NewPublisher(ch, "")
	defer pub.Close()

	pub.Publish(ctx, "setpoint/flow", []byte("10"))
	sub, err := pubsub.Subscribe(ctx, ch, "", "setpoint/#", pubsub.WithLatest())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	pub.Publish(ctx, "setpoint/temp", []byte("70"))
	pub.Publish(ctx, "setpoint/temp", []byte("75"))
	pub.Publish(ctx, "setpoint/temp", []byte("72"))

	turn := func() {
		for {
			m, ok, err := sub.TryNext(ctx)
			if err != nil || !ok {
				return
			}
			fmt.Printf("%s = %s\n", m.Topic, m.Data)
		}
	}
	turn() // the current flow (it was set before), then the latest temp
	pub.Publish(ctx, "setpoint/flow", []byte("12"))
	turn()
	fmt.Println("superseded:", sub.Dropped())
	// Output:
	// setpoint/flow = 10
	// setpoint/temp = 72
	// setpoint/flow = 12
	// superseded: 2
}
