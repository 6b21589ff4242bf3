// Package gateway is a host's gateway to the others (issue 13): the
// library behind fcgate. A Gateway attaches nothing itself; it is given a
// simpl.Channel that attached netwire.GatewayName and a NATS connection
// (Network.Connect makes one, with an embedded NATS server or to an
// existing deployment), and works both ways:
//
//   - Outbound: each envelope a local program sends to the gateway's name
//     (internal/transport/remote) is handled in a goroutine of its own, at
//     most WithMaxInflight at once (one more is answered StatusBusy having
//     sent nothing). It goes out as one NATS message to
//     netwire.Subject(host, name, this host), with the netwire headers (kind, time
//     left of the sender's deadline, largest reply, proxy, the sending
//     host, name and pid, and an id unique to the request), and a reply
//     subject under the gateway's one inbox, where answers are told apart
//     by the subject's last token. The gateway then waits: every
//     heartbeat (StatusWorking) restarts a 1.5 s silence timer; the final
//     answer (HeaderStatus, HeaderDetail, the reply as data) goes back to
//     the program behind a netwire reply header. NATS's "no responders"
//     (no gateway subscribed to that host's subjects) is StatusUnreachable:
//     nothing was delivered. Silence is StatusUnknown: the request may or
//     may not have been delivered (the program's Send fails with
//     ErrOutcomeUnknown). Nothing is ever sent twice.
//
//   - Inbound: the gateway subscribes to netwire.HostSubjects(host) in a
//     queue group (several gateways of one host share the work). A request
//     with bad headers, a bad subject or an id already seen within the
//     last minute is answered StatusBadMessage, counted and not delivered.
//     Otherwise, at most WithMaxInbound at once, it is delivered to the
//     local name: a Locate asks the registry whether a live process holds
//     it; a Send is made on a cached connection (dropped when its receiver
//     is gone or another process holds the name) with a context whose
//     deadline is the time the request says was left, so the receiving
//     host gives up when the sender does; a Trigger is sent on. While the
//     local Send is in progress the gateway sends a heartbeat every 500 ms;
//     its outcome, mapped by netwire.StatusOf, is the answer.
//
// Batches (batch.go): requests of at most 16 KiB bound for one host while
// the writer goroutine is busy go out in one NATS message, on the subject
// of the empty name (netwire.Subject(host, "", this host)), and answers of
// at most 16 KiB bound for one gateway come back in one (its inbox's
// subject ".a"); each request in a batch is otherwise taken as one that
// came alone. Nothing waits for a batch to fill.
//
// Requests and replies of up to netwire.MaxPayload (64 MiB, as the local
// transports) cross; those larger than one NATS message (the server's
// payload limit less 1 KiB for the headers: Limit) go in chunks of Limit
// bytes (chunk.go): the first is the message with its whole size, the
// side taking it names a subject of its own for the rest (so a queue
// group's member that took the first takes them all), and the sender
// keeps at most 4 chunks unacknowledged. A request in chunks is
// delivered only once whole; one whose chunks stop is dropped after the
// silence time and counted (Stats.Partial). A sender whose chunks stop
// before the last went out answers StatusUnreachable (nothing was
// delivered) with the bytes sent; after the last, StatusUnknown.
//
// Memory: every request and reply buffer larger than one NATS message is
// charged against WithMaxBytes (default 256 MiB) on both gateways: by
// the requesting one when it takes the envelope, by the receiving one
// when the first chunk comes, before any more is sent; beyond it the
// request is answered StatusFull, unsent and undelivered. What fits in
// one NATS message is bounded by WithMaxInbound and WithMaxInflight
// times Limit.
//
// CSimpl (router.go) lets unmodified C SIMPL programs use the gateway: it
// plays C SIMPL's protocol router (_simplProtoRouter), or registers with
// the one running, and the surrogates a remote name_locate asks for, which
// carry the program's Sends and Triggers through the gateway.
//
// Close stops taking requests (later ones are answered StatusClosed),
// gives those in flight the drain time to finish, then answers the
// outbound ones StatusUnknown and cancels the inbound ones' local Sends.
package gateway
