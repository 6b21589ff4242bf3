/*
 * cnet: a C SIMPL 3.x program's side of remote name_locate, for fcgate's
 * tests (tools/fcgate/csimpl_test.go). Written for these tests from
 * shared/spec/simpl-network-wire.md (sections 2 and 3) and
 * simpl-local-wire.md; it is not C SIMPL and shares no code with it. It
 * speaks the local wire byte for byte (FIFOs NAME.PID and YNAME.PID in
 * $FIFO_PATH, 4-byte doorbells, a sender-owned System V segment with the
 * 48-byte header) and, to locate "host:NAME", does what the C library's
 * name_locate does: SUR_REQUEST_PROTOCOL to _simplProtoRouter, then
 * SUR_NAME_LOCATE to the surrogate it names, then Sends and Triggers to
 * that surrogate. Header words the library leaves uninitialized are
 * filled with 0xA5 bytes here, so a peer that reads them shows.
 *
 *   cnet recv NAME COUNT
 *       Attach NAME, print "ready", answer COUNT doorbells: a proxy prints
 *       "proxy N"; a message prints "msg NBYTES YBYTES" and is answered by
 *       the reply rule.
 *   cnet locate NAME TARGET OP...
 *       Attach NAME, locate TARGET ("host:NAME" or "protocol:host:NAME")
 *       and print "located SURROGATE", or "locate failed: REASON" and exit
 *       0. Then, per OP:
 *         SIZE[:YBYTES]  Send SIZE bytes of pattern(SIZE), reply buffer
 *                        YBYTES (default SIZE+16); print "ok OP N" once the
 *                        reply checks out against the rule, "err OP V" for
 *                        a doorbell V != 0
 *         X              Send "X" (the rule's ReplyError)
 *         pN             Trigger N; print "triggered N"
 *         wait           print "waiting" and read a line of stdin first
 *       and at the end sur_detach (Trigger PROXY_SHUTDOWN to the
 *       surrogate), as name_detach does, and print "done".
 *   cnet router COUNT
 *       Play C SIMPL's protocol router: attach _simplProtoRouter, print
 *       "ready", take COUNT messages: SUR_SURROGATE_READY is held
 *       ("registered PROTOCOL PROGRAM"); SUR_REQUEST_PROTOCOL is answered
 *       with the first held entry (for _simplDefault any, else the one of
 *       that protocol): the registrant gets its empty reply and the
 *       requester the program name ("handed PROTOCOL PROGRAM"), or all
 *       NULs ("none PROTOCOL").
 *
 * Reply rule (as testdata/cpeer.c of transport/fifo): "X" is answered
 * with ReplyError; anything else with every byte +1, then 16 bytes
 * 0xA0..0xAF, or -1 if that is larger than ybytes.
 * pattern(n)[i] = (i*7 + n) & 0xFF.
 */
#define PROG "cnet"
#define SEG_MODE 0777 /* C SIMPL's */
#include "simplwire.h" /* in internal/transport/fifo/testdata */

/* Tokens and layouts of the router and surrogate messages. */
#define SUR_NAME_LOCATE 2
#define SUR_SURROGATE_READY 10
#define SUR_REQUEST_PROTOCOL 11
#define PROTO_LEN 24
#define HOST_LEN 52
#define PROG_LEN 32
#define PROXY_SHUTDOWN 0x7FFFFFFF

/*
 * Send: out (size bytes) to fd, taking up to ybytes of reply. Returns the
 * doorbell (0 or -1); the reply is then at seg+HDR, its size at
 * OFF_NBYTES.
 */
static int32_t send_raw(int fd, const void *out, long size, long ybytes)
{
	long need = size > ybytes ? size : ybytes;
	grow(need);
	memset(seg, 0, 32);
	memcpy(seg, name, strlen(name));
	put32(seg, OFF_PID, (int32_t)getpid());
	put32(seg, OFF_SHMSIZE, (int32_t)need);
	put32(seg, OFF_NBYTES, (int32_t)size);
	put32(seg, OFF_YBYTES, (int32_t)ybytes);
	memcpy(seg + HDR, out, (size_t)size);
	write32(fd, segid);
	return read32(yfd);
}

/* A SUR_MSG_HDR: token and nbytes, the other two words "uninitialized". */
static void sur_header(char *m, int32_t token, int32_t nbytes)
{
	put32(m, 0, token);
	put32(m, 4, nbytes);
	memset(m + 8, 0xA5, 8);
}

/* Copy s into a field of n bytes as the library's strcpy leaves it: the
 * string, a NUL, then leftover bytes (0xA5 here). */
static void field(char *f, const char *s, size_t n)
{
	memset(f, 0xA5, n);
	snprintf(f, n, "%s", s);
}

static const char *locate_error;

/* name_locate("[protocol:]host:name") through the router, as the C
 * library's _simpl_net_name_locate. The surrogate's fd, or -1 with
 * locate_error set to the library's message. */
