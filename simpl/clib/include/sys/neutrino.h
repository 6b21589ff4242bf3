/*
 * <sys/neutrino.h>: QNX Neutrino's message-passing kernel calls, from
 * gosimpl's C library (built from simpl/clib; the calls are simpl/qnx's).
 *
 * Prototypes are QNX 6.x's (int sizes and results). struct _pulse and
 * struct _msg_info have QNX's layouts. struct sigevent, union sigval and
 * iov_t are the C library's own (glibc's <signal.h> and <sys/uio.h>
 * already define them); QNX's sigevent field names and initialisers are
 * added below. docs/porting-qnx.md says what differs from QNX.
 */
#ifndef GOSIMPL_SYS_NEUTRINO_H
#define GOSIMPL_SYS_NEUTRINO_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* QNX's errno names that Linux lacks (the others are Linux's numbers). */
#ifndef EOK
#define EOK 0
#endif
#ifndef ESRVRFAULT
#define ESRVRFAULT EBADMSG /* "server fault on message pass": no Linux errno */
#endif
#ifndef ENOREMOTE
#define ENOREMOTE EREMOTE
#endif

/* Channel flags (ChannelCreate). */
#define _NTO_CHF_FIXED_PRIORITY 0x0001
#define _NTO_CHF_UNBLOCK 0x0002
#define _NTO_CHF_THREAD_DEATH 0x0004
#define _NTO_CHF_DISCONNECT 0x0008
#define _NTO_CHF_NET_MSG 0x0010
#define _NTO_CHF_SENDER_LEN 0x0020
#define _NTO_CHF_COID_DISCONNECT 0x0040
#define _NTO_CHF_REPLY_LEN 0x0080
#define _NTO_CHF_STICKY 0x0100
#define _NTO_CHF_ASYNC_NONBLOCK 0x0200
#define _NTO_CHF_ASYNC 0x0400
#define _NTO_CHF_GLOBAL 0x0800
#define _NTO_CHF_PRIVATE 0x1000

/* Connection flags and the side-channel bit of ConnectAttach's index. */
#define _NTO_COF_CLOEXEC 0x0001
#define _NTO_COF_DEAD 0x0002
#define _NTO_COF_NOSHARE 0x0040
#define _NTO_COF_NETCON 0x0080
#define _NTO_COF_NONBLOCK 0x0100
#define _NTO_COF_ASYNC 0x0200
#define _NTO_COF_GLOBAL 0x0400
#define _NTO_SIDE_CHANNEL 0x40000000

/* Thread states, and TimerTimeout's flags (1 << STATE_x). */
#define STATE_SEND 4
#define STATE_RECEIVE 5
#define STATE_REPLY 6
#define _NTO_TIMEOUT_SEND (1 << STATE_SEND)
#define _NTO_TIMEOUT_RECEIVE (1 << STATE_RECEIVE)
#define _NTO_TIMEOUT_REPLY (1 << STATE_REPLY)
#define _NTO_TIMEOUT_SIGSUSPEND 0x400
#define _NTO_TIMEOUT_SIGWAITINFO 0x800
#define _NTO_TIMEOUT_NANOSLEEP 0x1000
#define _NTO_TIMEOUT_MUTEX 0x2000
#define _NTO_TIMEOUT_CONDVAR 0x4000
#define _NTO_TIMEOUT_JOIN 0x8000
#define _NTO_TIMEOUT_INTR 0x10000
#define _NTO_TIMEOUT_SEM 0x20000

/* TimerTimeout's flag for an absolute time (CLOCK_REALTIME only here). */
#ifndef TIMER_ABSTIME
#define TIMER_ABSTIME 1
#endif

/* Pulse codes: the kernel's are negative, applications use 0..127. */
#define _PULSE_TYPE 0
#define _PULSE_SUBTYPE 0
#define _PULSE_CODE_UNBLOCK (-32)
#define _PULSE_CODE_DISCONNECT (-33)
#define _PULSE_CODE_THREADDEATH (-34)
#define _PULSE_CODE_COIDDEATH (-35)
#define _PULSE_CODE_NET_ACK (-36)
#define _PULSE_CODE_NET_UNBLOCK (-37)
#define _PULSE_CODE_NET_DETACH (-38)
#define _PULSE_CODE_MINAVAIL 0
#define _PULSE_CODE_MAXAVAIL 127

/* _msg_info flags. */
#define _NTO_MI_ENDIAN_BIG 0x1
#define _NTO_MI_ENDIAN_DIFF 0x2
#define _NTO_MI_UNBLOCK_REQ 0x100

/*
 * sigevent kinds. SIGEV_NONE, SIGEV_SIGNAL and SIGEV_THREAD keep the
 * Linux values <signal.h> gave them (QNX's are 0, 1 and 7), so that a
 * sigevent still means the same to Linux's own calls; SIGEV_UNBLOCK and
 * SIGEV_INTR have QNX's values. SIGEV_PULSE does not: QNX's 4 is Linux's
 * SIGEV_THREAD_ID, and timer_create (mapped below) must tell a pulse
 * timer from a Linux per-thread signal timer, so it is 0x44, which no
 * Linux kind uses (a program that names it compiles unchanged; one that
 * writes the number 4 does not get a pulse). SIGEV_SIGNAL_CODE and
 * SIGEV_SIGNAL_THREAD are not provided: nothing here delivers them.
 */
