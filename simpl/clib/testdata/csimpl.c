/*
 * csimpl.c: a stand-in for C SIMPL 3.x's own library, for measuring C
 * SIMPL programs against C SIMPL where its real library is not installed
 * (docs/bench/c-run.sh, TestCbench). Written for gosimpl from the wire
 * facts in shared/spec/simpl-local-wire.md and the API facts in
 * shared/spec/simpl-c-api.md; it is not C SIMPL and shares no code with
 * it. It implements the part of the API a sender and a receiver use
 * (name_attach, name_detach, name_locate, Send, Receive, Reply,
 * ReplyError, Trigger, returnProxy, whatsMyName, whatsMyError,
 * whatsMyRecvfd) and does,
 * per message, the work C SIMPL does, no less and no more:
 *
 *   Send     fill the header and the data in the sender's own System V
 *            segment (grown, page-rounded, when a Send needs more; marked
 *            IPC_RMID at once), write the shmid (4 bytes) to the
 *            receiver's FIFO, block reading 4 bytes from its own reply
 *            FIFO, copy the reply out
 *   Receive  read 4 bytes from its receive FIFO (a negative value is a
 *            proxy), shmat the sender's segment, copy the message out;
 *            the sender handle is the segment's address (FCMSG_REC)
 *   Reply    write the reply over the message, shmdt, open the sender's
 *            reply FIFO Y<whom>.<pid>, write 0 (or -1), close it
 *
 * Compile it with the program, against simpl/clib/include:
 *   cc -O2 -I simpl/clib/include prog.c simpl/clib/testdata/csimpl.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>
#include "simpl.h"

/* C SIMPL's error codes used here (simpl-c-api.md §3) and their texts. */
enum {
	E_NONE = 0, E_NO_NAME = 1, E_NO_FIFO_PATH = 2, E_NAME_IN_USE = 3,
	E_CREATE_SHMEM = 4, E_ATTACH_SHMEM = 6, E_NOT_ATTACHED = 9,
	E_FIFO_CREATE = 10, E_FIFO_GET = 11, E_FIFO_OPEN = 12, E_FIFO_READ = 13,
	E_FIFO_WRITE = 14, E_RECV_LARGE = 19, E_REPLY_LARGE = 20, E_COMM = 21,
	E_PROXY = 30, E_ID_RANGE = 32, E_PATH_LONG = 36, E_COUNT = 37,
};

static const char *texts[E_COUNT] = {
	[E_NONE] = "no error",
	[E_NO_NAME] = "no simpl name supplied",
	[E_NO_FIFO_PATH] = "no simpl fifo path available - check export variable FIFO_PATH",
	[E_NAME_IN_USE] = "simpl name is probably in use",
	[E_CREATE_SHMEM] = "cannot create shmem for message communication",
	[E_ATTACH_SHMEM] = "cannot attach shmem created for message communication",
	[E_NOT_ATTACHED] = "no simpl name has been attached to this process",
	[E_FIFO_CREATE] = "error in creating trigger fifo",
	[E_FIFO_GET] = "error in getting trigger fifo",
	[E_FIFO_OPEN] = "error in opening trigger fifo",
	[E_FIFO_READ] = "error in reading from trigger fifo",
	[E_FIFO_WRITE] = "error in writing to trigger fifo",
	[E_RECV_LARGE] = "received message too large for receiver buffer",
	[E_REPLY_LARGE] = "reply message too large for sender buffer",
	[E_COMM] = "receive/reply problem ... could be a failed receiver",
	[E_PROXY] = "proxy value must be >= 1",
	[E_ID_RANGE] = "SIMPL ID is out of range for allowable file descriptors",
	[E_PATH_LONG] = "FIFO_PATH too long",
};

int _simpl_errno = E_NONE;

static int fail(int code)
{
	_simpl_errno = code;
	return -1;
}

enum { HDR = 48, OFF_PID = 32, OFF_SHMSIZE = 36, OFF_NBYTES = 40, OFF_YBYTES = 44 };

static char dir[MAX_FIFO_PATH_LEN + 1];
static char me[MAX_PROGRAM_NAME_LEN + 1];
static char rxpath[MAX_FIFO_PATH_LEN + 64], ypath[MAX_FIFO_PATH_LEN + 64];
static int rxfd = -1, yfd = -1;
static pid_t mypid = -1;

/* The sender's segment. */
static char *seg;
static int segid = -1;
static long segroom; /* data bytes it holds */

