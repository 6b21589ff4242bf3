// Package netwire is what crosses between hosts, and between a program and
// its host's gateway, when a Send goes to another host (issue 13's network
// transport): the NATS subject a name is served on, the envelope a program
// hands its gateway, and the status an answer comes back with. Its
// decoders take bytes from other processes and other hosts and never
// trust a length they read; each is fuzzed.
//
// A remote Send goes program → local gateway → NATS → remote gateway →
// receiver, and its answer back the same way:
//
//   - The program sends the local gateway (a gosimpl receiver, over the
//     local transports) an Envelope: the target name, the time left of the
//     Send's deadline, the largest reply it takes, and the request.
//   - The gateway sends it on to the subject Subject(host, name), as a
//     NATS request whose headers (the Header* names) say the same, and the
//     receiving host's gateway Sends it to the receiver.
//   - The answer comes back as a Status and the reply bytes: over NATS in
//     the HeaderStatus header, to the program in a ReplyHeader before the
//     reply.
//
// Requests and replies are at most MaxPayload bytes; the gateways carry
// those larger than one NATS message in chunks (HeaderSize, HeaderOffset
// and the acknowledgements' HeaderAcked, HeaderChunksTo, HeaderAcksTo).
package netwire

// GatewayName is the SIMPL name a host's gateway (fcgate) attaches: the
// local programs' way out to other hosts.
const GatewayName = "_gosimpl_gw"
