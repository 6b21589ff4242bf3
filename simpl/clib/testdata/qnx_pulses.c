/*
 * qnx_pulses: a QNX Neutrino server whose main thread is a pulse-only
 * event loop (MsgReceivePulse) while a second thread serves the
 * messages (MsgReceive) of the same channel, for the tests.
 *
 * First, alone on a channel of its own, it checks MsgReceivePulse's
 * errors and timeouts ("ok WHAT" or "FAIL ..." lines, then "checks
 * FAILURES"); then it creates a _NTO_CHF_DISCONNECT channel, starts the
 * serving thread and prints "ready PID CHID".
 *
 * The event loop prints "pulse CODE VALUE" for each pulse and
 * "disconnect R" (ConnectDetach's result) for a DISCONNECT pulse; it
 * never gets a message, and prints a FAIL line if it does. The serving
 * thread answers the messages qnx_client sends:
 *
 *   status  reply status N (the int after the header)
 *   hold    print "holding", wait (10 s at most) until the event loop
 *           has had two more pulses, then reply status 0: pulses that
 *           arrive meanwhile can only go to the event loop
 *   quit    reply, then exit (the exit handler removes the channel)
 *   other   Getting Started's first server: "msg LEN TEXT", reply
 *
 * A pulse the serving thread gets (QNX gives a pulse to whichever
 * receiving thread is first: here, one that comes while the event loop
 * is between two calls) is printed the same way with " (MsgReceive)"
 * added.
 */
#include <pthread.h>
#include <stdarg.h>
#include <sys/neutrino.h>
#include <time.h>
#include <unistd.h>

#include "qnx_common.h"

static int chid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int loop_pulses; /* pulses the event loop has had */
static volatile int quitting;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&mu);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&mu);
}

/* pulse handles a pulse either thread got; by is "" or " (MsgReceive)". */
static void pulse(const struct _pulse *p, const char *by)
{
	if (p->type != 0 || p->subtype != 0)
		say("FAIL pulse type %d subtype %d\n", p->type, p->subtype);
	if (p->code == _PULSE_CODE_DISCONNECT)
		say("disconnect %d%s\n", ConnectDetach(p->scoid), by);
	else
		say("pulse %d %d%s\n", p->code, p->value.sival_int, by);
}

/* hold waits until the event loop has had two more pulses than at the
 * start, 10 s at most. */
static int hold(void)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&mu);
	int want = loop_pulses + 2, r = 0;
	while (loop_pulses < want && r == 0)
		r = pthread_cond_timedwait(&cv, &mu, &until);
	pthread_mutex_unlock(&mu);
	return r;
}

static void *serve(void *arg)
{
	(void)arg;
	union {
		struct _pulse pulse;
		char text[512];
	} msg;
	struct _msg_info info;
	for (;;) {
		int rcvid = MsgReceive(chid, &msg, sizeof msg, &info);
		if (rcvid == -1) {
			if (quitting)
				for (;;)
					pause(); /* the channel went at exit: let exit finish */
			say("receive %s\n", errname(errno));
			exit(1);
		}
		if (rcvid == 0) {
			pulse(&msg.pulse, " (MsgReceive)");
			continue;
		}
		const char *cmd = info.msglen >= CMDLEN && memchr(msg.text, 0, CMDLEN) != NULL ? msg.text : "";
		int arg = 0;
		if (info.msglen >= CMDLEN + 4)
			memcpy(&arg, msg.text + CMDLEN, 4);
		if (strcmp(cmd, "status") == 0) {
			MsgReply(rcvid, arg, NULL, 0);
		} else if (strcmp(cmd, "hold") == 0) {
			say("holding\n");
			if (hold() != 0)
				say("FAIL hold: no two pulses within 10 s\n");
			MsgReply(rcvid, 0, NULL, 0);
		} else if (strcmp(cmd, "quit") == 0) {
			quitting = 1;
			MsgReply(rcvid, EOK, NULL, 0);
			say("quit\n");
			exit(0);
		} else {
			msg.text[sizeof msg.text - 1] = 0;
			say("msg %d %s\n", info.msglen, msg.text);
			memset(msg.text, 0, sizeof msg.text);
			strcpy(msg.text, "This is the reply");
			MsgReply(rcvid, EOK, msg.text, sizeof msg.text);
		}
	}
	return NULL;
}

/* armed arms a RECEIVE timeout of ns nanoseconds (NULL: at once). */
static void armed(const uint64_t *ns)
{
	struct sigevent ev;
	SIGEV_UNBLOCK_INIT(&ev);
	TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_RECEIVE, &ev, ns, NULL);
}

