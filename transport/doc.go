// Package transport is the contract between the public simpl API and the
// ways bytes move between processes, and the receive queue that joins
// them.
//
// A transport (internal/transport/fifo: the SIMPL 3.x FIFOs and System V segments;
// internal/transport/shm: futex-synchronised shared memory between gosimpl
// processes) implements Transport and registers itself with Register.
// When a name is attached, simpl starts an Endpoint on every registered
// transport, all delivering into one Queue that belongs to none of them,
// and its Receive takes from that Queue. Locate dials the Endpoints in
// Rank order and keeps the first Conn that reaches the receiver. What
// simpl sees of a received message is a Request: a small value naming one
// message, answered exactly once, its data valid until then, safe for
// concurrent use, whichever transport carried it.
//
// Every transport passes the same conformance suite,
// transport/transporttest.
//
// The package also holds the sentinel errors shared by every layer.
package transport
