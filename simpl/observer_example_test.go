package simpl_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
)

// tally is an Observer of its own: it counts requests and answers, and
// adds up the time from Receive to answer, for every Channel it is given
// to; the other events it lets pass.
type tally struct {
	requests, answers atomic.Int64
	busy              atomic.Int64 // nanoseconds from Receive to answer
}

func (t *tally) ObserveChannel(name string) simpl.ChannelObserver { return t }

func (t *tally) Received(size int) { t.requests.Add(1) }
func (t *tally) Answered(how simpl.Outcome, d time.Duration, err error) {
	if err == nil {
		t.answers.Add(1)
		t.busy.Add(int64(d))
	}
}
func (t *tally) ProxyReceived()                                {}
func (t *tally) ReceiveFailed(err error)                       {}
func (t *tally) Closed()                                       {}
func (t *tally) ObserveConn(string, string) simpl.ConnObserver { return nil } // Sends: not counted

// An observer of one's own, here counting what a server answers.
// Package simplprom is the Prometheus one.
func ExampleWithObserver() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	t := new(tally)
	srv, err := simpl.Attach("CLOCK", simpl.WithDir(dir), simpl.WithObserver(t))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		for range 3 {
			msg, err := srv.Receive(context.Background())
			if err != nil {
				return
			}
			msg.Reply([]byte("12:00")) // Answered is told before Reply returns
		}
	}()

	cli, _ := simpl.Attach("CLIENT", simpl.WithDir(dir))
	defer cli.Close()
	conn, _ := cli.Locate(context.Background(), "CLOCK")
	defer conn.Close()
	reply := make([]byte, 16)
	for range 3 {
		if _, err := conn.Send(context.Background(), []byte("now?"), reply); err != nil {
			fmt.Println(err)
			return
		}
	}
	<-served
	fmt.Println("requests:", t.requests.Load(), "answers:", t.answers.Load(), "timed:", t.busy.Load() > 0)
	// Output: requests: 3 answers: 3 timed: true
}