/* checks: MsgReceivePulse's errors and timeouts, alone on channel chid. */
static void checks(int chid)
{
	struct _pulse p;
	char small[4];
	iov_t iov[2];
	check("MsgReceivePulse unknown chid", MsgReceivePulse(chid + 1000, &p, sizeof p, NULL), -1, ESRCH);
	check("MsgReceivePulse_r unknown chid", MsgReceivePulse_r(chid + 1000, &p, sizeof p, NULL), -ESRCH, 0);
	check("MsgReceivePulse NULL", MsgReceivePulse(chid, NULL, 100, NULL), -1, EFAULT);
	check("MsgReceivePulse negative size", MsgReceivePulse(chid, &p, -1, NULL), -1, EFAULT);
	check("MsgReceivePulsev NULL iov", MsgReceivePulsev(chid, NULL, 1, NULL), -1, EFAULT);
	check("MsgReceivePulsev negative parts", MsgReceivePulsev(chid, iov, -1, NULL), -1, EFAULT);
	SETIOV(&iov[0], NULL, 8);
	SETIOV(&iov[1], &p, sizeof p);
	check("MsgReceivePulsev NULL part", MsgReceivePulsev(chid, iov, 2, NULL), -1, EFAULT);

	armed(NULL);
	check("MsgReceivePulse immediate timeout", MsgReceivePulse(chid, &p, sizeof p, NULL), -1, ETIMEDOUT);
	uint64_t ns = 20 * 1000000u;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	armed(&ns);
	check("MsgReceivePulse 20 ms timeout", MsgReceivePulse(chid, &p, sizeof p, NULL), -1, ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	check("MsgReceivePulse waited 20 ms", ms >= 20, 1, 0);

	int self = ConnectAttach(0, 0, chid, _NTO_SIDE_CHANNEL, 0);
	check("MsgSendPulse to self", MsgSendPulse(self, -1, 5, 55), 0, 0);
	check("MsgReceivePulse short buffer", MsgReceivePulse(chid, small, sizeof small, NULL), -1, EFAULT);
	armed(NULL);
	check("MsgReceivePulse after the lost pulse", MsgReceivePulse(chid, &p, sizeof p, NULL), -1, ETIMEDOUT);

	unsigned char head[8], whole[sizeof p];
	struct _pulse rest;
	struct _msg_info info;
	memset(&info, 0x5a, sizeof info);
	check("MsgSendPulse to self again", MsgSendPulse(self, -1, 6, 66), 0, 0);
	SETIOV(&iov[0], head, sizeof head);
	SETIOV(&iov[1], &rest, sizeof rest);
	check("MsgReceivePulsev two parts", MsgReceivePulsev(chid, iov, 2, &info), 0, 0);
	memcpy(whole, head, sizeof head);
	memcpy(whole + sizeof head, &rest, sizeof whole - sizeof head);
	memcpy(&p, whole, sizeof p);
	check("MsgReceivePulsev code", p.code, 6, 0);
	check("MsgReceivePulsev value", p.value.sival_int, 66, 0);
	check("MsgReceivePulsev scoid", p.scoid != 0, 1, 0);
	check("MsgReceivePulsev leaves info", info.chid, 0x5a5a5a5a, 0);
	check("ConnectDetach self", ConnectDetach(self), 0, 0);
	check("ChannelDestroy", ChannelDestroy(chid), 0, 0);
	check("MsgReceivePulse destroyed channel", MsgReceivePulse(chid, &p, sizeof p, NULL), -1, ESRCH);
	say("checks %d\n", failures);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int own = ChannelCreate(0);
	if (own == -1) {
		printf("ChannelCreate %s\n", errname(errno));
		return 1;
	}
	checks(own);
	chid = ChannelCreate(_NTO_CHF_DISCONNECT);
	if (chid == -1) {
		printf("ChannelCreate %s\n", errname(errno));
		return 1;
	}
	pthread_t th;
	pthread_create(&th, NULL, serve, NULL);
	say("ready %d %d\n", getpid(), chid);
	for (;;) {
		struct _pulse p;
		int r = MsgReceivePulse(chid, &p, sizeof p, NULL);
		if (r == -1) {
			if (quitting)
				for (;;)
					pause();
			say("MsgReceivePulse %s\n", errname(errno));
			return 1;
		}
		if (r != 0) {
			say("FAIL MsgReceivePulse returned %d\n", r);
			continue;
		}
		pulse(&p, "");
		pthread_mutex_lock(&mu);
		loop_pulses++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&mu);
	}
}
