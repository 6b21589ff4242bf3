// Package netdirect lets a program reach other hosts' names straight over
// NATS, without its host's gateway (fcgate), configured by its
// environment: a program that imports it,
//
//	import _ "github.com/gosimpl/gosimpl/simpl/netdirect"
//
// and runs with GOSIMPL_NATS set, sends every remote Send, Trigger and
// Locate ("host:NAME") of its Channels through a gateway of its own, in
// its process, connected to the NATS servers GOSIMPL_NATS lists, instead
// of through _gosimpl_gw. Without GOSIMPL_NATS importing it changes
// nothing. The program's code is the same either way.
//
// The environment (read when the first remote name is located):
//
//	GOSIMPL_NATS           the servers' URLs, comma-separated (nats:// or tls://)
//	GOSIMPL_NATS_CREDS     a credentials file to authenticate with
//	GOSIMPL_NATS_NKEY      a file holding an nkey seed to authenticate with
//	GOSIMPL_NATS_CA        the CA that signs the servers' certificates
//	GOSIMPL_NATS_CERT, GOSIMPL_NATS_KEY
//	                       a client certificate and its key
//	GOSIMPL_NATS_INSECURE  "1": allow servers beyond loopback without TLS
//	                       and authentication (as fcgate -insecure)
//
// The program is a host's program to NATS: its user needs only to send
// (the first of netwire.Permissions' publish subjects for its host, and
// _GS_INBOX.>) and to read its answers (gateway.ProgramInbox(host).>); a
// gateway's embedded server gives any client without a certificate
// exactly that. Its host name is $HOSTNAME, else /etc/hostname, as for
// the gateways. It serves no names: requests to this host's names still
// come through the host's gateway.
//
// Its gateway is attached in each FIFO directory the program's Channels
// use, as _gosimpl_gwPID (mode 0600), and stays until the program exits.
// Semantics are the gateways': at most once, deadlines that travel,
// messages up to 64 MiB in chunks, a lost server or host failing its
// Sends within 2 s (docs/network.md).
package netdirect
