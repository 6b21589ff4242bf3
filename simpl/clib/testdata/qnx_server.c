/*
 * qnx_server: a QNX Neutrino server, for the tests. It creates a channel
 * (-u: _NTO_CHF_UNBLOCK, -d: _NTO_CHF_DISCONNECT), prints
 * "ready PID CHID", and receives with -t N threads (default 1). Each
 * message starts with a command word (qnx_common.h):
 *
 *   status  reply status N (the int after the header), no data
 *   err     MsgError with errno N
 *   big     read the whole message with MsgRead in pieces, write a
 *           reply of dstmsglen bytes with MsgWrite in pieces, then
 *           MsgReply with no data and status = bytes written
 *   slow    hold the message unanswered; answered at its UNBLOCK pulse
 *           with MsgError(ETIMEDOUT), after MsgInfo shows the request
 *   hold    wait (10 s at most) until every thread holds one, then reply
 *           with the thread's number: proves N threads receive at once
 *   event   reply at once, then MsgDeliverEvent the client's sigevent
 *   bad     bad input on the server's side, then answer with a faulty
 *           reply buffer (the client gets ESRVRFAULT)
 *   iov     gather and scatter: MsgReadv the payload into two parts,
 *           MsgWritev two parts at offset 10 of the reply, then
 *           MsgReplyv two parts at offset 0 with status 77
 *   quit    reply, then exit (the exit handler removes the channel)
 *
 * Any other message is Getting Started's first server's: print its
 * length and text, reply with a 512-byte buffer holding a short string,
 * status EOK.
 *
 * Pulses print "pulse CODE VALUE"; a DISCONNECT pulse prints
 * "disconnect" and releases the scoid.
 */
#include <pthread.h>
#include <stdarg.h>
#include <sys/neutrino.h>
#include <unistd.h>

#include "qnx_common.h"

static int chid, nthreads = 1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int holding;
static int held = -1; /* the "slow" message's rcvid */
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

static void big(int rcvid, struct _msg_info *info)
{
	static __thread unsigned char piece[100000];
	uint32_t h = QFNV0;
	long off = CMDLEN, total = 0;
	for (;;) {
		int n = MsgRead(rcvid, piece, sizeof piece, off);
		if (n < 0) {
			say("big read %s\n", errname(errno));
			return;
		}
		if (n == 0)
			break;
		h = qfnv(piece, n, h);
		off += n;
		total += n;
	}
	say("big %d %d %d %08x\n", info->msglen, info->srcmsglen, info->dstmsglen, h);
	long w = 0;
	while (w < info->dstmsglen) {
		int k = 65536;
		for (int i = 0; i < k; i++)
			piece[i] = qpat(w + i);
		int n = MsgWrite(rcvid, piece, k, w);
		if (n <= 0) {
			say("big write %d %s\n", n, errname(errno));
			return;
		}
		w += n;
	}
	if (MsgReply(rcvid, (int)w, NULL, 0) == -1)
		say("big reply %s\n", errname(errno));
	(void)total;
}

static void bad(int rcvid)
{
	struct _msg_info info;
	struct sigevent ev;
	char b[16];
	iov_t iov[2];
	SETIOV(&iov[0], NULL, 10);
	SETIOV(&iov[1], b, sizeof b);
	SIGEV_PULSE_INIT(&ev, 0, 10, 1, 0);
	check("MsgRead NULL", MsgRead(rcvid, NULL, 10, 0), -1, ESRVRFAULT);
	check("MsgRead negative size", MsgRead(rcvid, b, -1, 0), -1, ESRVRFAULT);
	check("MsgRead negative offset", MsgRead(rcvid, b, sizeof b, -1), -1, EINVAL);
	check("MsgRead past end", MsgRead(rcvid, b, sizeof b, 1 << 20), 0, 0);
	check("MsgReadv NULL part", MsgReadv(rcvid, iov, 2, 0), -1, ESRVRFAULT);
	check("MsgWrite NULL", MsgWrite(rcvid, NULL, 10, 0), -1, ESRVRFAULT);
	check("MsgInfo NULL", MsgInfo(rcvid, NULL), -1, EFAULT);
	check("MsgRead unknown rcvid", MsgRead(rcvid + 1000, b, sizeof b, 0), -1, ESRCH);
	check("MsgReply unknown rcvid", MsgReply(77777, 0, b, sizeof b), -1, ESRCH);
	check("MsgReply negative rcvid", MsgReply(-5, 0, b, sizeof b), -1, ESRCH);
	check("MsgError unknown rcvid", MsgError(77777, EINVAL), -1, ESRCH);
	check("MsgInfo unknown rcvid", MsgInfo(77777, &info), -1, ESRCH);
	check("MsgDeliverEvent NULL", MsgDeliverEvent(rcvid, NULL), -1, EFAULT);
	check("MsgDeliverEvent not own coid", MsgDeliverEvent(rcvid, &ev), -1, EINVAL);
	check("MsgReceive unknown chid", MsgReceive(chid + 1000, b, sizeof b, NULL), -1, ESRCH);
	check("MsgReceive NULL", MsgReceive(chid, NULL, 100, NULL), -1, EFAULT);
	check("MsgReceive negative size", MsgReceive(chid, b, -1, NULL), -1, EFAULT);
	check("ChannelDestroy unknown", ChannelDestroy(chid + 1000), -1, EINVAL);
	check("ChannelCreate unsupported flag", ChannelCreate(_NTO_CHF_THREAD_DEATH), -1, ENOTSUP);
	check("ConnectDetach unknown", ConnectDetach(4242), -1, EINVAL);
	check("MsgReply_r", MsgReply_r(77777, 0, NULL, 0), -ESRCH, 0);
	/* The reply buffer faults: the client is released with ESRVRFAULT. */
	check("MsgReply negative size", MsgReply(rcvid, 0, b, -1), -1, ESRVRFAULT);
	check("MsgReply after fault", MsgReply(rcvid, 0, NULL, 0), -1, ESRCH);
	say("bad %d\n", failures);
}

