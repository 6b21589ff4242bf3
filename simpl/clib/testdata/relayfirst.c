/*
 * relayfirst: a C SIMPL-style relayer that relays only its first
 * request, written for gosimpl's drop-in library tests. It uses only C
 * SIMPL's API and compiles unchanged against it.
 *
 *   relayfirst -n NAME -r TO [-t COUNT]
 *
 * Receives COUNT (2) requests: the first it hands to TO with Relay(),
 * printing "relay WHOM NBYTES" and "relayed" (or "relay err TEXT"); each
 * later one it answers itself by the rule (common.h), printing "reply N"
 * (or "reply err TEXT"). So a sender whose relayed request failed (TO
 * gone) can tell by its next Send that this relayer still answers.
 */
#include "simpl.h"
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	long count = 2;
	int opt;
	static unsigned char in[65536], out[65536 + TAIL];

	while ((opt = getopt(argc, argv, "n:r:t:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 't': count = atol(optarg); break;
		default:
			fprintf(stderr, "usage: relayfirst -n NAME -r TO [-t COUNT]\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL) {
		fprintf(stderr, "relayfirst: -n and -r are required\n");
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
		int n = Receive(&sender, in, sizeof in);
		if (n == -1) {
			printf("receive err %s\n", whatsMyError());
			continue;
		}
		if (n < -1) {
			printf("proxy %d\n", returnProxy(n));
			continue;
		}
		if (k == 0) {
			printf("relay %s %d\n", ((FCMSG_REC *)sender)->whom, n);
			if (Relay(sender, id) == -1)
				printf("relay err %s\n", whatsMyError());
			else
				printf("relayed\n");
			continue;
		}
		long m = rule(in, n, out);
		int r = Reply(sender, out, (unsigned)m);
		if (r == -1)
			printf("reply err %s\n", whatsMyError());
		else
			printf("reply %d\n", r);
	}
	name_detach();
	return 0;
}
