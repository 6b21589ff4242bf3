/*
 * qnx_client: a QNX Neutrino client, for the tests.
 *
 *   qnx_client PID CHID STEP...    connect with ConnectAttach
 *   qnx_client -n NAME STEP...     connect with name_open
 *
 * Each step prints one line (or more for "bad"):
 *
 *   hello        Getting Started's first client: a 28-byte string, a
 *                200-byte reply buffer; prints "status S reply TEXT"
 *   status:N     "status N"          err:N   "err -1 ERRNO"
 *   pulse:C:V    MsgSendPulse; "pulsed"
 *   big:N        send N bytes (a pattern) plus the header, accept an
 *                N-byte reply; "big STATUS HASH-OF-REPLY-CHECK"
 *   slow:MS      TimerTimeout(SEND|REPLY, MS), then send "slow";
 *                "slow R ERRNO"
 *   slowabs:MS   the same through timer_timeout with TIMER_ABSTIME on
 *                CLOCK_REALTIME, MS from now; "slowabs R ERRNO"
 *   hang         send "slow" with no timeout (to be killed)
 *   hold         "hold R" (R: the server thread's number)
 *   event        own channel and coid, send a SIGEV_PULSE sigevent,
 *                wait for it: "event CODE VALUE"
 *   threads      per-thread errno and TimerTimeout: one thread's
 *                armed timeout does not touch another's call
 *   bad          bad input on the client's side
 *   fork         a child forked without exec: every call fails with
 *                ENOSYS and exit() returns; "fork child S" (its status)
 *   iov          MsgSendv of three parts (the header, "abc", "defgh")
 *                into two reply parts (4 and 20 bytes); "iov S REPLY"
 *                with NULs shown as '.'
 *   layout       sizes and offsets of QNX's structures as compiled
 *   paced:N:US   N sends of "status 0", each after a US µs sleep (a
 *                control loop's); "paced S F": S the process's voluntary
 *                context switches per send, F the sends that failed
 *   quit         "quit S"
 */
#include <pthread.h>
#include <sys/dispatch.h>
#include <stddef.h>
#include <sys/iomsg.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/neutrino.h>
#include <sys/netmgr.h>
#include <unistd.h>

#include "qnx_common.h"

static int coid;

static int sendcmd(const char *cmd, const void *payload, int n, void *reply, int rn)
{
	char *b = calloc(1, CMDLEN + n);
	strcpy(b, cmd);
	if (n > 0)
		memcpy(b + CMDLEN, payload, n);
	int r = MsgSend(coid, b, CMDLEN + n, reply, rn);
	int e = errno;
	free(b);
	errno = e;
	return r;
}

static void paced(int n, int us)
{
	struct rusage r0, r1;
	int zero = 0, failed = 0;
	getrusage(RUSAGE_SELF, &r0);
	for (int k = 0; k < n; k++) {
		struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
		nanosleep(&ts, NULL);
		if (sendcmd("status", &zero, sizeof zero, NULL, 0) != 0)
			failed++;
	}
	getrusage(RUSAGE_SELF, &r1);
	printf("paced %.3f %d\n", n > 0 ? (double)(r1.ru_nvcsw - r0.ru_nvcsw) / n : 0.0, failed);
}

static int slow(int ms)
{
	struct sigevent ev;
	uint64_t ns = (uint64_t)ms * 1000000u;
	SIGEV_UNBLOCK_INIT(&ev);
	TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_SEND | _NTO_TIMEOUT_REPLY, &ev, &ns, NULL);
	return sendcmd("slow", NULL, 0, NULL, 0);
}

static int slowabs(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (timer_timeout(CLOCK_REALTIME, _NTO_TIMEOUT_SEND | _NTO_TIMEOUT_REPLY | TIMER_ABSTIME, NULL, &ts, NULL) == -1)
		return -1;
	return sendcmd("slow", NULL, 0, NULL, 0);
}

