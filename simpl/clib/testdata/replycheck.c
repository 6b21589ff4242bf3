/*
 * replycheck: a C SIMPL-style sender that reports what its reply holds,
 * written for gosimpl's drop-in library tests. It uses only C SIMPL's
 * API and compiles unchanged against it.
 *
 *   replycheck -n NAME -r RECEIVER -s SIZE -y YBYTES
 *
 * Sends SIZE bytes of the pattern (common.h) to RECEIVER, accepting
 * YBYTES of reply, into a buffer filled with 0xEE beforehand, and prints
 * "reply N FNV1A32 NONZERO": the reply's size, the FNV-1a hash of its N
 * bytes, and how many of them past the first SIZE are not 0. Prints
 * "err TEXT" for a failed Send (and exits 1).
 */
#include "simpl.h"
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	long size = 16, ybytes = 1024;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:s:y:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 's': size = atol(optarg); break;
		case 'y': ybytes = atol(optarg); break;
		default:
			fprintf(stderr, "usage: replycheck -n NAME -r RECEIVER -s SIZE -y YBYTES\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL || size < 1 || ybytes < 0) {
		fprintf(stderr, "replycheck: -n and -r are required, -s at least 1\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (name_attach(me, NULL) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	int id = name_locate(to);
	if (id == -1) {
		printf("locate failed: %s\n", whatsMyError());
		name_detach();
		return 1;
	}
	printf("ready\n");
	unsigned char *out = malloc(size), *in = malloc(ybytes + 1);
	for (long i = 0; i < size; i++)
		out[i] = pat(i, size);
	memset(in, 0xEE, ybytes + 1);
	int n = Send(id, out, in, size, ybytes);
	int rc = 0;
	if (n == -1) {
		printf("err %s\n", whatsMyError());
		rc = 1;
	} else {
		long nonzero = 0;
		for (long i = size; i < n; i++)
			nonzero += in[i] != 0;
		printf("reply %d %08x %ld\n", n, fnv1a(in, n), nonzero);
	}
	free(out);
	free(in);
	name_detach();
	return rc;
}
