/*
 * receiver: a C SIMPL-style receiver, written for gosimpl's drop-in
 * library tests. It uses only C SIMPL's API and compiles unchanged
 * against it.
 *
 *   receiver -n NAME [-t COUNT] [-z] [-h] [-S]
 *
 * Answers COUNT (0: for ever) messages by the rule (common.h). For each
 * it prints "msg WHOM PID NBYTES YBYTES SHMSIZE FNV1A32", read from the
 * sender handle as the FCMSG_REC it points at (and checked against
 * simplSetSenderParms and simplReplySize); for a proxy "proxy N".
 * Replies print "reply N", "replyerror", or "reply err TEXT". -z receives
 * with a NULL buffer and works in place, as fclogger does: it reads the
 * message at &rec->data, NUL-terminates it at data[nbytes], and replies
 * with Reply(sender, NULL, n) over it. -h holds each message until a
 * line (or the end) on stdin before answering. -S waits in select() on
 * whatsMyRecvfd() before each Receive (printing "select timeout" after
 * 10 s without). Its exit function prints "exit function".
 */
#include <sys/select.h>
#include "simpl.h"
#include "common.h"

static void bye(void) { printf("exit function\n"); fflush(stdout); }

int main(int argc, char **argv)
{
	char *me = NULL;
	long count = 0;
	int inplace = 0, hold = 0, sel = 0, opt;
	static unsigned char in[65536], out[65536 + TAIL];

	while ((opt = getopt(argc, argv, "n:t:zhS")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 't': count = atol(optarg); break;
		case 'z': inplace = 1; break;
		case 'h': hold = 1; break;
		case 'S': sel = 1; break;
		default:
			fprintf(stderr, "usage: receiver -n NAME [-t COUNT] [-z] [-h] [-S]\n");
			return 2;
		}
	}
	if (me == NULL) {
		fprintf(stderr, "receiver: -n is required\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (name_attach(me, bye) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	printf("ready\n");
	for (long k = 0; count == 0 || k < count; k++) {
		char *sender;
		if (sel) {
			int fd = whatsMyRecvfd();
			fd_set rd;
			struct timeval tv = {10, 0};
			FD_ZERO(&rd);
			FD_SET(fd, &rd);
			if (select(fd + 1, &rd, NULL, NULL, &tv) != 1) {
				printf("select timeout\n");
				continue;
			}
		}
		int n = inplace ? Receive(&sender, NULL, 0) : Receive(&sender, in, sizeof in);
		if (n == -1) {
			printf("receive err %s\n", whatsMyError());
			continue;
		}
		if (n < -1) {
			printf("proxy %d\n", returnProxy(n));
			continue;
		}
		FCMSG_REC *rec = (FCMSG_REC *)sender;
		unsigned char *data = inplace ? (unsigned char *)&rec->data : in;
		SIMPL_REC who;
		simplSetSenderParms(sender, &who);
		if (strcmp(who.whom, rec->whom) != 0 || who.pid != rec->pid || rec->nbytes != n ||
		    simplReplySize(sender) != rec->ybytes ||
		    (unsigned char *)whatsThisShmPtr(sender) != (unsigned char *)&rec->data) {
			printf("bad handle: %s %d %d %d\n", who.whom, (int)who.pid, rec->nbytes, rec->ybytes);
			return 1;
		}
		if (inplace)
			(&rec->data)[rec->nbytes] = 0; /* as fclogger: the spare byte */
		printf("msg %s %d %d %d %d %08x\n", rec->whom, (int)rec->pid, rec->nbytes, rec->ybytes,
		       rec->shmsize, fnv1a(data, n));
		if (hold)
			wait_stdin();
		if (n == 1 && data[0] == 'X') {
			if (ReplyError(sender) == -1)
				printf("reply err %s\n", whatsMyError());
			else
				printf("replyerror\n");
			continue;
		}
		long m;
		int r;
		if (inplace) {
			/* In place: the reply goes over the request; the room is
			 * the larger of the two sizes, so only what fits is built. */
			if ((long)n + TAIL <= rec->shmsize)
				rule(data, n, data);
			m = n + TAIL;
			r = Reply(sender, NULL, (unsigned)m);
		} else {
			m = rule(data, n, out);
			r = Reply(sender, out, (unsigned)m);
		}
		if (r == -1)
			printf("reply err %s\n", whatsMyError());
		else
			printf("reply %d\n", r);
	}
	name_detach();
	return 0;
}
