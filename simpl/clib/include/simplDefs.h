/*
 * simplDefs.h: C SIMPL 3.x's constants and types, with the values and
 * layouts programs compiled against C SIMPL rely on (see docs/porting-csimpl.md,
 * "From C SIMPL: the drop-in library"). It includes <unistd.h> because
 * C SIMPL's does, and programs call sleep() and friends through it.
 */
#ifndef GOSIMPL_SIMPLDEFS_H
#define GOSIMPL_SIMPLDEFS_H

#include <sys/types.h> /* pid_t, even in strict ISO C modes */
#include <unistd.h>

#define MAX_PROTOCOL_NAME_LEN 23
#define MAX_HOST_NAME_LEN 51
#define MAX_NUM_PROTOCOLS 10
#define MAX_PROGRAM_NAME_LEN 31
#define MAX_NUM_REMOTE_RECEIVERS 40
#define MAX_NUM_BLOCKED_SENDERS 40
#define MAX_SIMPL_LOG_SIZE 102400
#define SIMPL_LOG_FILE "/var/tmp/simpl.log"
#define PROXY_SHUTDOWN 0x7FFFFFFF
#define PROXY_CLONE 0x7FFFFFFE
#define RECEIVE 0
#define REPLY 1
#define REMOVE 1
#define NO_REMOVE 0
#define DEFAULT_FIFO_PATH "/var/tmp"
#define MAX_FIFO_PATH_LEN 127
/* Left unparenthesised on purpose: C SIMPL's expands to 31 + 1 too, and
 * an expression such as 2 * SIMPL_NAME_SIZE means the same in both. */
#define SIMPL_NAME_SIZE MAX_PROGRAM_NAME_LEN + 1
#define SIMPL_NAME_DELIMITER ':'

/* The library's own state in C SIMPL. Declared for programs that name the
 * type; this library keeps its state elsewhere and no such object exists. */
typedef struct {
	char whom[MAX_PROGRAM_NAME_LEN + 1];
	pid_t pid;
	int fd;
	int y_fd;
	int shmid;
	char *shmPtr;
	unsigned shmSize;
	void (*myExit)();
} WHO_AM_I;

/* The token C SIMPL writes to FIFOs. */
typedef struct {
	int shmid;
} FIFO_MSG;

/* What the sender handle from Receive() points at: the sender's name and
 * pid, the sizes, and the message from &data on, with room for the reply
 * (the larger of nbytes and ybytes) and one spare byte after it. */
typedef struct {
	char whom[MAX_PROGRAM_NAME_LEN + 1];
	pid_t pid;
	int shmsize;
	int nbytes;
	int ybytes;
	char data;
} FCMSG_REC;

typedef struct {
	char whom[MAX_PROGRAM_NAME_LEN + 1];
	pid_t pid;
} SIMPL_REC;

typedef struct {
	char protocolName[MAX_PROTOCOL_NAME_LEN + 1];
	char programName[MAX_PROGRAM_NAME_LEN + 1];
	char *sender;
} PROTOCOL_TABLE_ENTRY;

#endif
