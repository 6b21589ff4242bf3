// Command echo is the smallest useful gosimpl server: it attaches a name
// and answers every request with its own bytes until SIGINT or SIGTERM.
// It imports only the simpl package, and docs/sizes.sh builds it to
// measure what a program that links gosimpl's core pays in binary size
// (docs/benchmarks.md, "Binary sizes").
//
//	echo [NAME]
//
// NAME defaults to ECHO. It prints "attached NAME" once it can be sent to.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/gosimpl/gosimpl/simpl"
)

func main() {
	name := "ECHO"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	if err := run(name); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(name string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ch, err := simpl.Attach(name)
	if err != nil {
		return err
	}
	defer ch.Close()
	fmt.Println("attached", name)
	for {
		msg, err := ch.Receive(ctx)
		switch {
		case errors.Is(err, context.Canceled):
			return nil // signalled: Close detaches
		case err != nil:
			return err
		case (msg.Proxy() > 0):
			continue
		}
		if err := msg.Reply(msg.Data()); err != nil {
			fmt.Fprintln(os.Stderr, "echo: reply:", err) // that sender's loss; serve the next
		}
	}
}