static int32_t get32(const char *b, int off) { int32_t v; memcpy(&v, b + off, 4); return v; }
static void put32(char *b, int off, int32_t v) { memcpy(b + off, &v, 4); }

static int alive(long pid)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, (id_t)pid) != -1 || errno != ESRCH;
}

/* A live owner of name n (an entry "n.<digits>"), or 0; dead owners'
 * FIFOs are removed when reap is set. */
static long owner(const char *n, int reap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t len = strlen(n);
	long found = 0;
	if (d == NULL)
		return -1;
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
			char path[sizeof rxpath];
			snprintf(path, sizeof path, "%s/%s.%ld", dir, n, pid);
			unlink(path);
			snprintf(path, sizeof path, "%s/Y%s.%ld", dir, n, pid);
			unlink(path);
		}
	}
	closedir(d);
	return found;
}

static int make_fifo(const char *path)
{
	if (mkfifo(path, 0666) < 0 || chmod(path, 0666) < 0)
		return -1;
	return open(path, O_RDWR);
}

static void cleanup(void)
{
	if (mypid != getpid())
		return; /* a forked child: the FIFOs are the parent's */
	name_detach();
}

/* As C SIMPL: a caught SIGHUP, SIGINT or SIGTERM detaches and exits 0;
 * SIGPIPE is ignored. */
static void on_signal(int sig)
{
	(void)sig;
	if (rxfd >= 0) {
		unlink(rxpath);
		unlink(ypath);
	}
	_exit(0);
}

int name_attach(const char *name, void (*myExit)())
{
	static int registered;
	const char *d = getenv("FIFO_PATH");
	if (d == NULL || *d == 0)
		d = DEFAULT_FIFO_PATH;
	if (strlen(d) > MAX_FIFO_PATH_LEN)
		return fail(E_PATH_LONG);
	if (access(d, F_OK) != 0)
		return fail(E_NO_FIFO_PATH);
	if (name == NULL || *name == 0 || strchr(name, ':') != NULL)
		return fail(E_NO_NAME); /* no network names in this stand-in */
	snprintf(dir, sizeof dir, "%s", d);
	snprintf(me, sizeof me, "%s", name); /* truncated to 31 bytes */
	if (owner(me, 1) != 0)
		return fail(E_NAME_IN_USE);
	mypid = getpid();
	snprintf(rxpath, sizeof rxpath, "%s/%s.%d", dir, me, (int)mypid);
	snprintf(ypath, sizeof ypath, "%s/Y%s.%d", dir, me, (int)mypid);
	if ((rxfd = make_fifo(rxpath)) < 0)
		return fail(E_FIFO_CREATE);
	if ((yfd = make_fifo(ypath)) < 0) {
		close(rxfd);
		rxfd = -1;
		unlink(rxpath);
		return fail(E_FIFO_CREATE);
	}
	signal(SIGHUP, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (!registered) {
		atexit(cleanup);
		registered = 1;
	}
	if (myExit != NULL)
		atexit(myExit);
	return 0;
}

int name_detach(void)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	close(rxfd);
	close(yfd);
	unlink(rxpath);
	unlink(ypath);
	rxfd = yfd = -1;
	if (seg != NULL) {
		shmdt(seg);
		seg = NULL;
		segid = -1;
		segroom = 0;
	}
	return 0;
}

int name_locate(const char *name)
{
	char path[sizeof rxpath];
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (name == NULL || *name == 0)
		return fail(E_NO_NAME);
	long pid = owner(name, 0);
	if (pid <= 0)
		return fail(E_FIFO_GET);
	snprintf(path, sizeof path, "%s/%s.%ld", dir, name, pid);
	int fd = open(path, O_WRONLY);
	return fd < 0 ? fail(E_FIFO_OPEN) : fd;
}

static int write32(int fd, int32_t v) { return write(fd, &v, 4) == 4 ? 0 : -1; }

