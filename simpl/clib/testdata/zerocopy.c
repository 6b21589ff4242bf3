/*
 * zerocopy: gosimpl's extension for large data without copies
 * (simplBuffer.h), from C. It does not compile against C SIMPL.
 *
 *   zerocopy recv NAME COUNT
 *   zerocopy send NAME TO SIZE ROUNDS
 *
 * recv answers COUNT messages taken with simplReceiveInPlace: it reads
 * the request at whatsThisShmPtr and writes the reply, every byte +1, at
 * simplReplyPtr, then answers with Reply(sender, NULL, n). For each it
 * prints "msg N lane L same S": L 1 when the request lies inside one of
 * this process's mappings of a gosimpl shm lane (/proc/self/maps), S 1
 * when the reply area is the request's own memory.
 *
 * send builds ROUNDS requests of SIZE bytes (pattern(SIZE + round)) in
 * simplBufferGet's area for TO and sends each with simplBufferSend,
 * checking every byte of the reply, at the same place. It prints "buffer
 * lane L" first, "round R ok" for each round, then checks misuse and
 * prints "done".
 */
#include "simpl.h"
#include "simplBuffer.h"
#include "common.h"

/* in_lane: whether [p, p+n) lies inside a mapping of a gosimpl lane. */
static int in_lane(const void *p, unsigned long n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long a = (unsigned long)p, lo, hi;
	int found = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, "/memfd:gosimpl-lane") == NULL)
			continue;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a + n <= hi)
			found = 1;
	}
	fclose(f);
	return found;
}

static int recv_role(char *name, long count)
{
	if (name_attach(name, NULL) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	printf("ready\n");
	for (long k = 0; k < count; k++) {
		char *sender;
		int n = simplReceiveInPlace(&sender);
		if (n < 0) {
			printf("receive err %d %s\n", n, whatsMyError());
			return 1;
		}
		unsigned char *req = (unsigned char *)whatsThisShmPtr(sender);
		unsigned char *out = (unsigned char *)simplReplyPtr(sender);
		if (req == NULL || out == NULL || simplReplySize(sender) < n) {
			printf("no request or reply area: %s\n", whatsMyError());
			return 1;
		}
		printf("msg %d lane %d same %d\n", n, n > 0 ? in_lane(req, n) : 0, req == out);
		for (long i = 0; i < n; i++)
			out[i] = (unsigned char)(req[i] + 1); /* read, then overwritten */
		int r = Reply(sender, NULL, n);
		if (r != n) {
			printf("reply %d: %s\n", r, whatsMyError());
			return 1;
		}
	}
	name_detach();
	return 0;
}

static int send_role(char *name, char *to, long size, long rounds)
{
	if (name_attach(name, NULL) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	int id = name_locate(to);
	if (id == -1) {
		printf("locate failed: %s\n", whatsMyError());
		return 1;
	}
	unsigned char *p = (unsigned char *)simplBufferGet(id, size);
	if (p == NULL) {
		printf("simplBufferGet failed: %s\n", whatsMyError());
		return 1;
	}
	printf("buffer lane %d\n", in_lane(p, size));
	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i < size; i++)
			p[i] = pat(i, size + r);
		int n = simplBufferSend(id, size, size);
		if (n != size) {
			printf("round %ld: simplBufferSend %d: %s\n", r, n, whatsMyError());
			return 1;
		}
		for (long i = 0; i < size; i++) {
			if (p[i] != (unsigned char)(pat(i, size + r) + 1)) {
				printf("round %ld: reply byte %ld is %d\n", r, i, p[i]);
				return 1;
			}
		}
		printf("round %ld ok\n", r);
	}
	if (simplBufferSend(id, size + 1, 0) != -1)
		printf("send past the area succeeded\n");
	else
		printf("past area: %s\n", whatsMyError());
	if (simplBufferGet(id, size) != (char *)p)
		printf("simplBufferGet moved a large-enough area\n");
	if (simplBufferFree(id) != 0)
		printf("simplBufferFree failed: %s\n", whatsMyError());
	if (simplBufferSend(id, 1, 1) != -1)
		printf("send from a freed area succeeded\n");
	if (simplBufferFree(id) != -1)
		printf("second simplBufferFree succeeded\n");
	if (simplBufferGet(2, 1) != NULL)
		printf("simplBufferGet of id 2 succeeded\n");
	name_detach();
	printf("done\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "recv") == 0)
		return recv_role(argv[2], atol(argv[3]));
	if (argc == 6 && strcmp(argv[1], "send") == 0)
		return send_role(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	fprintf(stderr, "usage: zerocopy recv NAME COUNT | send NAME TO SIZE ROUNDS\n");
	return 2;
}
