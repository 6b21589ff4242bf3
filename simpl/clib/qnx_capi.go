//go:build cgo

package main

// The public C functions of QNX Neutrino's API (<sys/neutrino.h>,
// <sys/dispatch.h>). Each plain call returns -1 and sets the calling
// thread's errno on failure; its _r twin returns -errno and leaves errno
// alone, as on QNX. The work is done in Go (qnx_exports.go), which
// reports the errno through an out parameter, so errno is set here, in C,
// on the caller's thread, after Go has returned.
//
// Also here: the exit handler (QNX's kernel cleans up at exit; here
// simpl/qnx must remove the process's names) and POSIX timers that
// deliver SIGEV_PULSE, which Linux's timer_create does not know.

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include "sys/neutrino.h"
#include "sys/dispatch.h"
#undef timer_create
#undef timer_settime
#undef timer_delete
#undef name_attach
#undef name_detach

// The calling thread's pacer (capi.go).
extern __attribute__((visibility("hidden"))) __thread long long gs_pace;

// The Go half (qnx_exports.go).
extern int gsq_ChannelCreate(unsigned flags, int *err);
extern int gsq_ChannelDestroy(int chid, int *err);
extern int gsq_ConnectAttach(uint32_t nd, int pid, int chid, unsigned index, int flags, int *err);
extern int gsq_ConnectDetach(int coid, int *err);
extern int gsq_MsgSendv(long long *pace, int coid, struct iovec *siov, int sparts, struct iovec *riov, int rparts, int *err);
extern int gsq_MsgSendPulse(long long *pace, int coid, int priority, int code, int value, int *err);
extern int gsq_MsgReceivev(int chid, struct iovec *riov, int rparts, int32_t *info, int *err);
extern int gsq_MsgReceivePulsev(int chid, struct iovec *riov, int rparts, int *err);
extern int gsq_MsgReplyv(int rcvid, int status, struct iovec *iov, int parts, int *err);
extern int gsq_MsgError(int rcvid, int errno_, int *err);
extern int gsq_MsgReadv(int rcvid, struct iovec *iov, int parts, int offset, int *err);
extern int gsq_MsgWritev(int rcvid, struct iovec *iov, int parts, int offset, int *err);
extern int gsq_MsgInfo(int rcvid, int32_t *info, int *err);
extern int gsq_MsgDeliverEvent(int rcvid, int notify, int coid, int priority, int code, int value, int *err);
extern int gsq_TimerTimeout(int clock, int flags, int notify, uint64_t *ntime, int *err);
extern int gsq_name_attach(char *path, unsigned flags, int *err);
extern int gsq_name_detach(int chid, unsigned flags, int *err);
extern int gsq_name_open(char *name, int flags, int *err);
extern void gsq_shutdown(void);

// Go's TIMER_ABSTIME for TimerTimeout (QNX's value); C programs use
// Linux's, which <time.h> defines.
#define GSQ_ABSTIME 0x80000000u

// Go's SIGEV_PULSE (QNX's value); C programs use <sys/neutrino.h>'s.
#define GSQ_SIGEV_PULSE 4

// qforked is set in a child of fork() (without exec): the Go runtime's
// threads are not in it, so no call may enter Go there. Every call fails
// with ENOSYS instead, and the exit handler does nothing.
static volatile int qforked;
static void qnx_in_child(void) { qforked = 1; }

// A thread that exits with a TimerTimeout still armed must not leave it
// for a later thread that gets the same thread id: tt_key's destructor
// disarms it. tt_armed says whether the thread may have one armed.
static pthread_key_t tt_key;
static __thread int tt_armed;

static void tt_clear(void *v)
{
	(void)v;
	if (tt_armed && !qforked) {
		int e = 0;
		tt_armed = 0;
		gsq_TimerTimeout(CLOCK_REALTIME, 0, -1, NULL, &e);
	}
}

// efault ends a MsgSend* or MsgReceive* that fails here, before Go
// (EFAULT): QNX clears the thread's timeout as the call returns.
static int efault(int *e)
{
	tt_clear(NULL);
	*e = EFAULT;
	return -1;
}

