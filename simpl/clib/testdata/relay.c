/*
 * relay: a C SIMPL-style relayer, written for gosimpl's drop-in library
 * tests. It uses only C SIMPL's API and compiles unchanged against it.
 *
 *   relay -n NAME -r TO [-t COUNT]
 *
 * Receives COUNT (1) requests and hands each to TO with Relay(), which
 * then answers the original sender; prints "relay WHOM NBYTES" and
 * "relayed" (or "relay err TEXT") for each, "proxy N" for a proxy.
 */
#include <simpl.h> /* as C SIMPL's own programs include it: through -I */
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	long count = 1;
	int opt;

	while ((opt = getopt(argc, argv, "n:r:t:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 't': count = atol(optarg); break;
		default:
			fprintf(stderr, "usage: relay -n NAME -r TO [-t COUNT]\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL) {
		fprintf(stderr, "relay: -n and -r are required\n");
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
	for (long k = 0; k < count; k++) {
		char *sender;
		int n = Receive(&sender, NULL, 0);
		if (n == -1) {
			printf("receive err %s\n", whatsMyError());
			continue;
		}
		if (n < -1) {
			printf("proxy %d\n", returnProxy(n));
			continue;
		}
		printf("relay %s %d\n", ((FCMSG_REC *)sender)->whom, n);
		if (Relay(sender, id) == -1)
			printf("relay err %s\n", whatsMyError());
		else
			printf("relayed\n");
	}
	name_detach();
	return 0;
}