static int net_locate(const char *target, char *surrogate)
{
	char proto[PROTO_LEN] = "_simplDefault", host[HOST_LEN], rname[PROG_LEN];
	char buf[200], *c1 = strchr(target, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1) {
		locate_error = "not a remote name";
		return -1;
	}
	if (c2) {
		if (c1 > target)
			snprintf(proto, sizeof proto, "%.*s", (int)(c1 - target), target);
		snprintf(host, sizeof host, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
		snprintf(rname, sizeof rname, "%s", c2 + 1);
	} else {
		snprintf(host, sizeof host, "%.*s", (int)(c1 - target), target);
		snprintf(rname, sizeof rname, "%s", c1 + 1);
	}
	int router = local_locate("_simplProtoRouter");
	if (router < 0) {
		locate_error = "error in getting trigger fifo";
		return -1;
	}
	sur_header(buf, SUR_REQUEST_PROTOCOL, 40);
	field(buf + 16, proto, PROTO_LEN);
	int32_t v = send_raw(router, buf, 40, PROG_LEN);
	close(router);
	if (v != 0) {
		locate_error = "router answered -1";
		return -1;
	}
	if (get32(seg, OFF_NBYTES) != PROG_LEN) {
		printf("bad router reply of %d bytes\n", get32(seg, OFF_NBYTES));
		exit(1);
	}
	snprintf(surrogate, PROG_LEN, "%s", seg + HDR);
	if (surrogate[0] == 0) {
		locate_error = "protocol not in router table";
		return -1;
	}
	int fd = local_locate(surrogate);
	if (fd < 0) {
		locate_error = "cannot find the surrogate process";
		return -1;
	}
	sur_header(buf, SUR_NAME_LOCATE, 136);
	field(buf + 16, host, HOST_LEN);
	field(buf + 68, rname, PROG_LEN);
	if (gethostname(buf + 100, HOST_LEN) < 0)
		die("gethostname");
	buf[100 + HOST_LEN - 1] = 0;
	v = send_raw(fd, buf, 152, 20);
	if (v != 0) {
		locate_error = "surrogate answered -1";
		close(fd);
		return -1;
	}
	if (get32(seg, OFF_NBYTES) != 20 || get32(seg, HDR) != SUR_NAME_LOCATE) {
		printf("bad surrogate reply of %d bytes, token %d\n", get32(seg, OFF_NBYTES), get32(seg, HDR));
		exit(1);
	}
	if (get32(seg, HDR + 16) != 0) {
		locate_error = "cannot locate remote process";
		close(fd);
		return -1;
	}
	return fd;
}

/* One Send by the reply rule; 0, or 1 for a reply that breaks it. */
static int send_one(int to, const char *arg)
{
	int x = strcmp(arg, "X") == 0;
	long size = x ? 1 : atol(arg), ybytes = size + TAIL;
	char *colon = strchr(arg, ':');
	if (!x && colon)
		ybytes = atol(colon + 1);
	unsigned char *out = malloc((size_t)size + 1);
	if (!out)
		die("malloc");
	for (long i = 0; i < size; i++)
		out[i] = x ? 'X' : pat(i, size);
	int32_t v = send_raw(to, out, size, ybytes);
	free(out);
	if (v != 0) {
		printf("err %s %d\n", arg, v);
		return 0;
	}
	long n = get32(seg, OFF_NBYTES);
	unsigned char *data = (unsigned char *)seg + HDR;
	if (n != size + TAIL || n > ybytes) {
		printf("bad %s: reply of %ld bytes, want %ld\n", arg, n, size + TAIL);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		unsigned char want = i < size ? (unsigned char)(pat(i, size) + 1) : (unsigned char)(0xA0 + (i - size));
		if (data[i] != want) {
			printf("bad %s: reply byte %ld is %#x, want %#x\n", arg, i, data[i], want);
			return 1;
		}
	}
	printf("ok %s %ld\n", arg, n);
	return 0;
}

static int do_locate(const char *target, char **ops, int nops)
{
	char surrogate[PROG_LEN];
	int rc = 0, fd = net_locate(target, surrogate);
	if (fd < 0) {
		printf("locate failed: %s\n", locate_error);
		return 0;
	}
	printf("located %s\n", surrogate);
	for (int i = 0; i < nops && rc == 0; i++) {
		if (ops[i][0] == 'p') {
			write32(fd, -atoi(ops[i] + 1));
			printf("triggered %d\n", atoi(ops[i] + 1));
		} else if (strcmp(ops[i], "wait") == 0) {
			char line[64];
			printf("waiting\n");
			if (!fgets(line, sizeof line, stdin))
				die("stdin");
		} else {
			rc = send_one(fd, ops[i]);
		}
	}
	write32(fd, -PROXY_SHUTDOWN); /* sur_detach */
	close(fd);
	printf("done\n");
	return rc;
}

/* Answer the message in segment id by the reply rule. */
static void serve(int id)
{
	char whom[32], *m;
	int32_t v = 0;
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0 || (m = shmat(id, NULL, 0)) == (void *)-1) {
		printf("bad shmid %d\n", id);
		return;
	}
	memcpy(whom, m, 32);
	whom[31] = 0;
	int32_t pid = get32(m, OFF_PID), nbytes = get32(m, OFF_NBYTES), ybytes = get32(m, OFF_YBYTES);
	unsigned char *data = (unsigned char *)m + HDR;
	long room = (long)ds.shm_segsz - HDR;
	if (nbytes < 0 || nbytes > room || ybytes < 0) {
		printf("bad header nbytes=%d ybytes=%d\n", nbytes, ybytes);
		v = -1;
	} else {
		printf("msg %d %d\n", nbytes, ybytes);
		if (nbytes == 1 && data[0] == 'X') {
			v = -1;
		} else if ((long)nbytes + TAIL > ybytes || (long)nbytes + TAIL > room) {
			v = -1;
		} else {
			for (long i = 0; i < nbytes; i++)
				data[i]++;
			for (int j = 0; j < TAIL; j++)
				data[nbytes + j] = (unsigned char)(0xA0 + j);
			put32(m, OFF_NBYTES, nbytes + TAIL);
		}
	}
	shmdt(m);
	ring_sender(whom, pid, v);
}