// tt_done ends every call but TimerTimeout: QNX clears the thread's
// timeout on return from any kernel call. The Go half has disarmed it
// when the call got there (MsgSend* and MsgReceive* clear tt_armed as
// they go in); this catches the calls that failed here, before Go.
static void tt_done(void)
{
	if (tt_armed)
		tt_clear(NULL);
}

// gsqnx_tt_done is tt_done for the other C files of the library (the
// pulse timers of qnx_timer.go), errno kept.
void gsqnx_tt_done(void)
{
	int e = errno;
	tt_done();
	errno = e;
}

__attribute__((constructor)) static void gsq_init(void)
{
	pthread_atfork(NULL, NULL, qnx_in_child);
	pthread_key_create(&tt_key, tt_clear);
}

// The exit handler, registered at the first call that makes a channel or
// a connection.
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static void at_exit(void)
{
	if (!qforked)
		gsq_shutdown();
}
static void reg_exit(void) { atexit(at_exit); }
static void need_exit(void) { pthread_once(&exit_once, reg_exit); }

// Each call is defined once, returning its result and the errno in *e;
// the plain and _r forms differ only in how they report it.
static inline int plain(int r, int e)
{
	if (e != 0) {
		errno = e;
		return -1;
	}
	return r;
}
static inline int twin(int r, int e) { return e != 0 ? -e : r; }

#define BOTH_DONE(name, params, args, done)                              \
	int name params {                                               \
		int e = 0, r = -1;                                      \
		if (qforked) {                                          \
			e = ENOSYS;                                     \
		} else {                                                \
			r = do_##name args;                             \
			done;                                           \
		}                                                       \
		return plain(r, e);                                     \
	}                                                               \
	int name##_r params {                                           \
		int e = 0, r = -1;                                      \
		if (qforked) {                                          \
			e = ENOSYS;                                     \
		} else {                                                \
			r = do_##name args;                             \
			done;                                           \
		}                                                       \
		return twin(r, e);                                      \
	}
#define BOTH(name, params, args) BOTH_DONE(name, params, args, tt_done())

static int do_ChannelCreate(unsigned flags, int *e)
{
	need_exit();
	return gsq_ChannelCreate(flags, e);
}
BOTH(ChannelCreate, (unsigned flags), (flags, &e))

static int do_ChannelDestroy(int chid, int *e) { return gsq_ChannelDestroy(chid, e); }
BOTH(ChannelDestroy, (int chid), (chid, &e))

static int do_ConnectAttach(uint32_t nd, pid_t pid, int chid, unsigned index, int flags, int *e)
{
	need_exit();
	return gsq_ConnectAttach(nd, pid, chid, index, flags, e);
}
BOTH(ConnectAttach, (uint32_t nd, pid_t pid, int chid, unsigned index, int flags),
     (nd, pid, chid, index, flags, &e))

static int do_ConnectDetach(int coid, int *e) { return gsq_ConnectDetach(coid, e); }
BOTH(ConnectDetach, (int coid), (coid, &e))

// one makes a one-part iov of a buffer and a size, false for a negative
// size (a fault: the size would be huge as a size_t).
static int one(struct iovec *v, const void *p, int n)
{
	if (n < 0)
		return 0;
	v->iov_base = (void *)p;
	v->iov_len = (size_t)n;
	return 1;
}

