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
//	conn, _ := cli.Locate("CLOCK")
//	n, err := conn.Send(ctx, []byte("now?"), reply)
//
// # Names and where they live
//
// Names follow SIMPL's rules: 1 to 31 bytes, no '/', ':' or '#'
// (remote forms "host:name" and "protocol:host:name" parse, and Locate says
// ErrNotSupported until the network transport exists). The registry is the
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
// # Errors
//
// Every error wraps one of the Err* sentinels below; test with errors.Is.
// A failure reported by a C SIMPL receiver carries no reason on the wire and
// surfaces as ErrRejected.
package simpl
