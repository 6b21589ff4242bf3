/*
 * qnx_fixes: checks of QNX Neutrino behaviours that one process can see
 * by itself (a server thread and a client thread on one channel), for
 * the tests. Each argument names a group of checks; each check prints
 * "ok WHAT" or a FAIL line, and the program ends with "checks FAILURES"
 * (exit status 1 when there were any).
 *
 *   sigev     SIGEV_PULSE is not Linux's SIGEV_THREAD_ID, and a Linux
 *             per-thread signal timer (SIGEV_THREAD_ID, through the
 *             header's timer_create) still delivers its signal
 *   timeout   a TimerTimeout is cleared by any other call, also one
 *             that fails before it gets anywhere
 *   msgerror  MsgError's -1 (the unblock reason) and other values
 *   receivev  MsgReceivev's msglen with parts smaller than a pulse
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/neutrino.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "qnx_common.h"

static void sigev(void)
{
	check("SIGEV_PULSE differs from SIGEV_THREAD_ID", SIGEV_PULSE != SIGEV_THREAD_ID, 1, 0);
	check("SIGEV_GET_TYPE of a pulse event", SIGEV_GET_TYPE(&(struct sigevent){.sigev_notify = SIGEV_PULSE}),
	      SIGEV_PULSE, 0);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct sigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGUSR1;
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	timer_t t;
	check("timer_create SIGEV_THREAD_ID", timer_create(CLOCK_MONOTONIC, &ev, &t), 0, 0);
	struct itimerspec its = {{0, 0}, {0, 1000000}};
	check("timer_settime SIGEV_THREAD_ID", timer_settime(t, 0, &its, NULL), 0, 0);
	/* A generous bound: the signal is due in 1 ms. */
	struct timespec bound = {10, 0};
	check("the thread's signal arrives", sigtimedwait(&set, NULL, &bound), SIGUSR1, 0);
	check("timer_delete SIGEV_THREAD_ID", timer_delete(t), 0, 0);
}

/* rearm arms a RECEIVE timeout that has expired already and returns the
 * flags armed before (TimerTimeout's result). */
static int rearm(void)
{
	return TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_RECEIVE, NULL, NULL, NULL);
}

static void timeout(void)
{
	int chid = ChannelCreate(0);
	int coid = ConnectAttach(0, 0, chid, _NTO_SIDE_CHANNEL, 0);
	char buf[64];
	rearm();
	check("TimerTimeout returns the flags armed before", rearm(), _NTO_TIMEOUT_RECEIVE, 0);
	/* Calls that fail in C, before the library's Go half. */
	check("MsgInfo with a NULL info", MsgInfo(1, NULL), -1, EFAULT);
	check("  clears the timeout", rearm(), 0, 0);
	check("MsgRead with a negative size", MsgRead(1, buf, -1, 0), -1, ESRVRFAULT);
	check("  clears the timeout", rearm(), 0, 0);
	check("MsgDeliverEvent with a NULL event", MsgDeliverEvent(1, NULL), -1, EFAULT);
	check("  clears the timeout", rearm(), 0, 0);
	/* Calls that get to Go, failing or not. */
	check("MsgSendPulse on a bad coid", MsgSendPulse(12345, -1, 1, 1), -1, EBADF);
	check("  clears the timeout", rearm(), 0, 0);
	check("MsgSendPulse", MsgSendPulse(coid, -1, 1, 1), 0, 0);
	check("  clears the timeout", rearm(), 0, 0);
	check("MsgReply to a bad rcvid", MsgReply(12345, 0, NULL, 0), -1, ESRCH);
	check("  clears the timeout", rearm(), 0, 0);
	TimerTimeout(CLOCK_MONOTONIC, 0, NULL, NULL, NULL);
	check("MsgReceive of the pulse sent above", MsgReceive(chid, buf, sizeof buf, NULL), 0, 0);
	rearm();
	check("and is ETIMEDOUT with nothing queued", MsgReceive(chid, buf, sizeof buf, NULL), -1, ETIMEDOUT);
	check("  which cleared it", rearm(), 0, 0);
	check("ConnectDetach", ConnectDetach(coid), 0, 0);
	check("  clears the timeout", rearm(), 0, 0);
	check("ChannelDestroy", ChannelDestroy(chid), 0, 0);
	check("  clears the timeout", rearm(), 0, 0);
	TimerTimeout(CLOCK_MONOTONIC, 0, NULL, NULL, NULL);
}