static int do_MsgSendv(int coid, const iov_t *siov, int sparts, const iov_t *riov, int rparts, int *e)
{
	tt_armed = 0;
	return gsq_MsgSendv(&gs_pace, coid, (struct iovec *)siov, sparts, (struct iovec *)riov, rparts, e);
}
static int do_MsgSend(int coid, const void *smsg, int sbytes, void *rmsg, int rbytes, int *e)
{
	struct iovec s, r;
	if (!one(&s, smsg, sbytes) || !one(&r, rmsg, rbytes)) {
		return efault(e);
	}
	tt_armed = 0;
	return gsq_MsgSendv(&gs_pace, coid, &s, 1, &r, 1, e);
}
static int do_MsgSendsv(int coid, const void *smsg, int sbytes, const iov_t *riov, int rparts, int *e)
{
	struct iovec s;
	if (!one(&s, smsg, sbytes)) {
		return efault(e);
	}
	tt_armed = 0;
	return gsq_MsgSendv(&gs_pace, coid, &s, 1, (struct iovec *)riov, rparts, e);
}
static int do_MsgSendvs(int coid, const iov_t *siov, int sparts, void *rmsg, int rbytes, int *e)
{
	struct iovec r;
	if (!one(&r, rmsg, rbytes)) {
		return efault(e);
	}
	tt_armed = 0;
	return gsq_MsgSendv(&gs_pace, coid, (struct iovec *)siov, sparts, &r, 1, e);
}
// The nc forms are the same calls: nothing here is a cancellation point.
#define do_MsgSendnc do_MsgSend
#define do_MsgSendvnc do_MsgSendv
#define do_MsgSendsvnc do_MsgSendsv
#define do_MsgSendvsnc do_MsgSendvs

#define SENDB (int coid, const void *smsg, int sbytes, void *rmsg, int rbytes), (coid, smsg, sbytes, rmsg, rbytes, &e)
#define SENDV (int coid, const iov_t *siov, int sparts, const iov_t *riov, int rparts), (coid, siov, sparts, riov, rparts, &e)
#define SENDSV (int coid, const void *smsg, int sbytes, const iov_t *riov, int rparts), (coid, smsg, sbytes, riov, rparts, &e)
#define SENDVS (int coid, const iov_t *siov, int sparts, void *rmsg, int rbytes), (coid, siov, sparts, rmsg, rbytes, &e)
#define EXPAND(m, x) m x
EXPAND(BOTH, (MsgSend, SENDB))
EXPAND(BOTH, (MsgSendnc, SENDB))
EXPAND(BOTH, (MsgSendv, SENDV))
EXPAND(BOTH, (MsgSendvnc, SENDV))
EXPAND(BOTH, (MsgSendsv, SENDSV))
EXPAND(BOTH, (MsgSendsvnc, SENDSV))
EXPAND(BOTH, (MsgSendvs, SENDVS))
EXPAND(BOTH, (MsgSendvsnc, SENDVS))

static int do_MsgSendPulse(int coid, int priority, int code, int value, int *e)
{
	return gsq_MsgSendPulse(&gs_pace, coid, priority, code, value, e);
}
BOTH(MsgSendPulse, (int coid, int priority, int code, int value), (coid, priority, code, value, &e))

static void fill_info(struct _msg_info *info, const int32_t *w)
{
	memset(info, 0, sizeof *info);
	info->nd = (uint32_t)w[0];
	info->srcnd = (uint32_t)w[1];
	info->pid = w[2];
	info->tid = w[3];
	info->chid = w[4];
	info->scoid = w[5];
	info->coid = w[6];
	info->msglen = w[7];
	info->srcmsglen = w[8];
	info->dstmsglen = w[9];
	info->priority = (int16_t)w[10];
	info->flags = (int16_t)w[11];
}

static int do_MsgReceivev(int chid, const iov_t *riov, int rparts, struct _msg_info *info, int *e)
{
	int32_t w[12];
	tt_armed = 0;
	int r = gsq_MsgReceivev(chid, (struct iovec *)riov, rparts, w, e);
	if (r > 0 && info != NULL)
		fill_info(info, w);
	return r;
}
static int do_MsgReceive(int chid, void *msg, int bytes, struct _msg_info *info, int *e)
{
	struct iovec v;
	if (!one(&v, msg, bytes)) {
		return efault(e);
	}
	return do_MsgReceivev(chid, &v, 1, info, e);
}
BOTH(MsgReceive, (int chid, void *msg, int bytes, struct _msg_info *info), (chid, msg, bytes, info, &e))
BOTH(MsgReceivev, (int chid, const iov_t *riov, int rparts, struct _msg_info *info), (chid, riov, rparts, info, &e))

