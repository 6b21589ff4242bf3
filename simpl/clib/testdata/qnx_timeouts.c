/*
 * qnx_timeouts: server-maintained timeouts, after Getting Started's
 * time1.c (written anew from its description).
 *
 *   qnx_timeouts -s        serve: print "ready PID CHID"
 *   qnx_timeouts PID CHID wait|data
 *
 * The server opens a connection to its own channel and a POSIX timer
 * that sends it a pulse every second (SIGEV_PULSE). A "wait" request
 * (type 1: tell me when data exists, but do not block me more than 5 s)
 * is recorded with a 5-tick counter and not answered; a "data" request
 * (type 2) answers every waiting client with MT_OK and its sender with
 * MT_OK. Each timer pulse counts every waiting client down; one that
 * reaches zero is answered with MT_TIMEDOUT. The server prints what it
 * does; it exits when its clients have been served and it has seen one
 * timeout (for the test). It receives with MsgReceivev into two parts.
 */
#include <sys/neutrino.h>
#include <sys/netmgr.h>
#include <time.h>
#include <unistd.h>

#include "qnx_common.h"

#define CODE_TIMER 1
#define MT_WAIT_DATA 2
#define MT_SEND_DATA 3
#define MT_OK 0
#define MT_TIMEDOUT 1
#define MAX_CLIENT 16

typedef struct {
	int messageType;
	int messageData;
} ClientMessageT;

typedef union {
	ClientMessageT msg;
	struct _pulse pulse;
} MessageT;

static struct {
	int in_use, rcvid, timeout;
} clients[MAX_CLIENT];

static void reply_type(int rcvid, int type)
{
	ClientMessageT m = {type, 0};
	MsgReply(rcvid, EOK, &m, sizeof m);
}

static int serve(void)
{
	int chid = ChannelCreate(0);
	int coid = ConnectAttach(ND_LOCAL_NODE, 0, chid, _NTO_SIDE_CHANNEL, 0);
	struct sigevent ev;
	SIGEV_PULSE_INIT(&ev, coid, 10, CODE_TIMER, 0);
	timer_t timer;
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer) == -1) {
		printf("timer_create %s\n", errname(errno));
		return 1;
	}
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	its.it_value.tv_sec = 1;
	its.it_interval.tv_sec = 1;
	timer_settime(timer, 0, &its, NULL);
	printf("ready %d %d\n", getpid(), chid);
	int timeouts = 0, served = 0, ticks = 0;
	while (timeouts == 0 || served == 0) {
		MessageT m;
		/* Received in two parts (MsgReceivev), a pulse included: the
		 * first word, then the rest. */
		iov_t riov[2];
		SETIOV(&riov[0], &m, sizeof(int));
		SETIOV(&riov[1], (char *)&m + sizeof(int), sizeof m - sizeof(int));
		int rcvid = MsgReceivev(chid, riov, 2, NULL);
		if (rcvid == -1) {
			printf("MsgReceive %s\n", errname(errno));
			return 1;
		}
		if (rcvid == 0) {
			if (m.pulse.code != CODE_TIMER)
				continue;
			ticks++;
			for (int i = 0; i < MAX_CLIENT; i++) {
				if (clients[i].in_use && --clients[i].timeout == 0) {
					reply_type(clients[i].rcvid, MT_TIMEDOUT);
					clients[i].in_use = 0;
					printf("timed out after %d ticks\n", 5);
					timeouts++;
				}
			}
			continue;
		}
		if (m.msg.messageType == MT_WAIT_DATA) {
			int i = 0;
			while (i < MAX_CLIENT && clients[i].in_use)
				i++;
			if (i == MAX_CLIENT) {
				MsgError(rcvid, EAGAIN);
				continue;
			}
			clients[i].in_use = 1;
			clients[i].rcvid = rcvid;
			clients[i].timeout = 5;
			printf("waiting\n");
		} else if (m.msg.messageType == MT_SEND_DATA) {
			for (int i = 0; i < MAX_CLIENT; i++) {
				if (clients[i].in_use) {
					reply_type(clients[i].rcvid, MT_OK);
					clients[i].in_use = 0;
					served++;
				}
			}
			reply_type(rcvid, MT_OK);
			printf("data: served %d\n", served);
		} else {
			MsgError(rcvid, ENOSYS);
		}
	}
	timer_delete(timer);
	ConnectDetach(coid);
	ChannelDestroy(chid);
	printf("done %s\n", ticks >= 5 ? "ticks ok" : "too few ticks");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && strcmp(argv[1], "-s") == 0)
		return serve();
	if (argc != 4)
		return 2;
	int coid = ConnectAttach(ND_LOCAL_NODE, atoi(argv[1]), atoi(argv[2]), _NTO_SIDE_CHANNEL, 0);
	if (coid == -1) {
		printf("ConnectAttach %s\n", errname(errno));
		return 1;
	}
	ClientMessageT m = {strcmp(argv[3], "wait") == 0 ? MT_WAIT_DATA : MT_SEND_DATA, 0}, r = {-1, 0};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int s = MsgSend(coid, &m, sizeof m, &r, sizeof r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	printf("%s %d %s after %s\n", argv[3], s, r.messageType == MT_OK ? "MT_OK" : r.messageType == MT_TIMEDOUT ? "MT_TIMEDOUT" : "?",
	       ms >= 4000 ? "4s+" : "<4s");
	ConnectDetach(coid);
	return 0;
}
