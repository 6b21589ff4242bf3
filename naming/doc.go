// Package naming turns SIMPL names into the places where their owners
// listen.
//
// A name is a string of at most 31 bytes, optionally qualified as
// "host:name" or "protocol:host:name" (at most two colons), split as C
// SIMPL splits it: an empty protocol is DefaultProtocol, an empty host
// means this host. Parse checks and splits it, refusing fields too long
// where C SIMPL cuts them; ParseC cuts them as C SIMPL does. A host part
// naming this host (IsLocalHost: HOSTNAME, else /etc/hostname, as C SIMPL
// decides it; never "localhost" or 127.0.0.1 unless HOSTNAME says so) is
// looked up locally.
//
// The local registry is a directory of FIFOs: the owner (process PID) of
// NAME creates the receive FIFO NAME.PID and the reply FIFO YNAME.PID. The
// directory is $FIFO_PATH or, when that is unset, /var/tmp: the same default
// as C SIMPL, so Go and C programs find each other with no configuration.
// The directory is the single source of truth; no daemon is needed.
//
// A registry entry whose owner is dead (killed, exited without detaching,
// or whose pid now belongs to a younger process) is stale; Registry.Reap
// removes stale entries and attaching a name reaps them automatically.
//
// Registry values are safe for concurrent use; each call reads the
// directory afresh.
package naming