// MsgReceivePulse returns only pulses, which leave info as it is.
static int do_MsgReceivePulsev(int chid, const iov_t *riov, int rparts, struct _msg_info *info, int *e)
{
	(void)info;
	tt_armed = 0;
	return gsq_MsgReceivePulsev(chid, (struct iovec *)riov, rparts, e);
}
static int do_MsgReceivePulse(int chid, void *pulse, int bytes, struct _msg_info *info, int *e)
{
	struct iovec v;
	if (!one(&v, pulse, bytes)) {
		return efault(e);
	}
	return do_MsgReceivePulsev(chid, &v, 1, info, e);
}
BOTH(MsgReceivePulse, (int chid, void *pulse, int bytes, struct _msg_info *info), (chid, pulse, bytes, info, &e))
BOTH(MsgReceivePulsev, (int chid, const iov_t *riov, int rparts, struct _msg_info *info), (chid, riov, rparts, info, &e))

static int do_MsgReplyv(int rcvid, int status, const iov_t *iov, int parts, int *e)
{
	return gsq_MsgReplyv(rcvid, status, (struct iovec *)iov, parts, e);
}
static int do_MsgReply(int rcvid, int status, const void *msg, int bytes, int *e)
{
	struct iovec v;
	// A negative size reaches Go as a fault of the replier's buffer.
	if (!one(&v, msg, bytes))
		return gsq_MsgReplyv(rcvid, status, (struct iovec *)&v, -1, e);
	return gsq_MsgReplyv(rcvid, status, &v, 1, e);
}
BOTH(MsgReply, (int rcvid, int status, const void *msg, int bytes), (rcvid, status, msg, bytes, &e))
BOTH(MsgReplyv, (int rcvid, int status, const iov_t *iov, int parts), (rcvid, status, iov, parts, &e))

static int do_MsgError(int rcvid, int err, int *e) { return gsq_MsgError(rcvid, err, e); }
BOTH(MsgError, (int rcvid, int err), (rcvid, err, &e))

static int do_MsgReadv(int rcvid, const iov_t *iov, int parts, int offset, int *e)
{
	return gsq_MsgReadv(rcvid, (struct iovec *)iov, parts, offset, e);
}
static int do_MsgRead(int rcvid, void *msg, int bytes, int offset, int *e)
{
	struct iovec v;
	if (!one(&v, msg, bytes)) {
		*e = ESRVRFAULT;
		return -1;
	}
	return gsq_MsgReadv(rcvid, &v, 1, offset, e);
}
BOTH(MsgRead, (int rcvid, void *msg, int bytes, int offset), (rcvid, msg, bytes, offset, &e))
BOTH(MsgReadv, (int rcvid, const iov_t *iov, int parts, int offset), (rcvid, iov, parts, offset, &e))

static int do_MsgWritev(int rcvid, const iov_t *iov, int parts, int offset, int *e)
{
	return gsq_MsgWritev(rcvid, (struct iovec *)iov, parts, offset, e);
}
static int do_MsgWrite(int rcvid, const void *msg, int bytes, int offset, int *e)
{
	struct iovec v;
	if (!one(&v, msg, bytes)) {
		*e = ESRVRFAULT;
		return -1;
	}
	return gsq_MsgWritev(rcvid, &v, 1, offset, e);
}
BOTH(MsgWrite, (int rcvid, const void *msg, int bytes, int offset), (rcvid, msg, bytes, offset, &e))
BOTH(MsgWritev, (int rcvid, const iov_t *iov, int parts, int offset), (rcvid, iov, parts, offset, &e))

static int do_MsgInfo(int rcvid, struct _msg_info *info, int *e)
{
	int32_t w[12];
	if (info == NULL) {
		*e = EFAULT;
		return -1;
	}
	int r = gsq_MsgInfo(rcvid, w, e);
	if (r == 0)
		fill_info(info, w);
	return r;
}
BOTH(MsgInfo, (int rcvid, struct _msg_info *info), (rcvid, info, &e))

