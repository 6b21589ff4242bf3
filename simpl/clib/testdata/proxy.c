/*
 * proxy: a C SIMPL-style proxy sender, written for gosimpl's drop-in
 * library tests. It uses only C SIMPL's API and compiles unchanged
 * against it.
 *
 *   proxy -n NAME -r RECEIVER -p PROXY...
 *
 * Triggers each PROXY (one -p each) at RECEIVER, printing "trigger N" or
 * "trigger err TEXT".
 */
#include "simpl.h"
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL, *to = NULL;
	int proxies[16], np = 0, opt;

	while ((opt = getopt(argc, argv, "n:r:p:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'r': to = optarg; break;
		case 'p':
			if (np < 16)
				proxies[np++] = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: proxy -n NAME -r RECEIVER -p PROXY...\n");
			return 2;
		}
	}
	if (me == NULL || to == NULL) {
		fprintf(stderr, "proxy: -n and -r are required\n");
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
	for (int i = 0; i < np; i++) {
		if (Trigger(id, proxies[i]) == -1)
			printf("trigger err %s\n", whatsMyError());
		else
			printf("trigger %d\n", proxies[i]);
	}
	name_detach();
	return 0;
}
