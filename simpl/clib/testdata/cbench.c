/*
 * cbench: round trips between two C SIMPL programs, measured as fcbench
 * (tools/fcbench) measures Go programs. It uses only C SIMPL's API, so the
 * same source, built against gosimpl's drop-in library (simpl/clib) or
 * against C SIMPL's library (or testdata/csimpl.c, a stand-in for it),
 * measures ported C against ported C, or C SIMPL against C SIMPL.
 *
 *   cbench [-size BYTES] [-n ROUNDS] [-warm ROUNDS] [-gap MICROS] [-select] [-label TEXT] [-json] [-check]
 *
 * It starts a receiver, itself again (cbench -role recv NAME BYTES
 * [select]), which attaches NAME and echoes each request with
 * Reply(sender, buf, n), with -select after waiting in select() on
 * whatsMyRecvfd() before each Receive (as a program that waits on other
 * descriptors too); then,
 * as the sender, it attaches a name of its own, locates the receiver,
 * makes ROUNDS (default 100) uncounted round trips and then, after at
 * least 50 ms of them, ROUNDS round trips of BYTES (64) bytes, each timed
 * from the Send to its reply, and ends the receiver with a Trigger. Every
 * reply is checked: the sender writes the round's stamp into the
 * request's first and last bytes, and a reply of another size or without
 * the stamp fails the run (-check compares every byte as well). With -gap
 * the sender sleeps MICROS µs before each round trip, as a control loop's
 * does between cycles (the round trip is timed from its Send, after the
 * sleep).
 *
 * It prints one table row as fcbench does (MEDIAN, P99 and P99.9 of the
 * round trips in µs, their MEAN, MSGS/S, and CPU µs/MSG, the CPU time of
 * both processes per round trip; CPU % how many CPUs' worth they kept
 * busy, 100 per CPU), or with -json one object: label, size, n,
 * median_us, p99_us, p999_us, mean_us, msgs_per_s, cpu_us_per_msg,
 * cpu_pct, and send_switches and recv_switches, each process's voluntary
 * context switches (all its threads) per round trip, counted as its CPU
 * time is. The receiver's CPU is counted per message it served, from its
 * start (as fcbench's receiver reports it), the sender's over the
 * measured round trips. Exits 0, or 1 on any failure (said on stderr).
 *
 * The environment picks the rest: FIFO_PATH; with gosimpl's library
 * GOSIMPL_TRANSPORT=fifo forces C SIMPL's FIFO wire (the default is
 * shared memory between gosimpl processes) and GOSIMPL_SPIN=off turns
 * off spinning before sleeping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include "simpl.h"

extern char **environ;

static int64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
	       ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* switches is the process's voluntary context switches so far. */
static long switches(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_nvcsw;
}

/* pause_us sleeps us µs (0: not at all). */
static void pause_us(long us)
{
	if (us <= 0)
		return;
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The receiver: echo every request; a proxy ends it. */
static int receiver(const char *name, long size, int sel)
{
	/* Gone with its sender, whatever ends that. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	char *buf = malloc(size > 0 ? size : 1);
	if (buf == NULL || name_attach(name, NULL) == -1) {
		fprintf(stderr, "cbench receiver: attach %s: %s\n", name, whatsMyError());
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	int64_t cpu0 = cpu_ns();
	long sw0 = switches();
	long served = 0;
	int fd = sel ? whatsMyRecvfd() : -1;
	if (sel && fd < 0) {
		fprintf(stderr, "cbench receiver: whatsMyRecvfd: %s\n", whatsMyError());
		name_detach();
		return 1;
	}
	for (;;) {
		char *sender;
		while (sel) {
			fd_set r;
			FD_ZERO(&r);
			FD_SET(fd, &r);
			if (select(fd + 1, &r, NULL, NULL, NULL) > 0)
				break;
			if (errno != EINTR) {
				perror("cbench receiver: select");
				name_detach();
				return 1;
			}
		}
		int n = Receive(&sender, buf, (unsigned)size);
		if (n == -1) {
			fprintf(stderr, "cbench receiver: Receive: %s\n", whatsMyError());
			name_detach();
			return 1;
		}
		if (n < -1)
			break; /* the sender's Trigger: done */
		if (Reply(sender, buf, (unsigned)n) == -1) {
			fprintf(stderr, "cbench receiver: Reply: %s\n", whatsMyError());
			name_detach();
			return 1;
		}
		served++;
	}
	double per = served > 0 ? (double)served : 1;
	printf("cpu_ns_per_msg %.1f switches_per_msg %.3f\n", (double)(cpu_ns() - cpu0) / per, (double)(switches() - sw0) / per);
	fflush(stdout);
	name_detach();
	return 0;
}