#define SIGEV_PULSE 0x44
#define SIGEV_UNBLOCK 5
#define SIGEV_INTR 6
#define SIGEV_PULSE_PRIO_INHERIT (-1)
#define SIGEV_GET_TYPE(e) ((e)->sigev_notify & 0xff)

/*
 * QNX's sigevent members, stored in glibc's struct sigevent: the coid in
 * sigev_signo (QNX shares that union too), the pulse code and priority in
 * the padding glibc keeps after sigev_notify.
 */
#define sigev_coid sigev_signo
#define sigev_code _sigev_un._pad[0]
#define sigev_priority _sigev_un._pad[1]

#define SIGEV_PULSE_INIT(__e, __coid, __prio, __code, __value)        \
	(memset((__e), 0, sizeof *(__e)), (__e)->sigev_notify = SIGEV_PULSE, \
	 (__e)->sigev_coid = (__coid), (__e)->sigev_priority = (__prio),      \
	 (__e)->sigev_code = (__code),                                         \
	 (__e)->sigev_value.sival_ptr = (void *)(__value))
#define SIGEV_PULSE_INT_INIT(__e, __coid, __prio, __code, __value)    \
	(memset((__e), 0, sizeof *(__e)), (__e)->sigev_notify = SIGEV_PULSE, \
	 (__e)->sigev_coid = (__coid), (__e)->sigev_priority = (__prio),      \
	 (__e)->sigev_code = (__code), (__e)->sigev_value.sival_int = (__value))
#define SIGEV_UNBLOCK_INIT(__e) \
	(memset((__e), 0, sizeof *(__e)), (__e)->sigev_notify = SIGEV_UNBLOCK)
#define SIGEV_NONE_INIT(__e) \
	(memset((__e), 0, sizeof *(__e)), (__e)->sigev_notify = SIGEV_NONE)
#define SIGEV_SIGNAL_INIT(__e, __signo)                                  \
	(memset((__e), 0, sizeof *(__e)), (__e)->sigev_notify = SIGEV_SIGNAL, \
	 (__e)->sigev_signo = (__signo))

/* struct _pulse: 24 bytes on LP64, 16 on ILP32, as on QNX. */
struct _pulse {
	uint16_t type;
	uint16_t subtype;
	int8_t code;
	uint8_t zero[3];
	union sigval value;
	int32_t scoid;
};

/* struct _msg_info: QNX 6.x's 48 bytes. */
struct _msg_info {
	uint32_t nd;
	uint32_t srcnd;
	pid_t pid;
	int32_t tid;
	int32_t chid;
	int32_t scoid;
	int32_t coid;
	int32_t msglen;
	int32_t srcmsglen;
	int32_t dstmsglen;
	int16_t priority;
	int16_t flags;
	uint32_t reserved;
};
#define _server_info _msg_info

/* iov_t is struct iovec. */
typedef struct iovec iov_t;
#define SETIOV(_iov, _addr, _len) \
	((_iov)->iov_base = (void *)(_addr), (_iov)->iov_len = (_len))
#define GETIOVBASE(_iov) ((_iov)->iov_base)
#define GETIOVLEN(_iov) ((_iov)->iov_len)

/* Channels and connections. */
extern int ChannelCreate(unsigned __flags);
extern int ChannelCreate_r(unsigned __flags);
extern int ChannelDestroy(int __chid);
extern int ChannelDestroy_r(int __chid);
extern int ConnectAttach(uint32_t __nd, pid_t __pid, int __chid, unsigned __index, int __flags);
extern int ConnectAttach_r(uint32_t __nd, pid_t __pid, int __chid, unsigned __index, int __flags);
extern int ConnectDetach(int __coid);
extern int ConnectDetach_r(int __coid);

