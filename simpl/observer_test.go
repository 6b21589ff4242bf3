package simpl_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// recorder is an Observer that writes down every event, per Channel
// name. It observes nothing of the Channel NOBODY, nor of Conns to it.
type recorder struct {
	mu     sync.Mutex
	events map[string][]string
	times  []time.Duration // of every Answered and Sent
}

func (r *recorder) add(name, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[name] = append(r.events[name], fmt.Sprintf(format, args...))
}

func (r *recorder) get(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[name])
}

func (r *recorder) ObserveChannel(name string) simpl.ChannelObserver {
	if name == "NOBODY" {
		return nil
	}
	r.add(name, "attached")
	return &recChannel{r, name}
}

type recChannel struct {
	r    *recorder
	name string
}

func (c *recChannel) Received(size int)       { c.r.add(c.name, "received %d", size) }
func (c *recChannel) ProxyReceived()          { c.r.add(c.name, "proxy") }
func (c *recChannel) ReceiveFailed(err error) { c.r.add(c.name, "receive failed: %s", sentinel(err)) }
func (c *recChannel) Closed()                 { c.r.add(c.name, "closed") }

func (c *recChannel) Answered(how simpl.Outcome, d time.Duration, err error) {
	c.r.mu.Lock()
	c.r.times = append(c.r.times, d)
	c.r.mu.Unlock()
	c.r.add(c.name, "answered %v: %s", how, sentinel(err))
}

func (c *recChannel) ObserveConn(to, _ string) simpl.ConnObserver {
	if to == "NOBODY" {
		return nil
	}
	c.r.add(c.name, "located %s", to)
	return &recConn{c.r, c.name + ">" + to}
}

type recConn struct {
	r    *recorder
	name string
}

func (c *recConn) Sent(d time.Duration, err error) {
	c.r.mu.Lock()
	c.r.times = append(c.r.times, d)
	c.r.mu.Unlock()
	c.r.add(c.name, "sent: %s", sentinel(err))
}

func (c *recConn) Triggered(err error) { c.r.add(c.name, "triggered: %s", sentinel(err)) }

// sentinel names the sentinel err wraps, or "ok".
func sentinel(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{{simpl.ErrRejected, "rejected"}, {simpl.ErrClosed, "closed"}, {simpl.ErrPeerGone, "peer gone"}, {simpl.ErrReplied, "replied"}, {context.Canceled, "canceled"}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// TestObserver: what a Channel and its Conns tell their observers, in
// order, with nothing told about a Channel or Conn the observer declined
// (nil), Closed told once however often Close is called, and a Receive
// ended by its context not reported.
func TestObserver(t *testing.T) {
	dir := simpltest.Dir(t)
	r := &recorder{events: make(map[string][]string)}
	srv := attach(t, dir, "OSRV", simpl.WithObserver(r))
	cli := attach(t, dir, "OCLI", simpl.WithObserver(r))
	nobody := attach(t, dir, "NOBODY", simpl.WithObserver(r))
	plain := attach(t, dir, "OPLAIN", simpl.WithObserver(nil))
	ctx := simpltest.Context(t, time.Minute)
	proxies := make(chan int, 1)
	served := make(chan error, 1)
	go func() { served <- serve(ctx, srv, func(p int) { proxies <- p }) }()

	start := time.Now()
	conn := locate(t, cli, "OSRV")
	reply := make([]byte, 16)
	if _, err := conn.Send(ctx, []byte{opEcho, 1, 2}, reply); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Send(ctx, []byte{opError}, reply); !errors.Is(err, simpl.ErrRejected) {
		t.Fatalf("send: %v, want ErrRejected", err)
	}
	if err := conn.Trigger(5); err != nil {
		t.Fatal(err)
	}
	if p := <-proxies; p != 5 {
		t.Fatalf("proxy %d, want 5", p)
	}
	for _, ch := range []*simpl.Channel{nobody, plain} {
		if _, err := locate(t, ch, "OSRV").Send(ctx, []byte{opEcho}, reply); err != nil {
			t.Fatal(err)
		}
	}
	toNobody := locate(t, cli, "NOBODY")
	if err := toNobody.Trigger(9); err != nil {
		t.Fatal(err)
	}
	if msg, err := nobody.Receive(ctx); err != nil || msg.Proxy() != 9 {
		t.Fatalf("NOBODY received %v, %v; want proxy 9", msg.Proxy(), err)
	}
	expired, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := cli.Receive(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive: %v, want DeadlineExceeded", err)
	}
	srv.Close()
	srv.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Send(ctx, []byte{opEcho}, reply); !errors.Is(err, simpl.ErrPeerGone) && !errors.Is(err, simpl.ErrNotFound) {
		t.Fatalf("send to a closed receiver: %v, want ErrPeerGone", err)
	}
	wall := time.Since(start)

	for name, want := range map[string][]string{
		"OSRV": {
			"attached",
			"received 3", "answered reply: ok",
			"received 1", "answered reply_error: ok",
			"proxy",
			"received 1", "answered reply: ok", // from NOBODY
			"received 1", "answered reply: ok", // from OPLAIN
			"closed", "receive failed: closed",
		},
		"OCLI":      {"attached", "located OSRV"},
		"OCLI>OSRV": {"sent: ok", "sent: rejected", "triggered: ok", "sent: peer gone"},
	} {
		if got := r.get(name); !slices.Equal(got, want) {
			t.Errorf("%s was told\n%q\nwant\n%q", name, got, want)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 3 {
		t.Errorf("events for %d names, want 3 (OSRV, OCLI, OCLI>OSRV): %v", len(r.events), r.events)
	}
	if len(r.times) != 7 {
		t.Errorf("%d durations, want 7 (4 answers, 3 Sends)", len(r.times))
	}
	for _, d := range r.times {
		if d > wall {
			t.Errorf("a duration of %v, want at most the %v it all took", d, wall)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[simpl.Outcome]string{
		simpl.OutcomeReply:      "reply",
		simpl.OutcomeReplyError: "reply_error",
		simpl.OutcomeRelay:      "relay",
		simpl.Outcome(7):        "Outcome(7)",
	} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}