static int do_MsgDeliverEvent(int rcvid, const struct sigevent *ev, int *e)
{
	if (ev == NULL) {
		*e = EFAULT;
		return -1;
	}
	// Go's numbering of the kinds: only SIGEV_PULSE (QNX's 4, which
	// this header moves off Linux's SIGEV_THREAD_ID) is delivered.
	int kind = ev->sigev_notify == SIGEV_PULSE ? GSQ_SIGEV_PULSE : -1;
	return gsq_MsgDeliverEvent(rcvid, kind, ev->sigev_coid, ev->sigev_priority,
	                           ev->sigev_code, ev->sigev_value.sival_int, e);
}
BOTH(MsgDeliverEvent, (int rcvid, const struct sigevent *event), (rcvid, event, &e))

static int do_TimerTimeout(clockid_t id, int flags, const struct sigevent *notify,
                           const uint64_t *ntime, uint64_t *otime, int *e)
{
	unsigned f = (unsigned)flags;
	(void)otime; // written only for _NTO_TIMEOUT_NANOSLEEP, which is not here
	if (f & TIMER_ABSTIME)
		f = (f & ~(unsigned)TIMER_ABSTIME) | GSQ_ABSTIME;
	int kind = -1;
	if (notify != NULL) {
		kind = notify->sigev_notify;
		// Go's numbering of the kinds it accepts: only SIGEV_UNBLOCK.
		if (kind != SIGEV_UNBLOCK) {
			*e = EINVAL;
			return -1;
		}
	}
	int r = gsq_TimerTimeout((int)id, (int)f, kind, (uint64_t *)ntime, e);
	if (*e == 0 && (f & ~GSQ_ABSTIME) != 0 && !tt_armed) {
		tt_armed = 1;
		pthread_setspecific(tt_key, &tt_armed);
	}
	return r;
}
BOTH_DONE(TimerTimeout, (clockid_t id, int flags, const struct sigevent *notify, const uint64_t *ntime, uint64_t *otime),
          (id, flags, notify, ntime, otime, &e), (void)0)

int timer_timeout(clockid_t id, int flags, const struct sigevent *notify,
                  const struct timespec *ntime, struct timespec *otime)
{
	uint64_t ns;
	(void)otime;
	if (ntime == NULL)
		return TimerTimeout(id, flags, notify, NULL, NULL);
	if (ntime->tv_sec < 0 || ntime->tv_nsec < 0 || ntime->tv_nsec >= 1000000000L) {
		errno = EINVAL;
		return -1;
	}
	ns = (uint64_t)ntime->tv_sec * 1000000000u + (uint64_t)ntime->tv_nsec;
	return TimerTimeout(id, flags, notify, &ns, NULL);
}

// name_attach and name_detach are these symbols: C SIMPL's functions of
// the same names are in this library too (<sys/dispatch.h> maps them).
name_attach_t *gsqnx_name_attach(dispatch_t *dpp, const char *path, unsigned flags)
{
	int e = 0;
	if (qforked) {
		errno = ENOSYS;
		return NULL;
	}
	if (dpp != NULL) {
		tt_done();
		errno = ENOTSUP; // no dispatch layer here: name_attach(NULL, ...) only
		return NULL;
	}
	need_exit();
	name_attach_t *a = calloc(1, sizeof *a);
	if (a == NULL) {
		tt_done();
		errno = ENOMEM;
		return NULL;
	}
	int chid = gsq_name_attach((char *)path, flags, &e);
	tt_done();
	if (e != 0) {
		free(a);
		errno = e;
		return NULL;
	}
	a->chid = chid;
	return a;
}

int gsqnx_name_detach(name_attach_t *attach, unsigned flags)
{
	int e = 0;
	if (qforked) {
		errno = ENOSYS;
		return -1;
	}
	if (attach == NULL) {
		tt_done();
		errno = EINVAL;
		return -1;
	}
	gsq_name_detach(attach->chid, flags, &e);
	tt_done();
	if (e != 0) {
		errno = e;
		return -1;
	}
	free(attach);
	return 0;
}

int name_open(const char *name, int flags)
{
	int e = 0;
	if (qforked) {
		errno = ENOSYS;
		return -1;
	}
	need_exit();
	int coid = gsq_name_open((char *)name, flags, &e);
	tt_done();
	return plain(coid, e);
}

int name_close(int coid) { return ConnectDetach(coid); }
*/
import "C"
