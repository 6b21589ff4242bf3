// Command bigpeer sends and receives large messages whose every byte can
// be checked, for fcgate's tests of messages in chunks (tools/fcgate builds
// it); outside tools/, so that installing the tools leaves it out.
//
//	bigpeer recv -n NAME [-count N] [-delay D] [-reply BYTES]
//	bigpeer send -r NAME -size BYTES [-max-reply BYTES] [-count N]
//
// Requests are pattern(1, size) and replies pattern(2, size): bytes of a
// stream cipher, so a chunk lost, repeated or misplaced shows. recv
// prints "attached NAME", then for each request "got N bytes intact" (or
// "got N bytes CORRUPT"), and replies -reply bytes after -delay. send
// makes -count Sends at once and prints, for each, "reply N bytes
// intact" (or CORRUPT), or on stderr its error; it exits 1 if any failed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bigpeer:", err)
		os.Exit(1)
	}
}

// pattern is n bytes of the stream seed names.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func intact(b []byte, seed byte) string {
	if bytes.Equal(b, pattern(seed, len(b))) {
		return "intact"
	}
	return "CORRUPT"
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		return errors.New("usage: bigpeer recv|send ...")
	}
	fs := flag.NewFlagSet("bigpeer "+args[0], flag.ContinueOnError)
	name := fs.String("n", "", "name to attach (recv)")
	target := fs.String("r", "", "receiver to send to (send)")
	size := fs.Int("size", 0, "request size (send)")
	maxReply := fs.Int("max-reply", 64, "largest reply taken (send)")
	reply := fs.Int("reply", 0, "reply size (recv)")
	count := fs.Int("count", 1, "requests to take (recv) or make at once (send)")
	delay := fs.Duration("delay", 0, "wait this long before each reply (recv)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(w io.Writer, format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format+"\n", a...)
	}
	ctx := context.Background()
	switch args[0] {
	case "recv":
		ch, err := simpl.Attach(*name)
		if err != nil {
			return err
		}
		defer ch.Close()
		say(stdout, "attached %s", *name)
		rep := pattern(2, *reply)
		for range *count {
			msg, err := ch.Receive(ctx)
			if err != nil {
				return err
			}
			say(stdout, "got %d bytes %s", len(msg.Data()), intact(msg.Data(), 1))
			time.Sleep(*delay) // the slow receiver the test asks for
			if err := msg.Reply(rep); err != nil {
				return err
			}
		}
		return ch.Close()
	case "send":
		ch, err := simpl.Attach("")
		if err != nil {
			return err
		}
		defer ch.Close()
		c, err := ch.Locate(ctx, *target)
		if err != nil {
			return err
		}
		req := pattern(1, *size)
		var wg sync.WaitGroup
		failed := false
		for range *count {
			wg.Go(func() {
				buf := make([]byte, *maxReply)
				n, err := c.Send(ctx, req, buf)
				if err != nil {
					say(stderr, "bigpeer: %v", err)
					mu.Lock()
					failed = true
					mu.Unlock()
					return
				}
				say(stdout, "reply %d bytes %s", n, intact(buf[:n], 2))
			})
		}
		wg.Wait()
		if failed {
			return errors.New("a Send failed")
		}
		return nil
	}
	return fmt.Errorf("%q: want recv or send", args[0])
}
