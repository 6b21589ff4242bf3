/*
 * cpeer: a minimal C SIMPL 3.x local peer for gosimpl's interoperability
 * tests (transport/fifo/interop_test.go). Written for these tests from the
 * wire description in shared/spec/simpl-local-wire.md; it is not C SIMPL and
 * shares no code with it. It speaks the wire byte for byte: FIFOs NAME.PID
 * and YNAME.PID in $FIFO_PATH, 4-byte native int32 doorbells, and a
 * sender-owned System V segment with the 48-byte header.
 *
 *   cpeer recv NAME COUNT
 *       Attach NAME, print "ready", then answer COUNT doorbells:
 *         proxy        print "proxy N"
 *         message      print "msg WHOM PID NBYTES YBYTES SHMSIZE FNV1A32",
 *                      then reply by the rule below
 *         bad header   print "bad ..." and answer -1
 *   cpeer send NAME RECEIVER ARG...
 *       Attach NAME, locate RECEIVER, print "ready", then Send once per ARG:
 *         SIZE[:YBYTES]  SIZE bytes of pattern(SIZE); the reply buffer is
 *                        YBYTES bytes (default SIZE+16)
 *         X              the 1-byte request "X"
 *       and print "ok ARG REPLYSIZE" after checking the reply against the
 *       rule, or "err ARG V" for a doorbell V != 0. A reply that breaks the
 *       rule prints "bad ..." and exits 1.
 *   cpeer trigger NAME RECEIVER PROXY
 *       Attach NAME, locate RECEIVER, Trigger PROXY.
 *
 * Reply rule (Go test receivers follow it too):
 *   "X" (exactly 1 byte)  ReplyError: doorbell -1, nbytes left alone
 *   "B" (exactly 1 byte)  out of spec: a 17-byte reply written with doorbell
 *                         0 even when ybytes is smaller (tests the sender's
 *                         own check)
 *   anything else         every byte +1, then 16 bytes 0xA0..0xAF; if that
 *                         is larger than ybytes, doorbell -1 (as C SIMPL's
 *                         "reply message too large for sender buffer")
 * pattern(n)[i] = (i*7 + n) & 0xFF, so a 1-byte pattern is never "X"/"B".
 */
#include "simplwire.h"

static uint32_t fnv1a(const unsigned char *p, long n)
{
	uint32_t h = 2166136261u;
	for (long i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* Answer one message in segment id. */
static void serve(int id)
{
	struct shmid_ds ds;
	char whom[32];
	char *m;
	int32_t pid, shmsize, nbytes, ybytes, v = 0;

	if (shmctl(id, IPC_STAT, &ds) < 0 || (m = shmat(id, NULL, 0)) == (void *)-1) {
		printf("bad shmid %d: %s\n", id, strerror(errno));
		return; /* nobody to answer: the header is out of reach */
	}
	memcpy(whom, m, 32);
	whom[31] = 0;
	pid = get32(m, OFF_PID);
	shmsize = get32(m, OFF_SHMSIZE);
	nbytes = get32(m, OFF_NBYTES);
	ybytes = get32(m, OFF_YBYTES);
	unsigned char *data = (unsigned char *)m + HDR;
	long room = (long)ds.shm_segsz - HDR;

	if (nbytes < 0 || shmsize < 0 || nbytes > shmsize || shmsize > room || ybytes < 0) {
		printf("bad header %s %d nbytes=%d shmsize=%d ybytes=%d segsz=%ld\n",
		       whom, pid, nbytes, shmsize, ybytes, (long)ds.shm_segsz);
		v = -1;
	} else {
		printf("msg %s %d %d %d %d %08x\n", whom, pid, nbytes, ybytes, shmsize,
		       fnv1a(data, nbytes));
		if (nbytes == 1 && data[0] == 'X') {
			v = -1;
		} else if (nbytes == 1 && data[0] == 'B' && room >= 1 + TAIL) {
			data[0] = 'B' + 1;
			for (int j = 0; j < TAIL; j++)
				data[1 + j] = (unsigned char)(0xA0 + j);
			put32(m, OFF_NBYTES, 1 + TAIL);
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
	fflush(stdout);
	shmdt(m);
	if (pid > 0 && whom[0] != 0)
		ring_sender(whom, pid, v);
}

static int do_recv(int count)
{
	printf("ready\n");
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		int32_t v = read32(rxfd);
		if (v < 0) {
			long long r = (long long)v - 1; /* what C SIMPL's Receive returns */
			printf("proxy %lld\n", llabs(r + 1));
			fflush(stdout);
		} else {
			serve(v);
		}
	}
	return 0;
}

static int send_one(int to, const char *arg)
{
	long size, ybytes;
	int x = strcmp(arg, "X") == 0;
	char *colon;
	size = x ? 1 : atol(arg);
	ybytes = size + TAIL;
	if (!x && (colon = strchr(arg, ':')) != NULL)
		ybytes = atol(colon + 1);
	long need = size > ybytes ? size : ybytes;
	grow(need);

	memset(seg, 0, 32);
	memcpy(seg, name, strlen(name));
	put32(seg, OFF_PID, (int32_t)getpid());
	put32(seg, OFF_SHMSIZE, (int32_t)need);
	put32(seg, OFF_NBYTES, (int32_t)size);
	put32(seg, OFF_YBYTES, (int32_t)ybytes);
	unsigned char *data = (unsigned char *)seg + HDR;
	for (long i = 0; i < size; i++)
		data[i] = x ? 'X' : pat(i, size);

	write32(to, segid);
	int32_t v = read32(yfd);
	if (v != 0) {
		printf("err %s %d\n", arg, v);
		fflush(stdout);
		return 0;
	}
	long n = get32(seg, OFF_NBYTES);
	if (n != size + TAIL || n > ybytes) {
		printf("bad %s: reply of %ld bytes, want %ld\n", arg, n, size + TAIL);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		unsigned char want = i < size ? (unsigned char)((x ? 'X' : pat(i, size)) + 1)
					      : (unsigned char)(0xA0 + (i - size));
		if (data[i] != want) {
			printf("bad %s: reply byte %ld is %#x, want %#x\n", arg, i, data[i], want);
			return 1;
		}
	}
	printf("ok %s %ld\n", arg, n);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "recv") == 0) {
		name_attach(argv[2]);
		rc = do_recv(atoi(argv[3]));
	} else if (argc >= 4 && strcmp(argv[1], "send") == 0) {
		name_attach(argv[2]);
		int to = name_locate(argv[3]);
		printf("ready\n");
		for (int i = 4; i < argc && rc == 0; i++)
			rc = send_one(to, argv[i]);
		close(to);
		if (seg)
			shmdt(seg);
	} else if (argc == 5 && strcmp(argv[1], "trigger") == 0) {
		name_attach(argv[2]);
		int to = name_locate(argv[3]);
		write32(to, -atoi(argv[4]));
		close(to);
	} else {
		fprintf(stderr, "usage: cpeer recv NAME COUNT | send NAME RECEIVER ARG... | "
				"trigger NAME RECEIVER PROXY\n");
		return 2;
	}
	name_detach();
	return rc;
}