static void *serve(void *arg)
{
	int me = (int)(long)arg;
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
			struct _pulse *p = &msg.pulse;
			switch (p->code) {
			case _PULSE_CODE_DISCONNECT:
				say("disconnect %d\n", ConnectDetach(p->scoid));
				break;
			case _PULSE_CODE_UNBLOCK: {
				struct _msg_info mi;
				pthread_mutex_lock(&mu);
				int h = held;
				held = -1;
				pthread_mutex_unlock(&mu);
				if (p->value.sival_int != h) {
					say("unblock for %d, held %d\n", p->value.sival_int, h);
					break;
				}
				if (MsgInfo(h, &mi) == -1)
					say("unblock info %s\n", errname(errno));
				else
					say("unblock flags 0x%x\n", mi.flags & _NTO_MI_UNBLOCK_REQ);
				say("unblocked %d\n", MsgError(h, ETIMEDOUT));
				break;
			}
			default:
				say("pulse %d %d\n", p->code, p->value.sival_int);
			}
			continue;
		}
		/* A command: a NUL-terminated word in the first CMDLEN bytes. */
		const char *cmd = info.msglen >= CMDLEN && memchr(msg.text, 0, CMDLEN) != NULL ? msg.text : "";
		int arg = 0;
		if (info.msglen >= CMDLEN + 4)
			memcpy(&arg, msg.text + CMDLEN, 4);
		if (strcmp(cmd, "status") == 0) {
			MsgReply(rcvid, arg, NULL, 0);
		} else if (strcmp(cmd, "err") == 0) {
			MsgError(rcvid, arg);
		} else if (strcmp(cmd, "big") == 0) {
			big(rcvid, &info);
		} else if (strcmp(cmd, "slow") == 0) {
			pthread_mutex_lock(&mu);
			held = rcvid;
			pthread_mutex_unlock(&mu);
			say("held\n");
		} else if (strcmp(cmd, "hold") == 0) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += 10;
			pthread_mutex_lock(&mu);
			holding++;
			pthread_cond_broadcast(&cv);
			while (holding < nthreads)
				if (pthread_cond_timedwait(&cv, &mu, &until) != 0)
					break;
			int all = holding >= nthreads;
			pthread_mutex_unlock(&mu);
			if (all)
				MsgReply(rcvid, me, NULL, 0);
			else
				MsgError(rcvid, ETIMEDOUT);
		} else if (strcmp(cmd, "event") == 0) {
			struct sigevent ev;
			memcpy(&ev, msg.text + CMDLEN, sizeof ev);
			MsgReply(rcvid, EOK, NULL, 0);
			say("delivered %d\n", MsgDeliverEvent(rcvid, &ev));
		} else if (strcmp(cmd, "iov") == 0) {
			char a[2], b[10];
			iov_t in[2], out[2];
			SETIOV(&in[0], a, sizeof a);
			SETIOV(&in[1], b, sizeof b);
			int n = MsgReadv(rcvid, in, 2, CMDLEN);
			say("iov read %d %.2s %.*s\n", n, a, n > 2 ? n - 2 : 0, b);
			SETIOV(&out[0], "XY", 2);
			SETIOV(&out[1], "Z", 1);
			int w = MsgWritev(rcvid, out, 2, 10);
			SETIOV(&out[0], "0123", 4);
			SETIOV(&out[1], "456", 3);
			int r = MsgReplyv(rcvid, 77, out, 2);
			say("iov wrote %d replied %d\n", w, r);
		} else if (strcmp(cmd, "bad") == 0) {
			bad(rcvid);
		} else if (strcmp(cmd, "quit") == 0) {
			quitting = 1;
			MsgReply(rcvid, EOK, NULL, 0);
			say("quit\n");
			exit(0);
		} else {
			/* Getting Started's first server: any other message is text. */
			msg.text[sizeof msg.text - 1] = 0;
			say("msg %d %s\n", info.msglen, msg.text);
			memset(msg.text, 0, sizeof msg.text);
			strcpy(msg.text, "This is the reply");
			MsgReply(rcvid, EOK, msg.text, sizeof msg.text);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned flags = 0;
	int c;
	while ((c = getopt(argc, argv, "udt:")) != -1) {
		switch (c) {
		case 'u': flags |= _NTO_CHF_UNBLOCK; break;
		case 'd': flags |= _NTO_CHF_DISCONNECT; break;
		case 't': nthreads = atoi(optarg); break;
		default: return 2;
		}
	}
	chid = ChannelCreate(flags);
	if (chid == -1) {
		printf("ChannelCreate %s\n", errname(errno));
		return 1;
	}
	say("ready %d %d\n", getpid(), chid);
	pthread_t th[64];
	for (int i = 1; i < nthreads && i < 64; i++)
		pthread_create(&th[i], NULL, serve, (void *)(long)i);
	serve((void *)0L);
	return 0;
}