static void big(long n)
{
	unsigned char *out = malloc(n), *in = malloc(n);
	for (long i = 0; i < n; i++)
		out[i] = qpat(i + 1);
	memset(in, 0, n);
	int r = sendcmd("big", out, (int)n, in, (int)n);
	long bad = 0;
	for (long i = 0; i < n; i++)
		bad += in[i] != qpat(i);
	printf("big %d %08x %s\n", r, qfnv(out, n, QFNV0), bad == 0 ? "reply ok" : "reply wrong");
	free(out);
	free(in);
}

static void event(void)
{
	int mychid = ChannelCreate(0);
	int mycoid = ConnectAttach(ND_LOCAL_NODE, 0, mychid, _NTO_SIDE_CHANNEL, 0);
	struct sigevent ev;
	SIGEV_PULSE_INIT(&ev, mycoid, 10, 17, 0);
	ev.sigev_value.sival_int = 4711;
	if (sendcmd("event", &ev, sizeof ev, NULL, 0) == -1) {
		printf("event send %s\n", errname(errno));
		return;
	}
	struct _pulse p;
	uint64_t ns = 10000000000u;
	TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_RECEIVE, NULL, &ns, NULL);
	int r = MsgReceive(mychid, &p, sizeof p, NULL);
	if (r != 0)
		printf("event receive %d %s\n", r, errname(errno));
	else
		printf("event %d %d\n", p.code, p.value.sival_int);
	ConnectDetach(mycoid);
	ChannelDestroy(mychid);
}

/* threads: thread A arms a 300 ms timeout and sends "slow"; thread B,
 * meanwhile, arms nothing and sends "status 7"; and thread C sets its
 * errno through a failing call while A waits. Each sees only its own. */
static void *armed_exit(void *x);
static int res[3], errs[3];
static pthread_barrier_t bar;
static void *ta(void *x)
{
	(void)x;
	pthread_barrier_wait(&bar);
	res[0] = slow(300);
	errs[0] = errno;
	return NULL;
}
static void *tb(void *x)
{
	(void)x;
	int v = 7;
	pthread_barrier_wait(&bar);
	errno = 0;
	res[1] = sendcmd("status", &v, sizeof v, NULL, 0);
	errs[1] = errno;
	return NULL;
}
static void *tc(void *x)
{
	(void)x;
	pthread_barrier_wait(&bar);
	res[2] = MsgSendPulse(9999, -1, 1, 1);
	errs[2] = errno;
	return NULL;
}
static void threads(void)
{
	pthread_t t[3];
	pthread_barrier_init(&bar, NULL, 3);
	pthread_create(&t[0], NULL, ta, NULL);
	pthread_create(&t[1], NULL, tb, NULL);
	pthread_create(&t[2], NULL, tc, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	pthread_t x;
	pthread_create(&x, NULL, armed_exit, NULL);
	pthread_join(x, NULL);
	printf("threads %d %s %d %s %d %s\n", res[0], errname(errs[0]), res[1], errname(errs[1]), res[2], errname(errs[2]));
}

/* A thread that arms a timeout and ends without using it: the library
 * disarms it as the thread exits. */
static void *armed_exit(void *x)
{
	uint64_t ns = 1000000000u;
	(void)x;
	TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_SEND | _NTO_TIMEOUT_REPLY, NULL, &ns, NULL);
	return NULL;
}

