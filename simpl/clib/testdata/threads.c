/*
 * threads: Sends from several threads of one process at once, which this
 * library allows (C SIMPL does not). Written for gosimpl's drop-in
 * library tests.
 *
 *   threads -n NAME -r RECEIVER [-T THREADS] [-t TIMES] [-x]
 *
 * Each of THREADS (4) threads sends TIMES (100) requests of the pattern,
 * of a size of its own (100 + 10*thread), and checks each reply against
 * the rule (common.h). Prints "threads ok N" for N good exchanges in all,
 * or "bad ..." / "err ..." for the first failure (exit 1). With -x the
 * threads send until the exit function (name_attach's) stops them: it
 * runs on SIGTERM, asks them to stop, waits for them and prints "joined
 * N" (or the failure); main prints "running" once THREADS replies have
 * come, then waits for the signal.
 */
#include <pthread.h>
#include <unistd.h>
#include "simpl.h"
#include "common.h"

static int id;
static long times = 100;
static long good;
static int failed;
static int forever, stop;
static long nthreads = 4;
static pthread_t th[16];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *run(void *arg)
{
	long k = (long)arg, size = 100 + 10 * k;
	unsigned char out[256], in[256 + TAIL], want[256 + TAIL];
	for (long i = 0; i < size; i++)
		out[i] = pat(i, size);
	long wantN = rule(out, size, want);
	for (long t = 0; forever ? !__atomic_load_n(&stop, __ATOMIC_SEQ_CST) : t < times; t++) {
		int n = Send(id, out, in, (unsigned)size, (unsigned)(size + TAIL));
		pthread_mutex_lock(&mu);
		if (n == -1) {
			if (!failed)
				printf("err thread %ld send %ld: %s\n", k, t, whatsMyError());
			failed = 1;
		} else if (n != wantN || memcmp(in, want, n) != 0) {
			if (!failed)
				printf("bad thread %ld send %ld: reply of %d bytes, want %ld\n", k, t, n, wantN);
			failed = 1;
		} else {
			good++;
		}
		int stop = failed;
		pthread_mutex_unlock(&mu);
		if (stop)
			break;
	}
	return NULL;
}

/* The exit function of -x: it waits for the sending threads, whose
 * Sends go on meanwhile. */
static void join_all(void)
{
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	for (long k = 0; k < nthreads; k++)
		pthread_join(th[k], NULL);
	if (failed)
		printf("joined after a failure\n");
	else
		printf("joined %ld\n", good);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:T:t:x")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 'T': nthreads = atol(optarg); break;
		case 't': times = atol(optarg); break;
		case 'x': forever = 1; break;
		default:
			fprintf(stderr, "usage: threads -n NAME -r RECEIVER [-T THREADS] [-t TIMES] [-x]\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL || nthreads < 1 || nthreads > 16)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (name_attach(me, forever ? join_all : NULL) == -1 || (id = name_locate(to)) == -1) {
		printf("err %s\n", whatsMyError());
		return 1;
	}
	for (long k = 0; k < nthreads; k++)
		pthread_create(&th[k], NULL, run, (void *)k);
	if (forever) {
		for (;;) {
			pthread_mutex_lock(&mu);
			long n = good;
			int f = failed;
			pthread_mutex_unlock(&mu);
			if (f)
				return 1;
			if (n >= nthreads)
				break;
			usleep(1000);
		}
		printf("running\n");
		for (;;)
			pause(); /* until SIGTERM: the library runs join_all and exits */
	}
	for (long k = 0; k < nthreads; k++)
		pthread_join(th[k], NULL);
	if (!failed)
		printf("threads ok %ld\n", good);
	name_detach();
	return failed;
}
