// Package simpl is QNX-style synchronous message passing between Linux
// processes, wire-compatible with C SIMPL 3.x.
//
// A process attaches a name, which gives it a Channel. Other processes
// Locate the name and Send to it; each Send blocks until the receiver has
// called Receive, done its work and answered with Reply (or ReplyError, or
// Relay to another receiver, which then answers). The sender never runs
// ahead of the receiver.
//
//	srv, _ := simpl.Attach("CLOCK")
//	msg, _ := srv.Receive(ctx)
//	msg.Reply([]byte(time.Now().String()))
//
//	cli, _ := simpl.Attach("CLIENT")
//	conn, _ := cli.Locate(ctx, "CLOCK")
//	n, err := conn.Send(ctx, []byte("now?"), reply)
//
// # Names and where they live
//
// Names follow SIMPL's rules: 1 to 31 bytes, no '/', ':' or '#'
// (remote forms "host:name" and "protocol:host:name" reach other hosts
// through this host's gateway, fcgate: see docs/network.md; with no
// gateway running Locate says ErrUnreachable). The registry is the
// directory $FIFO_PATH, or /var/tmp when it is unset, as in C SIMPL; see
// package naming. A name whose owner died is reclaimed by the next Attach.
//
// # Messages
//
// Receive returns a Message: a request owed exactly one answer, or a proxy
// (a Trigger, owed nothing). On the FIFO transport the request's Data is a
// copy taken at receive time, so the sender cannot change it under the
// receiver; it stays valid until the message is answered or the Channel is
// closed, and must not be kept after that. A Message may be answered later,
// out of order, from any goroutine.
//
// # Concurrency
//
// Channel, Conn and Message are safe for concurrent use. Many goroutines may
// Send through one Channel at once: each concurrent Send uses its own reply
// FIFO and buffer, so replies never cross. (On the wire, the second and
// later concurrent Sends identify as NAME#k; see docs/wire.md.)
//
// # Zero copy
//
// Through shared memory, Data is the request where the sender wrote it, and
// ReplyBuffer is where the reply goes (over the request): a receiver that
// writes its reply there and calls ReplyInPlace copies nothing. Through
// FIFOs, ReplyBuffer is the sender's own System V segment. A sender builds
// requests in place with Conn.Buffer. Each view is valid until its message
// is answered (receiver) or until the Buffer is written again or closed
// (sender); an answered Message is spent, so a stale copy of it returns
// nil Data and ErrReplied rather than touching a later message.
//
// # Deadlines and senders that give up
//
// Send and Receive take a context and return its error when it ends, in
// every state: waiting for a receiver, waiting to be received, waiting for
// the reply. What the receiver sees when its sender gave up depends on how
// far the message got:
//
//   - not yet received: the message is withdrawn and never delivered
//     (shared memory); through FIFOs it is delivered, and the answer is
//     thrown away by the sender's process.
//   - received: the receiver learns it only when it answers. Through shared
//     memory Reply returns ErrPeerGone; through FIFOs the C SIMPL wire
//     cannot say, so Reply succeeds and the answer is discarded.
//
// Either way the late answer can never reach a later Send: the shared-memory
// lane is dropped, and the FIFO slot is drained or destroyed before reuse.
// A receiver that must know at once (QNX's _NTO_CHF_UNBLOCK) can give its
// work a deadline of its own. A sender that dies is another matter: on
// both transports the receiver's answer (Reply, ReplyInPlace, ReplyError)
// returns ErrPeerGone, the message counts as answered, and nothing of the
// sender is kept (through FIFOs, its reply FIFO has no reader any more, and
// its segment is detached at once).
//
// # Signals and exit
//
// Go runs no exit handlers, so a program that is killed by a signal it does
// not handle leaves its name's FIFOs behind (the next Attach of the name, or
// fcshow -clean, removes them, and shared memory is never left: it lives in
// memfds that die with the process). Handle the signals that should end the
// program and close the Channel on the way out: let signal.NotifyContext end
// the context the Receive loop runs in, and defer Close (see the example of
// Channel.Close). SIGKILL cannot be handled; its remains are cleaned up as
// above, and the program's peers get ErrPeerGone at once.
//
// # Observing
//
// WithObserver hands a Channel's events to an Observer: each request and
// proxy received, each answer with its outcome and time since Receive, each
// Send with its round trip, each Trigger, each failure, and the Channel's
// Close (see Observer for the calls and their order). The package records
// nothing itself and pays one nil check per operation without an observer;
// with one, an event is one interface call and the observer's work.
// Package simplprom is the observer that keeps Prometheus metrics, so that
// this package links no Prometheus (docs/metrics.md).
//
// # Priorities
//
// WithPriorityInheritance makes a Channel's Sends carry their thread's
// scheduling priority through shared memory and lets Channel.Serve run
// each request at its sender's priority on a locked OS thread, raised
// while a higher-priority sender waits; WithPriorityOrder receives waiting
// requests highest priority first, with a bounded window (PriorityWindow).
// Both are off by default. See docs/realtime.md.
//
// # Errors
//
// Every error wraps one of the Err* sentinels below; test with errors.Is.
// A failure reported by a C SIMPL receiver carries no reason on the wire and
// surfaces as ErrRejected.
package simpl