static void forked(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char b[8] = "x";
		check("child MsgSend", MsgSend(coid, b, sizeof b, b, sizeof b), -1, ENOSYS);
		check("child MsgSendPulse", MsgSendPulse(coid, -1, 1, 1), -1, ENOSYS);
		check("child ChannelCreate", ChannelCreate(0), -1, ENOSYS);
		check("child name_open", name_open("x", 0), -1, ENOSYS);
		check("child MsgSend_r", MsgSend_r(coid, b, sizeof b, b, sizeof b), -ENOSYS, 0);
		fflush(stdout);
		exit(failures); /* the exit handler must not enter Go here */
	}
	int st = -1;
	waitpid(pid, &st, 0);
	printf("fork child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void iov(void)
{
	char hdr[CMDLEN] = "iov", r1[4], r2[20];
	iov_t s[3], r[2];
	memset(r1, '?', sizeof r1);
	memset(r2, '?', sizeof r2);
	SETIOV(&s[0], hdr, sizeof hdr);
	SETIOV(&s[1], "abc", 3);
	SETIOV(&s[2], "defgh", 5);
	SETIOV(&r[0], r1, sizeof r1);
	SETIOV(&r[1], r2, sizeof r2);
	int st = MsgSendv(coid, s, 3, r, 2);
	char out[25];
	for (int i = 0; i < 24; i++) {
		char c = i < 4 ? r1[i] : r2[i - 4];
		out[i] = c == 0 ? '.' : c;
	}
	out[24] = 0;
	printf("iov %d %s\n", st, out);
}

static void layout(void)
{
	printf("layout pulse %zu %zu %zu %zu info %zu %zu %zu connect %zu\n", sizeof(struct _pulse),
	       offsetof(struct _pulse, code), offsetof(struct _pulse, value), offsetof(struct _pulse, scoid),
	       sizeof(struct _msg_info), offsetof(struct _msg_info, msglen), offsetof(struct _msg_info, priority),
	       offsetof(struct _io_connect, path));
}

static void bad(void)
{
	char b[16] = "x";
	iov_t iov[2];
	uint64_t ns = 1;
	struct sigevent ev;
	SETIOV(&iov[0], b, sizeof b);
	SETIOV(&iov[1], NULL, 8);
	SIGEV_PULSE_INIT(&ev, coid, 10, 1, 0);
	check("MsgSend NULL", MsgSend(coid, NULL, 10, b, sizeof b), -1, EFAULT);
	check("MsgSend negative size", MsgSend(coid, b, -1, b, sizeof b), -1, EFAULT);
	check("MsgSend negative reply size", MsgSend(coid, b, sizeof b, b, -3), -1, EFAULT);
	check("MsgSendv NULL part", MsgSendv(coid, iov, 2, iov, 1), -1, EFAULT);
	check("MsgSendv NULL iov", MsgSendv(coid, NULL, 2, iov, 1), -1, EFAULT);
	check("MsgSendv negative parts", MsgSendv(coid, iov, -1, iov, 1), -1, EFAULT);
	check("MsgSend unknown coid", MsgSend(9999, b, sizeof b, b, sizeof b), -1, EBADF);
	check("MsgSend_r unknown coid", MsgSend_r(9999, b, sizeof b, b, sizeof b), -EBADF, 0);
	errno = 0;
	MsgSend_r(9999, b, sizeof b, b, sizeof b);
	check("MsgSend_r leaves errno", errno, 0, 0);
	check("MsgSendPulse unknown coid", MsgSendPulse(9999, -1, 1, 1), -1, EBADF);
	check("MsgSendPulse bad code", MsgSendPulse(coid, -1, 300, 1), -1, EINVAL);
	check("ConnectAttach unknown chid", ConnectAttach(0, getpid() == 1 ? 2 : 1, 12345, _NTO_SIDE_CHANNEL, 0), -1, ESRCH);
	check("ConnectAttach own unknown chid", ConnectAttach(0, 0, 12345, _NTO_SIDE_CHANNEL, 0), -1, ESRCH);
	check("ConnectDetach unknown", ConnectDetach(9999), -1, EINVAL);
	check("name_open unknown", name_open("no-such-name", 0), -1, ENOENT);
	check("name_open NULL", name_open(NULL, 0), -1, EINVAL);
	check("name_open leading slash", name_open("/x", 0), -1, EINVAL);
	check("name_attach dispatch", name_attach((dispatch_t *)b, "x", 0) == NULL, 1, ENOTSUP);
	check("name_attach NULL", name_attach(NULL, NULL, 0) == NULL, 1, EINVAL);
	check("name_attach dotdot", name_attach(NULL, "a/../b", 0) == NULL, 1, EINVAL);
	check("name_detach NULL", name_detach(NULL, 0), -1, EINVAL);
	check("TimerTimeout bad clock", TimerTimeout(99, _NTO_TIMEOUT_SEND, NULL, &ns, NULL), -1, EINVAL);
	check("TimerTimeout pulse event", TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_SEND, &ev, &ns, NULL), -1, EINVAL);
	check("TimerTimeout unsupported state", TimerTimeout(CLOCK_MONOTONIC, _NTO_TIMEOUT_MUTEX, NULL, &ns, NULL), -1, ENOTSUP);
	check("MsgDeliverEvent unknown rcvid", MsgDeliverEvent(77777, &ev), -1, EINVAL);
	/* The server's checks, then its faulty reply. */
	check("server fault", sendcmd("bad", NULL, 0, b, sizeof b), -1, ESRVRFAULT);
	printf("bad %d\n", failures);
}

