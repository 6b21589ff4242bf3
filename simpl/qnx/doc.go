// Package qnx is QNX Neutrino's native message-passing API (channels,
// connections, MsgSend/MsgReceive/MsgReply, pulses) in Go, built on the
// public simpl API, for porting QNX programs to Linux. It is also the
// layer the C library's <sys/neutrino.h> calls: ids are ints, buffers
// plain byte slices, and failures syscall.Errno values.
//
// # The calls
//
//	QNX                       here
//	ChannelCreate(flags)      ChannelCreate(flags) (chid, error)
//	ChannelDestroy(chid)      ChannelDestroy(chid) error
//	ConnectAttach(nd, pid,    ConnectAttach(nd, pid, chid, index, flags) (coid, error)
//	  chid, index, flags)
//	ConnectDetach(coid)       ConnectDetach(coid) error (also a server's scoid)
//	name_attach(NULL, p, f)   NameAttach(p, f) (*NameAttachT, error)
//	name_detach(a, f)         NameDetach(a, f) error
//	name_open(p, f)           NameOpen(ctx, p, f) (coid, error)
//	name_close(coid)          NameClose(coid) error
//	MsgSend/MsgSendnc         MsgSend(ctx, coid, smsg, rmsg) (status, error)
//	MsgSendv                  MsgSendv(ctx, coid, siov, riov) (status, error)
//	MsgReceive/MsgReceivev    MsgReceive(ctx, chid, msg, *MessageInfo) (rcvid, error)
//	MsgReceivePulse/          MsgReceivePulse(ctx, chid, msg) (0, error)
//	  MsgReceivePulsev        MsgReceivePulsev(ctx, chid, riov) (0, error)
//	MsgReply/MsgReplyv        MsgReply(rcvid, status, msg) error
//	MsgError(rcvid, errno)    MsgError(rcvid, errno) error
//	MsgRead/MsgReadv          MsgRead(rcvid, b, offset) (n, error)
//	MsgWrite/MsgWritev        MsgWrite(rcvid, b, offset) (n, error)
//	MsgInfo(rcvid, info)      MsgInfo(rcvid, *MessageInfo) error
//	MsgSendPulse(coid, prio,  MsgSendPulse(coid, prio, code, value) error
//	  code, value)
//	struct _pulse             Pulse, PulseSize, DecodePulse
//	struct _msg_info          MessageInfo
//	MsgDeliverEvent(rcvid,    MsgDeliverEvent(rcvid, *SigEvent) error
//	  &ev)                    (SigevPulseInit, EncodeEvent, DecodeEvent)
//	TimerTimeout(...)         TimerTimeout(clock, flags, notify, ntime, otime) (prev, error)
//	(process exit)            Shutdown(ctx)
//
// The blocking calls take a context first: its cancellation is QNX's
// signal (EINTR), its deadline a kernel timeout (ETIMEDOUT); C callers
// pass context.Background. Where QNX returns -1 and sets errno, these
// return an error that is a syscall.Errno with QNX's meaning, compared
// by name (EOK, ESRCH, EBADF, EINVAL, EFAULT, EINTR, ETIMEDOUT, EAGAIN,
// ENOTSUP...; see the constants: the numbers are Linux's). Any goroutine
// may make any call; several may receive on one channel at once, and any
// may reply to any rcvid, once.
//
// # How it maps onto simpl
//
// A channel is a simpl Channel of this process named "qnx.PID.CHID"
// ("qnx.PID.CHID.u" with NTO_CHF_UNBLOCK), so ConnectAttach(0, pid, chid)
// finds it by looking that name up; a name_attach'd channel is the simpl
// name itself, and name_open looks it up. Connections of one process to
// one channel share one simpl Conn (and one scoid at the server), sent
// under a simpl name of the process's own ("_PID_N"), attached at the
// first connection and closed after the last. Every request carries a
// 16-byte header of this package (kind: message, pulse, connect,
// disconnect, unblock; see wire.go), which the server decodes and checks
// before use; what follows is the client's message. Answers carry an
// 8-byte header (status, or errno for MsgError), and, when MsgWrite left
// gaps, a table of the runs written, so that the client keeps its own
// bytes in the gaps as on QNX (up to 8 runs; past that the smallest gaps
// are zeroed).
//
// Sizes follow QNX: each direction transfers min(sent, buffer) and the
// rest is not an error. The whole request stays readable with MsgRead
// until it is answered (through shared memory it is read in place in the
// client's memory); MsgWrite parts are kept by the server until MsgReply
// sends them with the reply. MsgReceivev's Msglen is the bytes its parts
// received, Srcmsglen the bytes sent.
//
// An rcvid is a slot number with a generation: a stale rcvid is ESRCH,
// never another client's message. As on QNX, where an rcvid names the
// client thread, a client thread's next message gets the same rcvid
// when its previous one was answered, so that an rcvid kept for
// MsgDeliverEvent stays good while the client sends on (until its slot
// goes to another thread: when its client goes, or the table is full).
// scoids are one per client process and
// channel; the server watches each client process through a pidfd, so a
// client that dies (SIGKILL included) ends its scoid at once: with
// NTO_CHF_DISCONNECT the server gets a DISCONNECT pulse, and the dead
// client's rcvids become ESRCH. ConnectDetach of a process's last
// connection to a channel tells the server the same way, also for a
// client that never sent anything (a scoid made for the pulse). A
// ConnectAttach after it does not wait for the server to take that
// disconnect (it never blocks, as on QNX): the connection is reused,
// the disconnect still goes first, and the server sees the new
// connection's traffic under a new scoid.
//
// ChannelDestroy makes this process's connections to the channel dead
// at once (MsgSend, MsgSendPulse: EBADF), and a channel created later
// with the same chid (the lowest free, as on QNX) or name is a new
// connection's, never theirs. Another process's connections find out
// at their next send (ESRCH, then EBADF).
//
// # Pulses
//
// A pulse (MsgSendPulse, MsgDeliverEvent) travels as a 16-byte simpl
// request that the server's MsgReceive answers at once, before returning
// rcvid 0 and the struct _pulse. So that MsgSendPulse does not block,
// each connection has an outbox: a goroutine, running only while pulses
// wait, sends them one at a time, in order (at most 256 waiting: EAGAIN,
// for MsgSendPulse and MsgDeliverEvent alike: QNX's pulse pool, whose
// exhaustion is EAGAIN).
// MsgSend waits for the outbox to empty first. Order per client
// process and channel is therefore: pulses in the order sent, and every
// pulse before any message sent after it on that channel by the same
// process; a message is answered before its sender can send more. Between
// different processes, or different threads of one process, nothing is
// ordered beyond the simpl queue's arrival order (priority order is not
// used: see docs/porting-qnx.md). Pulses the server raises for itself (the
// DISCONNECT and UNBLOCK pulses) go in a local queue that MsgReceive
// reads before waiting again; a simpl proxy from the channel to itself
// wakes a waiting MsgReceive.
//
// MsgReceivePulse returns pulses only. simpl cannot leave a request in
// its queue while taking the one behind it, so a message that reaches a
// MsgReceivePulse is held by the channel, unanswered, its sender still
// blocked, and the channel's next MsgReceive returns held messages first,
// in the order they came. Held messages count as queued (SEND-blocked):
// a SEND-state timeout of their client withdraws them, ChannelDestroy
// answers their senders ESRCH, and the end of their client drops them.
// One exception: a client that leaves without asking (both SEND and
// REPLY timed, channel without NTO_CHF_UNBLOCK; see below) cannot be
// seen leaving, so while its process lives its held message still
// reaches MsgReceive, and MsgReply to it is ESRCH, as when it leaves
// after the message was received.
// MsgReceive and MsgReceivePulse calls take turns reading the simpl
// queue, so that no message is held while a MsgReceive waits in simpl
// without knowing: MsgReceivePulse reads it only while no MsgReceive is
// on the channel, and the first MsgReceive to come asks it to leave (a
// bell). While a MsgReceivePulse waits, every pulse goes to it: a
// MsgReceive that takes one passes it on (QNX gives a pulse to whichever
// receiving thread is first in line). See pulse.go.
//
// MsgDeliverEvent: the client puts a SigEvent (EncodeEvent) in its
// request, whose Coid is a side-channel connection to one of its own
// channels; such coids carry that chid, so the server delivers the pulse
// to channel chid of the rcvid's client process.
//
// # Timeouts and unblocking
//
// TimerTimeout arms a timeout for the calling OS thread's next MsgSend or
// MsgReceive (Go callers lock the thread; a context deadline is the Go
// way); any other call of the package disarms it, as any QNX kernel call
// does. A MsgReceive timeout is a deadline on the receive; one that has
// expired already (QNX's non-blocking receive: TimerTimeout with a NULL
// ntime) takes what is queued and is ETIMEDOUT only when nothing is. On
// an UNBLOCK channel, MsgError(rcvid, -1) passes the client's unblock
// reason (ETIMEDOUT, EINTR) once its UNBLOCK pulse came, as QNX 7.0.1
// does. A MsgSend timeout or cancellation, in QNX's terms:
//
//   - On a channel without NTO_CHF_UNBLOCK with both SEND and REPLY
//     armed (and on cancellation), the client leaves at once with
//     ETIMEDOUT or EINTR: the message is withdrawn if the server has
//     not received it (through FIFOs it is delivered and its answer
//     discarded), and the server is not told; its MsgReply then gets
//     ESRCH (through FIFOs the C SIMPL wire cannot say, and it succeeds).
//   - Otherwise, with SEND armed (or on cancellation), a message the
//     server has not taken off simpl's queue is withdrawn at once and
//     the client leaves, the server untold, as the QNX kernel does for
//     a SEND-blocked client: through shared memory, which knows whether
//     the message was taken (simpl.UntilTaken).
//   - Otherwise the client asks the server, in band, which state its
//     message is in, and the server's next MsgReceive decides: still
//     queued (or held by a MsgReceivePulse) with SEND armed, the message
//     is withdrawn and the client leaves; received with REPLY armed, on
//     an UNBLOCK channel the server gets a PULSE_CODE_UNBLOCK pulse
//     (value the rcvid, MsgInfo shows NTO_MI_UNBLOCK_REQ) and the client
//     stays blocked until MsgReply or MsgError, as on QNX; without
//     UNBLOCK the client leaves and the rcvid is void; received with
//     only SEND armed, the client waits for its reply.
//
// What this cannot tell apart: through FIFOs the transport does not say
// whether the server has taken a message off its queue, so the client
// alone cannot know whether it is SEND- or REPLY-blocked. The server
// knows, but only when it runs MsgReceive, and the client's question
// queues behind the message itself: a server that is not receiving
// decides nothing (an UNBLOCK channel's client, or one with only SEND or
// only REPLY armed, waits for it), and a message queued ahead of its own
// question is received first, so it is REPLY-blocked when the question
// is answered. Through FIFOs a SEND-only timeout therefore releases a
// client only when the server answers the question while the message is
// not yet received (a message sent later can be withdrawn this way).
// Through shared memory the same holds only for a message taken off the
// queue and held by a MsgReceivePulse.
//
// # Not here
//
// See docs/porting-qnx.md ("In Go: package simpl/qnx"): priority inheritance,
// remote nodes, THREAD_DEATH and COID_DISCONNECT channels, asynchronous
// messaging, signals other than through ctx.
//
// The package's state is per process; every function is safe for
// concurrent use.
package qnx
