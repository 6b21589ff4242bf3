/*
 * probe: checks, from C, what a C SIMPL program can observe of the
 * library without a peer: the header's layouts and macros, error codes
 * and texts (sticky), name truncation, proxy encoding through Receive and
 * whatsMyRecvfd, bad input, and fork. Written for gosimpl's drop-in
 * library tests; it uses only C SIMPL's API (and _simpl_errno, which C
 * SIMPL exports without declaring).
 *
 *   probe checks NAME   run every check; prints "ok CHECK" for each that
 *                       passes, "FAIL CHECK: why" for each that fails, then
 *                       "done" (exit 0) or "failed" (exit 1)
 *   probe attach NAME   name_attach(NAME); print "attach RC TEXT NAME" and,
 *                       attached, wait for stdin to end, then detach
 *   probe exit NAME     the same, but exit(3) without name_detach
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "simpl.h"
#include "common.h"

extern int _simpl_errno;

static int failures;

static void check(const char *what, int ok, const char *why)
{
	if (ok) {
		printf("ok %s\n", what);
	} else {
		printf("FAIL %s: %s (last error %d: %s)\n", what, why, _simpl_errno, whatsMyError());
		failures++;
	}
}

/* The call failed with -1 and left code and its exact text. */
static void fails(const char *what, int rc, int code, const char *text)
{
	char why[256];
	snprintf(why, sizeof why, "rc %d, want -1 with code %d \"%s\"", rc, code, text);
	check(what, rc == -1 && _simpl_errno == code && strcmp(whatsMyError(), text) == 0, why);
}

static volatile sig_atomic_t own_term;
static void on_term(int sig) { (void)sig; own_term = 1; }

