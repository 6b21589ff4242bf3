/* QNX's MsgDeliverEvent client pattern: a side-channel coid to a channel
 * of its own, put in a SIGEV_PULSE event for a server; this process never
 * sends on it. Then it exits. */
#include <stdio.h>
#include <sys/neutrino.h>

int main(void)
{
	int chid = ChannelCreate(0);
	int coid = ConnectAttach(0, 0, chid, _NTO_SIDE_CHANNEL, 0);
	struct sigevent ev;
	SIGEV_PULSE_INIT(&ev, coid, 10, 1, 0);
	(void)ev;
	printf("ready %d %d\n", chid, coid);
	fflush(stdout);
	return 0;
}