/* readline reads a line from fd into b (NUL-terminated, no newline),
 * waiting at most ms; 0, or -1 on end, error or time-out. */
static int readline(int fd, char *b, size_t cap, int ms)
{
	size_t n = 0;
	int64_t end = now_ns(CLOCK_MONOTONIC) + (int64_t)ms * 1000000;
	while (n + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((end - now_ns(CLOCK_MONOTONIC)) / 1000000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		char c;
		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n') {
			b[n] = 0;
			return 0;
		}
		b[n++] = c;
	}
	return -1;
}

static pid_t child = -1;

static int die(const char *what)
{
	fprintf(stderr, "cbench: %s: %s\n", what, whatsMyError());
	if (child > 0) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	name_detach();
	return 1;
}

int main(int argc, char **argv)
{
	long size = 64, n = 10000, warm = 100, gap = 0;
	const char *label = "cbench";
	int json = 0, check = 0, sel = 0;

	if ((argc == 5 || argc == 6) && strcmp(argv[1], "-role") == 0 && strcmp(argv[2], "recv") == 0)
		return receiver(argv[3], atol(argv[4]), argc == 6 && strcmp(argv[5], "select") == 0);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-json") == 0)
			json = 1;
		else if (strcmp(a, "-check") == 0)
			check = 1;
		else if (strcmp(a, "-select") == 0)
			sel = 1;
		else if (i + 1 < argc && strcmp(a, "-size") == 0)
			size = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "-n") == 0)
			n = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "-warm") == 0)
			warm = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "-gap") == 0)
			gap = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(a, "-label") == 0)
			label = argv[++i];
		else {
			fprintf(stderr, "usage: cbench [-size BYTES] [-n ROUNDS] [-warm ROUNDS] [-gap MICROS] [-select] [-label TEXT] [-json] [-check]\n");
			return 2;
		}
	}
	if (size < 2 || size > (64 << 20) || n < 1 || warm < 0 || gap < 0 || gap > 10000000) {
		fprintf(stderr, "cbench: -size must be 2 to 64 MiB, -n at least 1, -warm at least 0, -gap 0 to 10 s\n");
		return 2;
	}

	char rname[32], sname[32], sizearg[32];
	snprintf(rname, sizeof rname, "CBENCH_R%d", (int)getpid());
	snprintf(sname, sizeof sname, "CBENCH_S%d", (int)getpid());
	snprintf(sizearg, sizeof sizearg, "%ld", size);

	/* The receiver: this program again, its stdout a pipe. */
	int pfd[2];
	if (pipe(pfd) < 0) {
		perror("cbench: pipe");
		return 1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	char *rargv[] = {argv[0], "-role", "recv", rname, sizearg, sel ? "select" : NULL, NULL};
	int err = posix_spawn(&child, "/proc/self/exe", &fa, NULL, rargv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (err != 0) {
		fprintf(stderr, "cbench: start the receiver: %s\n", strerror(err));
		return 1;
	}
	char line[128];
	if (readline(pfd[0], line, sizeof line, 30000) < 0 || strcmp(line, "ready") != 0) {
		fprintf(stderr, "cbench: the receiver did not start\n");
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
		return 1;
	}

	if (name_attach(sname, NULL) == -1)
		return die("name_attach");
	int id = name_locate(rname);
	if (id == -1)
		return die("name_locate");

	unsigned char *out = malloc(size), *in = malloc(size);
	int64_t *lat = malloc(sizeof *lat * n);
	if (out == NULL || in == NULL || lat == NULL) {
		fprintf(stderr, "cbench: out of memory\n");
		return die("malloc");
	}
	for (long i = 0; i < size; i++)
		out[i] = (unsigned char)(i * 7 + size);

	/* Warm-up, uncounted: warm round trips and at least 50 ms. */
	int64_t warmEnd = now_ns(CLOCK_MONOTONIC) + 50000000;
	for (long r = 0; r < warm || now_ns(CLOCK_MONOTONIC) < warmEnd; r++) {
		pause_us(gap);
		if (Send(id, out, in, (unsigned)size, (unsigned)size) != size)
			return die("Send (warm-up)");
	}

	int64_t t0 = now_ns(CLOCK_MONOTONIC), cpu0 = cpu_ns();
	long sw0 = switches();
	for (long r = 0; r < n; r++) {
		unsigned char stamp = (unsigned char)(r & 0xFF);
		out[0] = out[size - 1] = stamp;
		pause_us(gap);
		int64_t a = now_ns(CLOCK_MONOTONIC);
		int got = Send(id, out, in, (unsigned)size, (unsigned)size);
		lat[r] = now_ns(CLOCK_MONOTONIC) - a;
		if (got != size || in[0] != stamp || in[size - 1] != stamp) {
			fprintf(stderr, "cbench: round %ld: reply of %d bytes, want %ld with stamp %u\n", r, got, size, stamp);
			return die("Send");
		}
		if (check && memcmp(in, out, size) != 0) {
			fprintf(stderr, "cbench: round %ld: the reply is not the request\n", r);
			return die("Send");
		}
	}
	int64_t elapsed = now_ns(CLOCK_MONOTONIC) - t0, cpu = cpu_ns() - cpu0;
	double sendSwitches = (double)(switches() - sw0) / n;

	if (Trigger(id, 1) == -1)
		return die("Trigger");
	double recvPerMsg = -1, recvSwitches = -1;
	if (readline(pfd[0], line, sizeof line, 30000) < 0 ||
	    sscanf(line, "cpu_ns_per_msg %lf switches_per_msg %lf", &recvPerMsg, &recvSwitches) != 2) {
		fprintf(stderr, "cbench: no CPU figure from the receiver\n");
		return die("receiver");
	}
	int st;
	waitpid(child, &st, 0);
	child = -1;
	close(pfd[0]);
	name_detach();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "cbench: the receiver failed (status %#x)\n", st);
		return 1;
	}

	int64_t sum = 0;
	for (long r = 0; r < n; r++)
		sum += lat[r];
	qsort(lat, n, sizeof *lat, cmp64);
	/* P99 and P99.9 by nearest rank, as fcbench and fcloop: the
	 * ceil(q·n)-th value, index ceil(q·n) - 1. */
	double med = lat[n / 2] / 1e3, p99 = lat[(n * 99 + 99) / 100 - 1] / 1e3,
	       p999 = lat[(n * 999 + 999) / 1000 - 1] / 1e3;
	double mean = (double)sum / n / 1e3, rate = n / (elapsed / 1e9);
	double cpuPerMsg = ((double)cpu / n + recvPerMsg) / 1e3;
	double cpuPct = 100 * ((double)cpu + recvPerMsg * n) / (double)elapsed;
	if (json) {
		printf("{\"label\":\"%s\",\"size\":%ld,\"n\":%ld,\"median_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,"
		       "\"mean_us\":%.3f,\"msgs_per_s\":%.0f,\"cpu_us_per_msg\":%.3f,\"cpu_pct\":%.0f,"
		       "\"send_switches\":%.3f,\"recv_switches\":%.3f}\n",
		       label, size, n, med, p99, p999, mean, rate, cpuPerMsg, cpuPct, sendSwitches, recvSwitches);
	} else {
		printf("%-8s%-14s%8s%11s%9s%10s%9s%9s%12s%7s\n", "SIZE", "VARIANT", "N", "MEDIAN µs", "P99 µs",
		       "P99.9 µs", "MEAN µs", "MSGS/S", "CPU µs/MSG", "CPU %");
		char sz[32];
		snprintf(sz, sizeof sz, "%ld B", size);
		printf("%-8s%-14s%8ld%11.2f%9.2f%10.2f%9.2f%9.0f%12.2f%7.0f\n", sz, label, n, med, p99, p999, mean,
		       rate, cpuPerMsg, cpuPct);
	}
	free(out);
	free(in);
	free(lat);
	return 0;
}
