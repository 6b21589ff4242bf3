package simpl

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/transport"
)

// An Observer is told what the Channels attached WithObserver do, in the
// manner of net/http/httptrace: gosimpl records nothing itself, it calls
// the observer as things happen. Metrics, tracing and logging are built
// on it; package simplprom implements it with Prometheus metrics.
//
// Observers come in three layers, each obtained once so that the events
// themselves cost only a call: Attach calls ObserveChannel once for the
// Channel, Locate calls the ChannelObserver's ObserveConn once for each
// Conn, and every receive, answer, Send and Trigger is then one call on
// these. Any of them may return nil to observe nothing of that Channel or
// Conn.
//
// The methods of all three are called from the goroutines doing the work,
// concurrently, and most of them on a message's way: they must be safe
// for concurrent use, quick, and must not block or call back into the
// Channel, Conn or Message they observe. A round trip of 0 allocations
// stays one of 0 allocations if the observer allocates nothing.
type Observer interface {
	// ObserveChannel is called by Attach, once the name is attached,
	// with the attached name.
	ObserveChannel(name string) ChannelObserver
}

// A ChannelObserver is told what one Channel does: its receives and
// answers, and (through the ConnObservers it returns) the Sends and
// Triggers of the Conns it locates. See Observer.
type ChannelObserver interface {
	// Received is called when Receive returns a request, with its
	// size: len(Message.Data()).
	Received(size int)

	// ProxyReceived is called when Receive returns a proxy.
	ProxyReceived()

	// ReceiveFailed is called when Receive fails, with its error. A
	// Receive ended by its own context has not failed and is not
	// reported.
	ReceiveFailed(err error)

	// Answered is called when a call answering a request returns: how
	// is the call (Reply and ReplyInPlace are OutcomeReply), d the time
	// since Receive returned the request, err what the call returned.
	// What err says about the request:
	//
	//   - nil: it is answered.
	//   - ErrReplyTooLarge or ErrPeerGone: it is answered (spent), but
	//     the answer did not reach its sender.
	//   - ErrClosed: closing the Channel answered it (its sender got
	//     ErrPeerGone).
	//   - anything else (ErrReplied, a Relay that could not be
	//     delivered, ...): the call changed nothing: the request was
	//     answered before, or is still owed its answer.
	//
	// Answering a proxy is not reported.
	Answered(how Outcome, d time.Duration, err error)

	// ObserveConn is called by Locate for each Conn it returns, with
	// the name located and the name of the transport the Conn's Sends
	// use (FIFO, SHM, or another registered one).
	ObserveConn(to, transport string) ConnObserver

	// Closed is called once, when Close begins: the requests this
	// Channel received and has not answered are about to be failed for
	// their senders with ErrPeerGone.
	Closed()
}

// A ConnObserver is told what one Conn does. See Observer.
type ConnObserver interface {
	// Sent is called when a Send (Conn.Send or a Buffer's Send)
	// returns, with the time it blocked and its error.
	Sent(d time.Duration, err error)

	// Triggered is called when Trigger returns, with its error.
	Triggered(err error)
}

// Outcome is how a request was answered, for ChannelObserver.Answered.
type Outcome int

// The ways to answer a request.
const (
	OutcomeReply      Outcome = iota // Reply or ReplyInPlace
	OutcomeReplyError                // ReplyError
	OutcomeRelay                     // Relay
)

// String is "reply", "reply_error" or "relay".
func (o Outcome) String() string {
	switch o {
	case OutcomeReply:
		return "reply"
	case OutcomeReplyError:
		return "reply_error"
	case OutcomeRelay:
		return "relay"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// WithObserver has o told what the Channel does: its receives and
// answers, and the Sends and Triggers of the Conns it locates (see
// Observer). Without it, or with nil, the Channel tells nobody and pays
// one nil check per operation.
func WithObserver(o Observer) Option {
	return func(op *options) error {
		op.metrics = nil
		if o != nil {
			op.metrics = &observing{o}
		}
		return nil
	}
}

// The names simpl.go answers with.
const (
	outcomeReply      = OutcomeReply
	outcomeReplyError = OutcomeReplyError
	outcomeRelay      = OutcomeRelay
)

// observing is WithObserver's Observer.
type observing struct{ o Observer }

// attach asks the observer about the Channel named name; nil when it
// observes nothing of it.
func (ob *observing) attach(name string) *chanMetrics {
	co := ob.o.ObserveChannel(name)
	if co == nil {
		return nil
	}
	return &chanMetrics{o: co, clk: processClock()}
}

// chanMetrics is one Channel's observer and the clock it times answers
// with. Safe for concurrent use.
type chanMetrics struct {
	o      ChannelObserver
	clk    *clock
	closed atomic.Bool
}

// close tells the observer the Channel is closing, the first time.
func (cm *chanMetrics) close() {
	if cm.closed.CompareAndSwap(false, true) {
		cm.o.Closed()
	}
}

// receive reports a request or proxy that Receive is about to return,
// and arms msg to report its answer.
func (cm *chanMetrics) receive(msg *Message, req transport.Request) {
	if msg.proxy > 0 {
		cm.o.ProxyReceived()
		return
	}
	cm.o.Received(len(req.Data()))
	msg.met, msg.t0 = cm, cm.clk.now()
}

// receiveFailed reports a failed Receive; one ended by its context has
// not failed.
func (cm *chanMetrics) receiveFailed(err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	cm.o.ReceiveFailed(err)
}

// answered reports an answer to a request received at t0.
func (cm *chanMetrics) answered(t0 int64, how Outcome, err error) {
	cm.o.Answered(how, cm.clk.since(t0), err)
}

// conn asks the observer about a Conn to the name to; nil when it
// observes nothing of it.
func (cm *chanMetrics) conn(to, via string) *connMetrics {
	co := cm.o.ObserveConn(to, via)
	if co == nil {
		return nil
	}
	return &connMetrics{o: co, clk: cm.clk}
}

// connMetrics is one Conn's observer and the clock it times Sends with.
// Safe for concurrent use.
type connMetrics struct {
	o   ConnObserver
	clk *clock
}

// sent reports a Send that began at t0 and ended with err.
func (cm *connMetrics) sent(t0 int64, err error) { cm.o.Sent(cm.clk.since(t0), err) }

// triggered reports a Trigger that ended with err.
func (cm *connMetrics) triggered(err error) { cm.o.Triggered(err) }