/* Sending. */
extern int MsgSend(int __coid, const void *__smsg, int __sbytes, void *__rmsg, int __rbytes);
extern int MsgSend_r(int __coid, const void *__smsg, int __sbytes, void *__rmsg, int __rbytes);
extern int MsgSendnc(int __coid, const void *__smsg, int __sbytes, void *__rmsg, int __rbytes);
extern int MsgSendnc_r(int __coid, const void *__smsg, int __sbytes, void *__rmsg, int __rbytes);
extern int MsgSendv(int __coid, const iov_t *__siov, int __sparts, const iov_t *__riov, int __rparts);
extern int MsgSendv_r(int __coid, const iov_t *__siov, int __sparts, const iov_t *__riov, int __rparts);
extern int MsgSendvnc(int __coid, const iov_t *__siov, int __sparts, const iov_t *__riov, int __rparts);
extern int MsgSendvnc_r(int __coid, const iov_t *__siov, int __sparts, const iov_t *__riov, int __rparts);
extern int MsgSendsv(int __coid, const void *__smsg, int __sbytes, const iov_t *__riov, int __rparts);
extern int MsgSendsv_r(int __coid, const void *__smsg, int __sbytes, const iov_t *__riov, int __rparts);
extern int MsgSendsvnc(int __coid, const void *__smsg, int __sbytes, const iov_t *__riov, int __rparts);
extern int MsgSendsvnc_r(int __coid, const void *__smsg, int __sbytes, const iov_t *__riov, int __rparts);
extern int MsgSendvs(int __coid, const iov_t *__siov, int __sparts, void *__rmsg, int __rbytes);
extern int MsgSendvs_r(int __coid, const iov_t *__siov, int __sparts, void *__rmsg, int __rbytes);
extern int MsgSendvsnc(int __coid, const iov_t *__siov, int __sparts, void *__rmsg, int __rbytes);
extern int MsgSendvsnc_r(int __coid, const iov_t *__siov, int __sparts, void *__rmsg, int __rbytes);
extern int MsgSendPulse(int __coid, int __priority, int __code, int __value);
extern int MsgSendPulse_r(int __coid, int __priority, int __code, int __value);

/* Receiving and answering. */
extern int MsgReceive(int __chid, void *__msg, int __bytes, struct _msg_info *__info);
extern int MsgReceive_r(int __chid, void *__msg, int __bytes, struct _msg_info *__info);
extern int MsgReceivev(int __chid, const iov_t *__riov, int __rparts, struct _msg_info *__info);
extern int MsgReceivev_r(int __chid, const iov_t *__riov, int __rparts, struct _msg_info *__info);
/* Pulses only (returns 0): messages stay queued for MsgReceive. */
extern int MsgReceivePulse(int __chid, void *__pulse, int __bytes, struct _msg_info *__info);
extern int MsgReceivePulse_r(int __chid, void *__pulse, int __bytes, struct _msg_info *__info);
extern int MsgReceivePulsev(int __chid, const iov_t *__riov, int __rparts, struct _msg_info *__info);
extern int MsgReceivePulsev_r(int __chid, const iov_t *__riov, int __rparts, struct _msg_info *__info);
extern int MsgReply(int __rcvid, int __status, const void *__msg, int __bytes);
extern int MsgReply_r(int __rcvid, int __status, const void *__msg, int __bytes);
extern int MsgReplyv(int __rcvid, int __status, const iov_t *__iov, int __parts);
extern int MsgReplyv_r(int __rcvid, int __status, const iov_t *__iov, int __parts);
extern int MsgError(int __rcvid, int __err);
extern int MsgError_r(int __rcvid, int __err);
extern int MsgRead(int __rcvid, void *__msg, int __bytes, int __offset);
extern int MsgRead_r(int __rcvid, void *__msg, int __bytes, int __offset);
extern int MsgReadv(int __rcvid, const iov_t *__iov, int __parts, int __offset);
extern int MsgReadv_r(int __rcvid, const iov_t *__iov, int __parts, int __offset);
extern int MsgWrite(int __rcvid, const void *__msg, int __bytes, int __offset);
extern int MsgWrite_r(int __rcvid, const void *__msg, int __bytes, int __offset);
extern int MsgWritev(int __rcvid, const iov_t *__iov, int __parts, int __offset);
extern int MsgWritev_r(int __rcvid, const iov_t *__iov, int __parts, int __offset);
extern int MsgInfo(int __rcvid, struct _msg_info *__info);
extern int MsgInfo_r(int __rcvid, struct _msg_info *__info);
extern int MsgDeliverEvent(int __rcvid, const struct sigevent *__event);
extern int MsgDeliverEvent_r(int __rcvid, const struct sigevent *__event);

/*
 * Kernel timeouts: per calling thread, for its next MsgSend* or
 * MsgReceive*; any other call of this API clears it, as on QNX.
 */
extern int TimerTimeout(clockid_t __id, int __flags, const struct sigevent *__notify,
                        const uint64_t *__ntime, uint64_t *__otime);
extern int TimerTimeout_r(clockid_t __id, int __flags, const struct sigevent *__notify,
                          const uint64_t *__ntime, uint64_t *__otime);
extern int timer_timeout(clockid_t __id, int __flags, const struct sigevent *__notify,
                         const struct timespec *__ntime, struct timespec *__otime);

/*
 * POSIX timers that deliver a SIGEV_PULSE (QNX's way of getting a pulse
 * every so often). Other sigevents go to Linux's timer_create unchanged.
 */
extern int gsqnx_timer_create(clockid_t __id, struct sigevent *__ev, timer_t *__timerid);
extern int gsqnx_timer_settime(timer_t __timerid, int __flags, const struct itimerspec *__value,
                               struct itimerspec *__ovalue);
extern int gsqnx_timer_delete(timer_t __timerid);
#define timer_create gsqnx_timer_create
#define timer_settime gsqnx_timer_settime
#define timer_delete gsqnx_timer_delete

#ifdef __cplusplus
}
#endif

#endif