int main(int argc, char **argv)
{
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "-n") == 0) {
		coid = name_open(argv[2], 0);
		if (coid == -1) {
			printf("name_open %s\n", errname(errno));
			return 1;
		}
		i = 3;
	} else if (argc > 2) {
		coid = ConnectAttach(ND_LOCAL_NODE, atoi(argv[1]), atoi(argv[2]), _NTO_SIDE_CHANNEL, 0);
		if (coid == -1) {
			printf("ConnectAttach %s\n", errname(errno));
			return 1;
		}
		i = 3;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc; i++) {
		char *s = argv[i];
		int a = 0, b = 0;
		if (strcmp(s, "hello") == 0) {
			/* 27 characters and the NUL. */
			const char *text = "Does this work? Let us see.";
			char reply[200];
			memset(reply, 0, sizeof reply);
			int r = MsgSend(coid, text, (int)strlen(text) + 1, reply, sizeof reply);
			reply[sizeof reply - 1] = 0;
			printf("status %d reply %s\n", r, reply);
		} else if (sscanf(s, "status:%d", &a) == 1) {
			printf("status %d\n", sendcmd("status", &a, sizeof a, NULL, 0));
		} else if (sscanf(s, "err:%d", &a) == 1) {
			int r = sendcmd("err", &a, sizeof a, NULL, 0);
			printf("err %d %s\n", r, errname(errno));
		} else if (sscanf(s, "pulse:%d:%d", &a, &b) == 2) {
			int r = MsgSendPulse(coid, -1, a, b);
			printf(r == 0 ? "pulsed\n" : "pulse %s\n", errname(errno));
		} else if (sscanf(s, "paced:%d:%d", &a, &b) == 2) {
			paced(a, b);
		} else if (sscanf(s, "big:%d", &a) == 1) {
			big(a);
		} else if (sscanf(s, "slow:%d", &a) == 1) {
			int r = slow(a);
			printf("slow %d %s\n", r, errname(r == -1 ? errno : 0));
		} else if (sscanf(s, "slowabs:%d", &a) == 1) {
			int r = slowabs(a);
			printf("slowabs %d %s\n", r, errname(r == -1 ? errno : 0));
		} else if (strcmp(s, "hang") == 0) {
			printf("hanging\n");
			int r = sendcmd("slow", NULL, 0, NULL, 0);
			printf("hang ended %d %s\n", r, errname(errno));
		} else if (strcmp(s, "hold") == 0) {
			int r = sendcmd("hold", NULL, 0, NULL, 0);
			printf(r >= 0 ? "hold %d\n" : "hold %d failed\n", r);
		} else if (strcmp(s, "event") == 0) {
			event();
		} else if (strcmp(s, "threads") == 0) {
			threads();
		} else if (strcmp(s, "bad") == 0) {
			bad();
		} else if (strcmp(s, "iov") == 0) {
			iov();
		} else if (strcmp(s, "layout") == 0) {
			layout();
		} else if (strcmp(s, "fork") == 0) {
			forked();
		} else if (strcmp(s, "quit") == 0) {
			printf("quit %d\n", sendcmd("quit", NULL, 0, NULL, 0));
		} else if (strcmp(s, "wait") == 0) {
			/* Until stdin closes: the test's cue. */
			char line[64];
			while (fgets(line, sizeof line, stdin) != NULL)
				;
		} else {
			printf("unknown step %s\n", s);
			return 2;
		}
	}
	if (coid > 0 && argc > 2 && strcmp(argv[1], "-n") == 0)
		name_close(coid);
	else if (coid > 0)
		ConnectDetach(coid);
	return failures != 0;
}