static int read32(int fd, int32_t *v)
{
	size_t got = 0;
	while (got < 4) {
		ssize_t n = read(fd, (char *)v + got, 4 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* grow makes the segment hold need data bytes: a new, larger one
 * replaces it, page-rounded, marked for removal at once. */
static int grow(long need)
{
	long page = sysconf(_SC_PAGESIZE);
	long size = (HDR + need + page - 1) / page * page;
	if (seg != NULL && segroom >= need)
		return 0;
	int id = shmget(IPC_PRIVATE, (size_t)size, 0777 | IPC_CREAT);
	if (id < 0)
		return -1;
	char *m = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	if (m == (void *)-1)
		return -1;
	if (seg != NULL)
		shmdt(seg);
	seg = m;
	segid = id;
	segroom = size - HDR;
	return 0;
}

int Send(int id, void *out, void *in, unsigned outBytes, unsigned inBytes)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (id < 3)
		return fail(E_ID_RANGE);
	long need = outBytes > inBytes ? outBytes : inBytes;
	if (grow(need) < 0)
		return fail(E_CREATE_SHMEM);
	memset(seg, 0, 32);
	memcpy(seg, me, strlen(me));
	put32(seg, OFF_PID, (int32_t)mypid);
	put32(seg, OFF_SHMSIZE, (int32_t)need);
	put32(seg, OFF_NBYTES, (int32_t)outBytes);
	put32(seg, OFF_YBYTES, (int32_t)inBytes);
	if (out != NULL)
		memcpy(seg + HDR, out, outBytes);
	if (write32(id, segid) < 0)
		return fail(E_FIFO_WRITE);
	int32_t v;
	if (read32(yfd, &v) < 0)
		return fail(E_FIFO_READ);
	if (v != 0)
		return fail(E_COMM);
	int32_t n = get32(seg, OFF_NBYTES);
	if (n < 0 || (unsigned)n > inBytes)
		return fail(E_COMM);
	if (in != NULL)
		memcpy(in, seg + HDR, (size_t)n);
	return n;
}

/* ring answers the sender behind a handle and detaches its segment. */
static int ring(char *sender, int32_t v)
{
	char whom[MAX_PROGRAM_NAME_LEN + 1], path[sizeof rxpath];
	memcpy(whom, sender, sizeof whom);
	whom[MAX_PROGRAM_NAME_LEN] = 0;
	int32_t pid = get32(sender, OFF_PID);
	shmdt(sender);
	snprintf(path, sizeof path, "%s/Y%s.%d", dir, whom, (int)pid);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return fail(E_FIFO_OPEN);
	int r = write32(fd, v);
	close(fd);
	return r < 0 ? fail(E_FIFO_WRITE) : 0;
}

int Receive(char **sender, void *in, unsigned maxBytes)
{
	int32_t v;
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (read32(rxfd, &v) < 0)
		return fail(E_FIFO_READ);
	if (v < 0)
		return (int)((int64_t)v - 1); /* a proxy */
	char *m = shmat(v, NULL, 0);
	if (m == (void *)-1)
		return fail(E_ATTACH_SHMEM);
	int32_t n = get32(m, OFF_NBYTES);
	if (in != NULL && (n < 0 || (unsigned)n > maxBytes)) {
		ring(m, -1);
		return fail(E_RECV_LARGE);
	}
	if (in != NULL)
		memcpy(in, m + HDR, (size_t)n);
	*sender = m;
	return n;
}

int Reply(char *sender, void *out, unsigned nbytes)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (sender == NULL)
		return fail(E_FIFO_OPEN);
	if (nbytes > (unsigned)get32(sender, OFF_YBYTES)) {
		ring(sender, -1);
		return fail(E_REPLY_LARGE);
	}
	if (out != NULL)
		memcpy(sender + HDR, out, nbytes);
	put32(sender, OFF_NBYTES, (int32_t)nbytes);
	return ring(sender, 0) < 0 ? -1 : (int)nbytes;
}

int ReplyError(char *sender)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (sender == NULL)
		return fail(E_FIFO_OPEN);
	return ring(sender, -1);
}

int Trigger(int id, int proxy)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	if (proxy < 1)
		return fail(E_PROXY);
	return write32(id, -proxy) < 0 ? fail(E_FIFO_WRITE) : 0;
}

int returnProxy(int value)
{
	long long v = (long long)value + 1;
	return (int)(v < 0 ? -v : v);
}

char *whatsMyName(void)
{
	if (rxfd < 0) {
		fail(E_NOT_ATTACHED);
		return NULL;
	}
	return me;
}

/* The receive FIFO, readable while a message or proxy waits. */
int whatsMyRecvfd(void)
{
	if (rxfd < 0)
		return fail(E_NOT_ATTACHED);
	return rxfd;
}

char *whatsMyError(void)
{
	if (_simpl_errno < 0 || _simpl_errno >= E_COUNT || texts[_simpl_errno] == NULL)
		return "unknown error";
	return (char *)texts[_simpl_errno];
}
