/* timer_create, timer_settime and timer_delete (neutrino.h's pulse timers)
 * clear the thread's TimerTimeout, as every call of the API does. */
#include <stdio.h>
#include <time.h>
#include <sys/neutrino.h>

static int armed(void) { return TimerTimeout(CLOCK_MONOTONIC, 0, NULL, NULL, NULL); }
static void arm(void) { TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_RECEIVE, NULL, NULL, NULL); }

int main(void)
{
	int chid = ChannelCreate(0);
	int coid = ConnectAttach(0, 0, chid, _NTO_SIDE_CHANNEL, 0);
	struct sigevent ev;
	SIGEV_PULSE_INIT(&ev, coid, 10, 1, 0);
	timer_t t;
	arm();
	int r = timer_create(CLOCK_MONOTONIC, &ev, &t);
	printf("timer_create %d: armed after it %#x\n", r, armed());
	struct itimerspec its = {{0, 0}, {100, 0}};
	arm();
	r = timer_settime(t, 0, &its, NULL);
	printf("timer_settime %d: armed after it %#x\n", r, armed());
	arm();
	r = timer_delete(t);
	printf("timer_delete %d: armed after it %#x\n", r, armed());
	arm();
	r = MsgSendPulse(coid, -1, 1, 0);
	printf("MsgSendPulse %d: armed after it %#x\n", r, armed());
	ConnectDetach(coid);
	ChannelDestroy(chid);
	return 0;
}
