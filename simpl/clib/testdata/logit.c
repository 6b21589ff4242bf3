/*
 * logit: logs through C SIMPL's logging helpers (loggerProto.h), as C
 * SIMPL's own logit test does; written for gosimpl's drop-in library
 * tests. It defines the logger globals, as such programs must.
 *
 *   logit -n NAME -l LOGGER -m TEXT
 *
 * Prints "fcLogx R" and "logMsgx R" (the helpers' results), then a
 * filtered fcLogx's result, "filtered R".
 */
#define _ALLOC
#include "loggerVars.h"
#include "loggerProto.h"
#include "common.h"

int main(int argc, char **argv)
{
	char *me = NULL, *logger = NULL, *text = "";
	int opt;

	while ((opt = getopt(argc, argv, "n:l:m:")) != -1) {
		switch (opt) {
		case 'n': me = optarg; break;
		case 'l': logger = optarg; break;
		case 'm': text = optarg; break;
		default:
			fprintf(stderr, "usage: logit -n NAME -l LOGGER -m TEXT\n");
			return 2;
		}
	}
	if (me == NULL || logger == NULL)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (name_attach(me, NULL) == -1) {
		printf("attach failed: %s\n", whatsMyError());
		return 1;
	}
	logger_ID = is_logger_upx(logger);
	printf("fcLogx %d\n", fcLogx("logit.c", "main", 0xff, LOGMASK_MESSAGE, "say %s", text));
	printf("logMsgx %d\n", logMsgx("logit.c", me, text));
	printf("filtered %d\n", fcLogx("logit.c", "main", LOGMASK_MARKER, LOGMASK_MESSAGE, "never %s", text));
	name_detach();
	return 0;
}
