/*
 * qnx_name: the name_attach example of QNX's library reference, written
 * anew from its description. One program: "-s NAME" serves, "-c NAME N"
 * sends N messages.
 *
 * Messages start with a struct _pulse-shaped header (type, subtype),
 * then an int. The server attaches NAME with name_attach(NULL, ...) and
 * receives on attach->chid: a DISCONNECT pulse releases the scoid, an
 * UNBLOCK pulse is ignored, other pulses are printed; an _IO_CONNECT
 * message (name_open's) is accepted with EOK, any other message in
 * _IO_BASE.._IO_MAX refused with ENOSYS, and its own message (type 0,
 * subtype 1) prints the int and is answered with EOK and no data. After
 * its client has gone (-s NAME 1: after one disconnect) it detaches and
 * exits.
 */
#include <sys/dispatch.h>
#include <sys/iomsg.h>
#include <sys/neutrino.h>
#include <unistd.h>

#include "qnx_common.h"

typedef struct {
	struct _pulse hdr;
	int data;
} my_data_t;

static int server(const char *name, int clients)
{
	name_attach_t *attach = name_attach(NULL, name, 0);
	if (attach == NULL) {
		printf("name_attach %s\n", errname(errno));
		return 1;
	}
	printf("attached %s\n", name);
	fflush(stdout);
	union {
		my_data_t msg;
		struct _io_connect io;
		char room[256];
	} m;
	while (clients > 0) {
		int rcvid = MsgReceive(attach->chid, &m, sizeof m, NULL);
		if (rcvid == -1) {
			printf("MsgReceive %s\n", errname(errno));
			break;
		}
		if (rcvid == 0) {
			switch (m.msg.hdr.code) {
			case _PULSE_CODE_DISCONNECT:
				ConnectDetach(m.msg.hdr.scoid);
				printf("disconnect\n");
				clients--;
				break;
			case _PULSE_CODE_UNBLOCK:
				break;
			default:
				printf("pulse %d\n", m.msg.hdr.code);
			}
			fflush(stdout);
			continue;
		}
		if (m.msg.hdr.type == _IO_CONNECT) {
			printf("connect %s %d\n", m.io.subtype == _IO_CONNECT_OPEN && m.io.file_type == _FTYPE_NAME ? "open" : "other", (int)m.io.path_len);
			MsgReply(rcvid, EOK, NULL, 0);
		} else if (m.msg.hdr.type > _IO_BASE && m.msg.hdr.type <= _IO_MAX) {
			MsgError(rcvid, ENOSYS);
		} else if (m.msg.hdr.type == 0x00 && m.msg.hdr.subtype == 0x01) {
			printf("data %d\n", m.msg.data);
			MsgReply(rcvid, EOK, NULL, 0);
		} else {
			MsgError(rcvid, ENOSYS);
		}
		fflush(stdout);
	}
	if (name_detach(attach, 0) == -1)
		printf("name_detach %s\n", errname(errno));
	printf("detached\n");
	return 0;
}

static int client(const char *name, int n)
{
	int coid = name_open(name, 0);
	if (coid == -1) {
		printf("name_open %s\n", errname(errno));
		return 1;
	}
	my_data_t msg;
	memset(&msg, 0, sizeof msg);
	msg.hdr.type = 0x00;
	msg.hdr.subtype = 0x01;
	for (msg.data = 10; msg.data < 10 + n; msg.data++) {
		if (MsgSend(coid, &msg, sizeof msg, NULL, 0) == -1) {
			printf("MsgSend %s\n", errname(errno));
			return 1;
		}
		printf("sent %d\n", msg.data);
	}
	/* A resource-manager message the server does not handle. */
	msg.hdr.type = _IO_BASE + 5;
	int r = MsgSend(coid, &msg, sizeof msg, NULL, 0);
	printf("io %d %s\n", r, errname(errno));
	name_close(coid);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && strcmp(argv[1], "-s") == 0)
		return server(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "-c") == 0)
		return client(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: qnx_name -s NAME CLIENTS | -c NAME N\n");
	return 2;
}
