// Package surwire is the wire of C SIMPL 3.x's TCP surrogates
// (surrogateTcp), as shared/spec/simpl-network-wire.md (section 4)
// describes it: the frames a surrogate pair exchanges over one TCP
// connection, in both of its encodings, for the bridge to C SIMPL hosts
// (issue 14). It speaks the protocol only to interoperate: the protocol
// has no authentication and C SIMPL trusts every length in it; this
// package trusts none. Every length is checked against a limit before
// anything is allocated, every field a frame uses is checked, and the
// fields a frame does not use (C SIMPL leaves stale bytes there) are
// ignored when read and written as zeros, never leaked.
//
// The encodings, fixed at build time on the C side and never negotiated:
//
//   - Binary: a 16-byte header of four 32-bit integers in the host's byte
//     order (little-endian on the machines C SIMPL runs on): token,
//     nbytes, ybytes, surPid.
//   - Char (SUR_CHR, what C SIMPL ships): a 32-byte header of four 8-byte
//     fields, each a 32-bit value written as 8 nibbles, one per byte
//     (0x00 to 0x0F, not ASCII), most significant first.
//
// Integers in bodies (a locate's result, a proxy's value) are 4 bytes or
// 8 nibbles the same way; payloads are never converted.
package surwire
