/*
 * logger: an fclogger-style receiver, written for gosimpl's drop-in
 * library tests; C SIMPL's API only.
 *
 *   logger -n NAME [-t COUNT]
 *
 * Receives COUNT (1) messages with Receive(&s, NULL, 1024), reads each in
 * place through the handle as FCMSG_REC, NUL-terminates it at
 * data[nbytes], prints "log NBYTES TEXT" and replies with Reply(s, NULL, 0).
 */
#include "simpl.h"
#include "simplDefs.h"
#include "simplProto.h"
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL;
	long count = 1;
	int opt;

	while ((opt = getopt(argc, argv, "n:t:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 't': count = atol(optarg); break;
		default:
			fprintf(stderr, "usage: logger -n NAME [-t COUNT]\n");
			return 2;
		}
	}
	if (me == NULL)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (name_attach(me, NULL) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	printf("ready\n");
	for (long k = 0; k < count; k++) {
		char *sender;
		int n = Receive(&sender, NULL, 1024);
		if (n < 0) {
			printf("receive %d %s\n", n, whatsMyError());
			continue;
		}
		FCMSG_REC *rec = (FCMSG_REC *)sender;
		char *text = &rec->data;
		text[rec->nbytes] = 0;
		printf("log %d %s\n", n, text);
		Reply(sender, NULL, 0);
	}
	name_detach();
	return 0;
}
