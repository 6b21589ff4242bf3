/*
 * sender: a C SIMPL-style sender, written for gosimpl's drop-in library
 * tests. It uses only C SIMPL's API and compiles unchanged against it.
 *
 *   sender -n NAME -r RECEIVER [-t TIMES] [-s SIZE] [-y YBYTES] [-x] [-z] [-w] [-l]
 *
 * Sends TIMES (1) requests of SIZE (1024) bytes of the pattern to
 * RECEIVER, accepting replies of YBYTES (SIZE+16) bytes, and checks each
 * reply against the rule (common.h). -x sends the 1-byte request "X"
 * instead (which the rule error-replies). -z builds each request in place
 * at whatsMyShmPtr() and reads the reply there (Send with NULL buffers).
 * -w waits for stdin to end before detaching. -l locates RECEIVER again
 * before each Send, as programs that locate per request do (each a new
 * id), and at the end prints "fds FIRST LAST", the process's open
 * descriptors after the first Send and after the last. Prints "ok I N" for each
 * reply of N bytes, "sent TIMES" at the end, "err I TEXT" for a failed
 * Send (and exits 1).
 */
#include <dirent.h>
#include "simpl.h"
#include "common.h"

/* open_fds counts the descriptors this process has open. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own */
}

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	long times = 1, size = 1024, ybytes = -1;
	int x = 0, inplace = 0, wait = 0, relocate = 0, opt;

	while ((opt = getopt(argc, argv, "n:r:t:s:y:xzwl")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 't': times = atol(optarg); break;
		case 's': size = atol(optarg); break;
		case 'y': ybytes = atol(optarg); break;
		case 'x': x = 1; break;
		case 'z': inplace = 1; break;
		case 'w': wait = 1; break;
		case 'l': relocate = 1; break;
		default:
			fprintf(stderr, "usage: sender -n NAME -r RECEIVER [-t TIMES] [-s SIZE] [-y YBYTES] [-x] [-z] [-w] [-l]\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL) {
		fprintf(stderr, "sender: -n and -r are required\n");
		return 2;
	}
	if (x)
		size = 1;
	if (ybytes < 0)
		ybytes = size + TAIL;
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

	long big = size > ybytes ? size : ybytes;
	unsigned char *out = malloc(size + 1), *in = malloc(big + 1), *want = malloc(size + TAIL);
	for (long i = 0; i < size; i++)
		out[i] = x ? 'X' : pat(i, size);
	long wantN = rule(out, size, want);
	int rc = 0, first_fds = -1;
	for (long t = 0; t < times; t++) {
		int n;
		unsigned char *reply = in;
		if (relocate && t > 0) {
			if (t == 1)
				first_fds = open_fds();
			id = name_locate(to);
			if (id == -1) {
				printf("err %ld %s\n", t, whatsMyError());
				rc = 1;
				break;
			}
		}
		if (inplace) {
			/* A first Send makes the area large enough for both. */
			if (t == 0 && Send(id, out, in, size, ybytes) == -1) {
				printf("err %ld %s\n", t, whatsMyError());
				rc = 1;
				break;
			}
			memcpy(whatsMyShmPtr(), out, size);
			n = Send(id, NULL, NULL, size, ybytes);
			if (n >= 0)
				simplScopy(in, n);
		} else {
			n = Send(id, out, in, size, ybytes);
		}
		if (n == -1) {
			printf("err %ld %s\n", t, whatsMyError());
			rc = 1;
			break;
		}
		if (n != wantN || memcmp(reply, want, n) != 0) {
			printf("bad %ld: reply of %d bytes, want %ld\n", t, n, wantN);
			rc = 1;
			break;
		}
		printf("ok %ld %d\n", t, n);
	}
	if (rc == 0 && relocate)
		printf("fds %d %d\n", first_fds, open_fds());
	if (rc == 0)
		printf("sent %ld\n", times);
	if (wait)
		wait_stdin();
	name_detach();
	return rc;
}