static int do_recv(int count)
{
	printf("ready\n");
	for (int i = 0; i < count; i++) {
		int32_t v = read32(rxfd);
		if (v < 0)
			printf("proxy %lld\n", llabs((long long)v));
		else
			serve(v);
	}
	return 0;
}

/* The router's table: registrants held unanswered. */
struct entry {
	char protocol[PROTO_LEN], program[PROG_LEN], whom[32];
	int32_t pid, shmid;
};
static struct entry table[10];
static int entries;

/* Answer a sender held or received: len bytes of data (or none), doorbell v. */
static void answer(int shmid, const char *whom, int32_t pid, const void *data, int32_t len, int32_t v)
{
	char *m = shmat(shmid, NULL, 0);
	if (m == (void *)-1)
		die("shmat");
	if (data)
		memcpy(m + HDR, data, (size_t)len);
	put32(m, OFF_NBYTES, len);
	shmdt(m);
	ring_sender(whom, pid, v);
}

static void route(int id)
{
	char *m = shmat(id, NULL, 0), whom[32], protocol[PROTO_LEN];
	if (m == (void *)-1)
		die("shmat");
	memcpy(whom, m, 32);
	whom[31] = 0;
	int32_t pid = get32(m, OFF_PID), token = get32(m, HDR);
	snprintf(protocol, sizeof protocol, "%s", m + HDR + 16);
	if (token == SUR_SURROGATE_READY && entries < 10) {
		struct entry *e = &table[entries++];
		memcpy(e->protocol, protocol, PROTO_LEN);
		snprintf(e->program, PROG_LEN, "%s", m + HDR + 40);
		memcpy(e->whom, whom, 32);
		e->pid = pid;
		e->shmid = id;
		printf("registered %s %s\n", e->protocol, e->program);
		shmdt(m);
		return; /* held */
	}
	shmdt(m);
	if (token != SUR_REQUEST_PROTOCOL) {
		printf("token %d\n", token);
		answer(id, whom, pid, NULL, 0, -1);
		return;
	}
	char reply[PROG_LEN] = {0};
	for (int i = 0; i < entries; i++) {
		struct entry e = table[i];
		if (strcmp(protocol, "_simplDefault") != 0 && strcmp(protocol, e.protocol) != 0)
			continue;
		memmove(&table[i], &table[i + 1], sizeof table[0] * (size_t)(entries - i - 1));
		entries--;
		answer(e.shmid, e.whom, e.pid, NULL, 0, 0);
		memcpy(reply, e.program, PROG_LEN);
		printf("handed %s %s\n", e.protocol, e.program);
		break;
	}
	if (reply[0] == 0)
		printf("none %s\n", protocol);
	answer(id, whom, pid, reply, PROG_LEN, 0);
}

static int do_router(int count)
{
	printf("ready\n");
	for (int i = 0; i < count; i++) {
		int32_t v = read32(rxfd);
		if (v >= 0)
			route(v);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "recv") == 0) {
		name_attach(argv[2]);
		rc = do_recv(atoi(argv[3]));
	} else if (argc >= 4 && strcmp(argv[1], "locate") == 0) {
		name_attach(argv[2]);
		rc = do_locate(argv[3], argv + 4, argc - 4);
		if (seg)
			shmdt(seg);
	} else if (argc == 3 && strcmp(argv[1], "router") == 0) {
		name_attach("_simplProtoRouter");
		rc = do_router(atoi(argv[2]));
	} else {
		fprintf(stderr, "usage: cnet recv NAME COUNT | locate NAME TARGET OP... | router COUNT\n");
		return 2;
	}
	name_detach();
	return rc;
}
