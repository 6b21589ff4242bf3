package tools_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// TestPubSignalled: SIGINT, SIGTERM and SIGHUP end fcpub with exit 0 and
// nothing on stderr, its name detached, as docs/pubsub.md says of the
// pub/sub tools: while it waits for input, while it waits for its broker
// (-wait), and while the broker, stopped, leaves it locating the broker
// or publishing (a publish it abandons). Before, it exited 1 with
// "fcpub: interrupted: ..." (review).
func TestPubSignalled(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			broker, _ := e.startBroker()

			// Reading standard input, a pipe that stays open, once its
			// first line is published.
			reading, in := e.startPub(t, "PUBIN")
			stop(t, reading, sig)
			in.Close()

			// Waiting for a broker that does not come.
			waiting := e.start("fcpub", "-n", "PUBWAIT", "-b", "NOBROKER", "-wait", "1h", "-t", "a", "-m", "x")
			e.waitFile(fmt.Sprintf("PUBWAIT.%d", waiting.PID())) // attached: its handler is set
			stop(t, waiting, sig)

			// With the broker stopped: one publishing its second line
			// (in Publish, or about to read the line: exit 0 either
			// way), and one locating the broker.
			publishing, in := e.startPub(t, "PUBBLK")
			broker.Signal(syscall.SIGSTOP)
			if _, err := fmt.Fprintln(in, "two"); err != nil {
				t.Fatal(err)
			}
			locating := e.start("fcpub", "-n", "PUBLOC", "-t", "a", "-m", "x")
			e.waitFile(fmt.Sprintf("PUBLOC.%d", locating.PID()))
			stop(t, publishing, sig)
			stop(t, locating, sig)
			in.Close()
			broker.Signal(syscall.SIGCONT)

			stop(t, broker, syscall.SIGTERM)
			// Every name detached: the FIFO directory is empty (newEnv's
			// check).
		})
	}
}

// startPub starts fcpub -n name -t a reading a pipe, and returns it once
// it has published the first line, with the pipe to write more.
func (e *env) startPub(t *testing.T, name string) (*simpltest.Proc, *os.File) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Close() })
	cmd := e.command(context.Background(), "fcpub", "-n", name, "-t", "a")
	cmd.Stdin = pr
	p := simpltest.StartCmd(t, cmd)
	e.addPID(p.PID())
	pr.Close()
	if _, err := fmt.Fprintln(pw, "one"); err != nil {
		t.Fatal(err)
	}
	if line := p.ReadLine(lineTimeout); !strings.HasPrefix(line, "published a seq ") {
		t.Fatalf("fcpub printed %q, want \"published a seq N\"; stderr %q", line, p.Stderr())
	}
	return p, pw
}