static int chid_u;

/* unblocked is the client of msgerror's last check: a REPLY-state
 * timeout on an UNBLOCK channel, which the server ends with
 * MsgError(rcvid, -1). */
static void *unblocked(void *arg)
{
	int coid = *(int *)arg;
	uint64_t ns = 1000000;
	struct sigevent ev;
	SIGEV_UNBLOCK_INIT(&ev);
	TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_REPLY, &ev, &ns, NULL);
	return (void *)(long)MsgSend_r(coid, "u", 2, NULL, 0);
}

static void *plain_client(void *arg)
{
	int coid = *(int *)arg;
	return (void *)(long)MsgSend_r(coid, "m", 2, NULL, 0);
}

static void msgerror(void)
{
	chid_u = ChannelCreate(_NTO_CHF_UNBLOCK);
	int coid = ConnectAttach(0, 0, chid_u, _NTO_SIDE_CHANNEL, 0);
	char buf[64];
	pthread_t th;
	void *res;

	pthread_create(&th, NULL, plain_client, &coid);
	int rcvid = MsgReceive(chid_u, buf, sizeof buf, NULL);
	check("MsgError -1 with no unblock request", MsgError(rcvid, -1), -1, EINVAL);
	check("MsgError -5", MsgError(rcvid, -5), -1, EINVAL);
	check("MsgError_r -1", MsgError_r(rcvid, -1), -EINVAL, 0);
	check("MsgError ENOSYS after the refusals", MsgError(rcvid, ENOSYS), 0, 0);
	pthread_join(th, &res);
	check("the client's MsgSend_r", (long)res, -ENOSYS, 0);

	pthread_create(&th, NULL, unblocked, &coid);
	rcvid = MsgReceive(chid_u, buf, sizeof buf, NULL);
	check("the timed client's message", rcvid > 0, 1, 0);
	struct _pulse *p = (struct _pulse *)buf;
	check("then its UNBLOCK pulse", MsgReceive(chid_u, buf, sizeof buf, NULL) == 0 && p->code == _PULSE_CODE_UNBLOCK &&
	                                    p->value.sival_int == rcvid, 1, 0);
	check("MsgError -1 after the unblock request", MsgError(rcvid, -1), 0, 0);
	pthread_join(th, &res);
	check("the client's MsgSend_r: its own reason", (long)res, -ETIMEDOUT, 0);
	ConnectDetach(coid);
	ChannelDestroy(chid_u);
}

static void *sender10(void *arg)
{
	int coid = *(int *)arg;
	return (void *)(long)MsgSend_r(coid, "0123456789", 10, NULL, 0);
}

static void receivev(void)
{
	int chid = ChannelCreate(0);
	int coid = ConnectAttach(0, 0, chid, _NTO_SIDE_CHANNEL, 0);
	pthread_t th;
	pthread_create(&th, NULL, sender10, &coid);
	char a[2], b[2];
	iov_t iov[2];
	SETIOV(&iov[0], a, 2);
	SETIOV(&iov[1], b, 2);
	struct _msg_info info, again;
	int rcvid = MsgReceivev(chid, iov, 2, &info);
	check("MsgReceivev of 10 bytes into 2+2", rcvid > 0 && memcmp(a, "01", 2) == 0 && memcmp(b, "23", 2) == 0, 1, 0);
	check("  msglen: the bytes received", info.msglen, 4, 0);
	check("  srcmsglen: the bytes sent", info.srcmsglen, 10, 0);
	check("  MsgInfo", MsgInfo(rcvid, &again), 0, 0);
	check("  MsgInfo's msglen", again.msglen, 4, 0);
	MsgReply(rcvid, 0, NULL, 0);
	pthread_join(th, NULL);
	ConnectDetach(coid);
	ChannelDestroy(chid);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "sigev") == 0)
			sigev();
		else if (strcmp(argv[i], "timeout") == 0)
			timeout();
		else if (strcmp(argv[i], "msgerror") == 0)
			msgerror();
		else if (strcmp(argv[i], "receivev") == 0)
			receivev();
		else {
			printf("FAIL unknown group %s\n", argv[i]);
			failures++;
		}
	}
	printf("checks %d\n", failures);
	return failures != 0;
}
