/*
 * simplwire.h: the C SIMPL 3.x local FIFO wire as the test programs in
 * testdata speak it (cpeer.c here, tools/fcgate/testdata/cnet.c):
 * written for gosimpl's tests from shared/spec/simpl-local-wire.md; it is
 * not C SIMPL and shares no code with it. One program includes it once:
 * everything is static. Before including it a program may define PROG
 * (its name in messages, default "cpeer") and SEG_MODE (its segments'
 * mode, default 0600).
 */
#ifndef PROG
#define PROG "cpeer"
#endif
#ifndef SEG_MODE
#define SEG_MODE 0600
#endif
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define HDR 48 /* data offset */
#define OFF_PID 32
#define OFF_SHMSIZE 36
#define OFF_NBYTES 40
#define OFF_YBYTES 44
#define TAIL 16

static char dir[128];
static char name[32];
static char rxpath[256], ypath[256];
static int rxfd = -1, yfd = -1;

static void die(const char *what)
{
	fprintf(stderr, PROG " %s: %s: %s\n", name, what, strerror(errno));
	if (rxfd >= 0)
		unlink(rxpath);
	if (yfd >= 0)
		unlink(ypath);
	exit(2);
}

static int32_t get32(const char *base, int off)
{
	int32_t v;
	memcpy(&v, base + off, 4);
	return v;
}

static void put32(char *base, int off, int32_t v)
{
	memcpy(base + off, &v, 4);
}

static unsigned char pat(long i, long n)
{
	return (unsigned char)(i * 7 + n);
}

/* The spec's liveness test: getpriority fails with ESRCH for no process. */
static int alive(long pid)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, (id_t)pid) != -1 || errno != ESRCH;
}

/* Find a live owner of n: an entry "n.<digits>". Returns its pid or 0. */
static long find(const char *n, int reap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t len = strlen(n);
	long found = 0;
	if (!d)
		die("opendir");
	while ((de = readdir(d)) != NULL) {
		const char *s = de->d_name, *p;
		if (strncmp(s, n, len) != 0 || s[len] != '.' || s[len + 1] == 0)
			continue;
		for (p = s + len + 1; *p >= '0' && *p <= '9'; p++)
			;
		if (*p != 0)
			continue;
		long pid = atol(s + len + 1);
		if (alive(pid)) {
			found = pid;
		} else if (reap) {
			char path[300];
			snprintf(path, sizeof path, "%s/%s.%ld", dir, n, pid);
			unlink(path);
			snprintf(path, sizeof path, "%s/Y%s.%ld", dir, n, pid);
			unlink(path);
		}
	}
	closedir(d);
	return found;
}

static int mkfifo_open(const char *path)
{
	int fd;
	if (mkfifo(path, 0666) < 0 || chmod(path, 0666) < 0)
		die(path);
	if ((fd = open(path, O_RDWR)) < 0)
		die(path);
	return fd;
}

static void name_attach(const char *n)
{
	const char *d = getenv("FIFO_PATH");
	snprintf(dir, sizeof dir, "%s", d && *d ? d : "/var/tmp");
	snprintf(name, sizeof name, "%s", n); /* truncates to 31 bytes */
	if (find(name, 1) != 0) {
		fprintf(stderr, PROG ": simpl name is probably in use\n");
		exit(2);
	}
	snprintf(rxpath, sizeof rxpath, "%s/%s.%d", dir, name, (int)getpid());
	snprintf(ypath, sizeof ypath, "%s/Y%s.%d", dir, name, (int)getpid());
	rxfd = mkfifo_open(rxpath);
	yfd = mkfifo_open(ypath);
}

static void name_detach(void)
{
	close(rxfd);
	close(yfd);
	unlink(rxpath);
	unlink(ypath);
}

/* The local name_locate: the write end of n's receive FIFO, or -1. */
static int local_locate(const char *n)
{
	char path[300];
	long pid = find(n, 0);
	if (pid == 0) {
		errno = ENOENT;
		return -1;
	}
	snprintf(path, sizeof path, "%s/%s.%ld", dir, n, pid);
	return open(path, O_WRONLY);
}

/* local_locate, or die. */
static __attribute__((unused)) int name_locate(const char *n)
{
	int fd = local_locate(n);
	if (fd < 0)
		die(n);
	return fd;
}

static void write32(int fd, int32_t v)
{
	if (write(fd, &v, 4) != 4)
		die("doorbell write");
}

static int32_t read32(int fd)
{
	int32_t v;
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(fd, (char *)&v + got, 4 - got);
		if (n <= 0)
			die("doorbell read");
		got += (size_t)n;
	}
	return v;
}

static void ring_sender(const char *whom, int32_t pid, int32_t v)
{
	char path[300];
	int fd;
	snprintf(path, sizeof path, "%s/Y%s.%d", dir, whom, (int)pid);
	if ((fd = open(path, O_WRONLY)) < 0)
		die(path);
	write32(fd, v);
	close(fd);
}

static char *seg; /* this sender's segment */
static int segid = -1;
static long segcap; /* its data bytes */

/* Make sure the segment holds need data bytes; a new one replaces it. */
static void grow(long need)
{
	long page = sysconf(_SC_PAGESIZE);
	long size = (HDR + need + page - 1) / page * page;
	int id;
	char *m;
	if (seg && segcap >= need)
		return;
	if ((id = shmget(IPC_PRIVATE, (size_t)size, SEG_MODE | IPC_CREAT)) < 0)
		die("shmget");
	if ((m = shmat(id, NULL, 0)) == (void *)-1)
		die("shmat");
	shmctl(id, IPC_RMID, NULL); /* freed once the last process detaches */
	if (seg)
		shmdt(seg);
	seg = m;
	segid = id;
	segcap = size - HDR;
}