static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int checks(const char *name)
{
	char buf[64];
	char *sender;

	/* The program's own SIGTERM handler, which name_attach replaces and
	 * name_detach gives back. */
	signal(SIGTERM, on_term);

	/* Layouts and macros, as compiled from the headers. */
	check("fcmsg_rec layout",
	      offsetof(FCMSG_REC, whom) == 0 && offsetof(FCMSG_REC, pid) == 32 &&
		      offsetof(FCMSG_REC, shmsize) == 36 && offsetof(FCMSG_REC, nbytes) == 40 &&
		      offsetof(FCMSG_REC, ybytes) == 44 && offsetof(FCMSG_REC, data) == 48 &&
		      sizeof(FCMSG_REC) == 52,
	      "offsets 0/32/36/40/44/48, size 52");
	check("other layouts", sizeof(SIMPL_REC) == 36 && sizeof(WHO_AM_I) == 72 && sizeof(FIFO_MSG) == 4,
	      "SIMPL_REC 36, WHO_AM_I 72, FIFO_MSG 4");
	check("macros",
	      2 * SIMPL_NAME_SIZE == 63 && MAX_PROGRAM_NAME_LEN == 31 && PROXY_SHUTDOWN == 0x7FFFFFFF &&
		      PROXY_CLONE == 0x7FFFFFFE && MAX_FIFO_PATH_LEN == 127 &&
		      strcmp(DEFAULT_FIFO_PATH, "/var/tmp") == 0 && SIMPL_NAME_DELIMITER == ':',
	      "C SIMPL's values (SIMPL_NAME_SIZE unparenthesised)");

	/* Before attaching. */
	check("initial error", _simpl_errno == 0 && strcmp(whatsMyError(), "no error") == 0, "no error");
	check("returnProxy", returnProxy(-6) == 5 && returnProxy(-2) == 1 && returnProxy(INT_MIN) == PROXY_SHUTDOWN,
	      "-6 -> 5, -2 -> 1, INT_MIN -> PROXY_SHUTDOWN");
	const char *nna = "no simpl name has been attached to this process";
	check("whatsMyName unattached", whatsMyName() == NULL, "NULL");
	fails("name_locate unattached", name_locate("x"), 9, nna);
	fails("Send unattached", Send(3, buf, buf, 1, 1), 9, nna);
	fails("Receive unattached", Receive(&sender, buf, sizeof buf), 9, nna);
	fails("Reply unattached", Reply(buf, buf, 1), 9, nna);
	fails("Trigger unattached", Trigger(3, 1), 9, nna);
	fails("name_detach unattached", name_detach(), 9, nna);
	fails("whatsMyRecvfd unattached", whatsMyRecvfd(), 9, nna);
	fails("name_attach NULL", name_attach(NULL, NULL), 1, "no simpl name supplied");
	fails("name_attach empty", name_attach("", NULL), 1, "no simpl name supplied");
	fails("name_attach colons", name_attach("a:b:c:d", NULL), 1, "no simpl name supplied");
	fails("name_attach slash", name_attach("a/b", NULL), 10, "error in creating trigger fifo");

	/* Attach, truncating to 31 bytes. */
	check("name_attach", name_attach(name, NULL) == 0, "returns 0");
	char *mine = whatsMyName();
	char want[32];
	snprintf(want, sizeof want, "%s", name);
	check("truncation", mine != NULL && strlen(mine) == strlen(want) && strcmp(mine, want) == 0,
	      "whatsMyName is the name cut to 31 bytes");
	printf("name %s\n", mine ? mine : "(null)");
	fails("name_attach twice", name_attach("other", NULL), 3, "simpl name is probably in use");

	/* Proxies to ourselves, seen through Receive and the receive fd. */
	int self = name_locate(want);
	check("name_locate self", self >= 3, "an id >= 3");
	int fd = whatsMyRecvfd();
	check("recvfd idle", fd >= 0 && !readable(fd), "a descriptor, not readable");
	check("Trigger", Trigger(self, 5) == 0, "returns 0");
	for (int i = 0; i < 500 && !readable(fd); i++)
		usleep(10000);
	check("recvfd pending", readable(fd), "readable with a proxy waiting");
	check("proxy encoding", Receive(&sender, buf, sizeof buf) == -6, "Receive returns -(5+1)");
	check("recvfd drained", !readable(fd), "not readable once received");
	check("Trigger shutdown", Trigger(self, PROXY_SHUTDOWN) == 0, "returns 0");
	int r = Receive(&sender, buf, sizeof buf);
	check("shutdown encoding", r == INT_MIN && returnProxy(r) == PROXY_SHUTDOWN, "INT_MIN");
	fails("Trigger 0", Trigger(self, 0), 30, "proxy value must be >= 1");
	fails("Trigger negative", Trigger(self, -3), 30, "proxy value must be >= 1");

	/* Sticky: successes leave the last failure's code. */
	whatsMyName();
	int again = name_locate(want);
	check("sticky", again >= 3 && _simpl_errno == 30 && strcmp(whatsMyError(), "proxy value must be >= 1") == 0,
	      "the last failure's code and text after successful calls");
	check("distinct ids", again != self, "a second locate, a second id");

	/* Bad input: the documented code, never a crash. */
	const char *range = "SIMPL ID is out of range for allowable file descriptors";
	fails("Send id 2", Send(2, buf, buf, 1, 1), 32, range);
	fails("Send id -1", Send(-1, buf, buf, 1, 1), 32, range);
	fails("Send unknown id", Send(9999, buf, buf, 1, 1), 14, "error in writing to trigger fifo");
	fails("Trigger unknown id", Trigger(9999, 1), 14, "error in writing to trigger fifo");
	fails("Send negative size", Send(self, buf, buf, (unsigned)-1, 1), 4, "cannot create shmem for message communication");
	fails("Send negative reply size", Send(self, buf, buf, 1, (unsigned)-5), 4, "cannot create shmem for message communication");
	fails("Send NULL with no area", Send(self, NULL, buf, 100000, 1), 6, "cannot attach shmem created for message communication");
	fails("Reply unknown handle", Reply(buf, buf, 1), 12, "error in opening trigger fifo");
	fails("Reply NULL handle", Reply(NULL, NULL, 0), 12, "error in opening trigger fifo");
	fails("ReplyError NULL handle", ReplyError(NULL), 12, "error in opening trigger fifo");
	fails("Relay with nothing held", Relay(NULL, self), 14, "error in writing to trigger fifo");
	fails("Receive NULL handle", Receive(NULL, buf, sizeof buf), 13, "error in reading from trigger fifo");
	fails("name_locate NULL", name_locate(NULL), 1, "no simpl name supplied");
	fails("name_locate colons", name_locate("a:b:c:d"), 1, "no simpl name supplied");
	fails("name_locate empty name", name_locate("localhost:"), 9, "no simpl name has been attached to this process");
	fails("name_locate nobody", name_locate("nobody_here"), 11, "error in getting trigger fifo");
	fails("simplReplySize unknown", simplReplySize(buf), 12, "error in opening trigger fifo");
	check("whatsThisShmPtr unknown", whatsThisShmPtr(buf) == NULL, "NULL");
	simplRcopy(buf, buf, 10);
	simplRcopy(NULL, NULL, (unsigned)-1);
	simplScopy(NULL, (unsigned)-1);
	check("copies survive bad input", 1, "");
	check("whatsMyShmPtr", whatsMyShmPtr() != NULL, "an area");
	check("sur_detach", sur_detach(self) == 0, "0 when attached");
	fails("whatsMyReplyfd", whatsMyReplyfd(), 12, "error in opening trigger fifo");

	/* fork without exec: the child cannot use the library but can let
	 * go of the parent's name; the parent is unaffected. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int bad = 0;
		if (name_locate(want) != -1 || _simpl_errno != 9)
			bad |= 1;
		if (whatsMyName() != NULL)
			bad |= 2;
		if (child_detach() != 0)
			bad |= 4;
		if (name_attach("child", NULL) != -1)
			bad |= 8;
		/* No Go handler left where no Go thread can run it. */
		struct sigaction term, pipe;
		sigaction(SIGTERM, NULL, &term);
		sigaction(SIGPIPE, NULL, &pipe);
		if (term.sa_handler != SIG_DFL || pipe.sa_handler != SIG_IGN)
			bad |= 16;
		_exit(bad);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	snprintf(buf, sizeof buf, "child exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	check("fork child", pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, buf);
	SIMPL_REC rec;
	memset(&rec, 0, sizeof rec);
	check("simplSetReceiverParms",
	      simplSetReceiverParms(want, &rec) == 0 && strcmp(rec.whom, want) == 0 && rec.pid == getpid() &&
		      simplSetReceiverParms("nobody_here", &rec) == -1,
	      "our own name and pid; -1 for a name nobody has");
	int alive = simplCheckProcess(&rec);
	rec.pid = pid; /* the child: exited and reaped */
	check("simplCheckProcess", alive == 0 && simplCheckProcess(&rec) == -1, "0 for a live process, -1 for a gone one");
	/* A whom with no NUL, the record the last bytes before an unmapped
	 * page: the library reads no further than the array. */
	long pg = sysconf(_SC_PAGESIZE);
	char *two = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	check("guard page", two != MAP_FAILED && mprotect(two + pg, pg, PROT_NONE) == 0, "mmap, mprotect");
	SIMPL_REC *edge = (SIMPL_REC *)(two + pg - sizeof(SIMPL_REC));
	memset(edge, 'A', sizeof *edge);
	check("simplCheckProcess unterminated", simplCheckProcess(edge) == -1, "-1, reading whom no further than its 32 bytes");
	munmap(two, 2 * pg);
	check("fork parent", whatsMyName() != NULL && Trigger(self, 7) == 0 &&
				     Receive(&sender, buf, sizeof buf) == -8,
	      "the parent still has its name and its proxies");

	check("name_detach", name_detach() == 0, "returns 0");
	fails("name_detach twice", name_detach(), 9, nna);
	fails("Send after detach", Send(self, buf, buf, 1, 1), 9, nna);
	raise(SIGTERM);
	for (int i = 0; i < 500 && !own_term; i++)
		usleep(10000);
	raise(SIGPIPE);
	check("signals after detach", own_term, "the program's SIGTERM handler back, SIGPIPE still ignored");
	printf(failures ? "failed\n" : "done\n");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "checks") == 0)
		return checks(argv[2]);
	if (argc == 3 && strcmp(argv[1], "attach") == 0) {
		int r = name_attach(argv[2], NULL);
		printf("attach %d %s %s\n", r, whatsMyError(), r == 0 ? whatsMyName() : "-");
		if (r == 0) {
			wait_stdin();
			name_detach();
		}
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "exit") == 0) {
		/* Attached, then exit() without name_detach: the library's
		 * exit handler detaches (C SIMPL's atexit). */
		int r = name_attach(argv[2], NULL);
		printf("attach %d %s %s\n", r, whatsMyError(), r == 0 ? whatsMyName() : "-");
		wait_stdin();
		exit(3);
	}
	fprintf(stderr, "usage: probe checks NAME | probe attach NAME | probe exit NAME\n");
	return 2;
}
