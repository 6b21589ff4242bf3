//go:build cgo

package main

// The public C functions. Each is a thin C wrapper around a Go function
// (exports.go) so that a forked child, which has no Go runtime threads
// and must never enter Go, can be answered without entering it: after a
// fork without exec the child's calls fail with NO_NAME_ATTACHED here, in
// C, and child_detach succeeds. The error code and its texts live here in
// C for the same reason: whatsMyError works in the child too.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "simplProto.h"
#include "simplBuffer.h"

// C SIMPL keeps the last failure's code here, never reset on success. Not
// declared by any public header, as in C SIMPL.
int _simpl_errno = 0;

// errp is where the code is kept: _simpl_errno as the program sees it. A
// program that declares and reads _simpl_errno gets its own copy of the
// variable (a copy relocation), while a Go c-shared library binds its own
// references to its own copy (it is linked -Bsymbolic, which also makes
// dlsym(RTLD_DEFAULT) find the library's first); so the library looks the
// symbol up in the program's scope, once, and uses what it finds there.
static int *errp;

static int *code_at(void)
{
	if (errp == NULL) {
		void *prog = dlopen(NULL, RTLD_LAZY);
		int *p = prog != NULL ? dlsym(prog, "_simpl_errno") : NULL;
		errp = p != NULL ? p : &_simpl_errno;
	}
	return errp;
}

void gs_set_err(int code) { *code_at() = code; }
int gs_get_err(void) { return *code_at(); }

static char *texts[] = {
	"no error",
	"no simpl name supplied",
	"no simpl fifo path available - check export variable FIFO_PATH",
	"simpl name is probably in use",
	"cannot create shmem for message communication",
	"cannot delete shmem from message communication",
	"cannot attach shmem created for message communication",
	"cannot detach shmem created for message communication",
	"cannot remove shmem created for message communication",
	"no simpl name has been attached to this process",
	"error in creating trigger fifo",
	"error in getting trigger fifo",
	"error in opening trigger fifo",
	"error in reading from trigger fifo",
	"error in writing to trigger fifo",
	"bad fifo file descriptor",
	"cannot find the surrogate process",
	"cannot ascertain current host name",
	"cannot locate remote process",
	"received message too large for receiver buffer",
	"reply message too large for sender buffer",
	"receive/reply problem ... could be a failed receiver",
	"requested name too short",
	"too many colons in requested name locate",
	"no system host name set",
	"system host name is too long",
	"protocol not in router table",
	"no more room in remote receiver table",
	"cannot open fifo directory",
	"command line args parsing error",
	"proxy value must be >= 1",
	"local host has no available IP information",
	"SIMPL ID is out of range for allowable file descriptors",
	"orphaned fifo detected on name_locate()",
	"incorrect fifo type; RECEIVE or REPLY only",
	"error setting permissions on fifo",
	"FIFO_PATH too long",
};

enum { NO_NAME_ATTACHED_CODE = 9 };

// The Go side (exports.go).
extern int gs_name_attach(char *name);
extern int gs_name_detach(void);
extern int gs_child_detach(void);
extern int gs_sur_detach(int id);
extern int gs_name_locate(char *name);
extern int gs_Send(long long *pace, int id, void *out, void *in, unsigned outBytes, unsigned inBytes);
extern int gs_Receive(char **sender, void *in, unsigned maxBytes);
extern int gs_Reply(char *sender, void *out, unsigned nbytes);
extern int gs_ReplyError(char *sender);
extern int gs_Relay(char *sender, int id);
extern int gs_Trigger(long long *pace, int id, int proxy);
extern char *gs_whatsMyName(void);
extern int gs_whatsMyRecvfd(void);
extern int gs_whatsMyReplyfd(void);
extern char *gs_whatsMyShmPtr(void);
extern char *gs_whatsThisShmPtr(char *sender);
extern void gs_simplRcopy(char *sender, void *dst, unsigned n);
extern void gs_simplScopy(void *dst, unsigned n);
extern int gs_simplReplySize(char *sender);
extern void gs_simplSetSenderParms(char *sender, SIMPL_REC *rec);
extern int gs_simplSetReceiverParms(char *name, SIMPL_REC *rec);
extern int gs_simplCheckProcess(SIMPL_REC *rec);
extern void gs_at_exit(void);
extern char *gs_simplBufferGet(int id, unsigned size);
extern int gs_simplBufferSend(long long *pace, int id, unsigned outBytes, unsigned inBytes);
extern int gs_simplBufferFree(int id);
extern int gs_simplReceiveInPlace(char **sender);
extern char *gs_simplReplyPtr(char *sender);

// gs_pace is the calling thread's pacer (Go's pace.KeepPAt: when it next
// yields to Go's scheduler, in ns on the pacer's clock), passed to each
// call that starts an exchange. A C thread that calls into Go never
// passes through Go's scheduler otherwise, and the runtime then takes
// its processor whenever it sleeps, in C or in Go, after its first 10 ms:
// one pacer a thread, as each thread holds its own processor. (A Receive
// is paced where it sleeps, by the receive queue.) Hidden: no symbol of
// the library's interface. Declared in qnx_capi.go too.
__attribute__((visibility("hidden"))) __thread long long gs_pace;

// forked is set in a child of fork(): from then on no call enters Go.
static volatile int forked;
// atexit_done: the library's exit handler is registered (once).
static int atexit_done;
static void (*my_exit)(void);

// handlers_on: the library holds SIGHUP, SIGINT, SIGTERM and SIGPIPE
// (from name_attach to name_detach).
static volatile int handlers_on;

void gs_set_handlers(int on) { handlers_on = on; }

static void in_child(void)
{
	forked = 1;
	// The Go runtime's handlers for the signals name_attach took over
	// would forward to Go threads the child does not have: the defaults
	// again (SIGPIPE stays ignored, as C SIMPL's handler swallows it). A
	// program's own handlers, when the library holds none, stay.
	if (handlers_on) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
	}
}

__attribute__((constructor)) static void gs_init(void)
{
		pthread_atfork(NULL, NULL, in_child);
}

static void run_at_exit(void)
{
	if (!forked)
		gs_at_exit();
}

// exiting is set once the library, handling SIGHUP, SIGINT or SIGTERM,
// has run the exit function and goes on to detach the name and end the
// process (onSignal). From then on a call of the library's holds its
// thread until the process is gone: C SIMPL's handler ends the process
// there and then, so no thread of the program sees its calls fail on the
// way out, as one would here (a Receive loop would go round, failing,
// until the process ended). While the exit function runs, other threads'
// calls go on as usual (it may wait for them).
static int exiting;

static void hold_if_exiting(void)
{
	if (__atomic_load_n(&exiting, __ATOMIC_SEQ_CST))
		for (;;)
			pause();
}

// gs_call_my_exit runs the exit function name_attach was given, if any,
// on a terminating signal, and then sets exiting.
void gs_call_my_exit(void)
{
	if (my_exit != NULL)
		my_exit();
	__atomic_store_n(&exiting, 1, __ATOMIC_SEQ_CST);
}

// CHILD begins each call: in a forked child it fails at once, during the
// exit it holds the thread.
#define CHILD(fail)                                   \
	if (forked) {                                 \
		*code_at() = NO_NAME_ATTACHED_CODE; \
		return fail;                          \
	}                                             \
	hold_if_exiting();

// RET ends a call that entered Go: a thread coming back during the exit
// (a Receive that its detach ended) is held there.
#define RET(call)                       \
	do {                            \
		__typeof__(call) r_ = call; \
		hold_if_exiting();      \
		return r_;              \
	} while (0)

int name_attach(const char *name, void (*myExit)())
{
	CHILD(-1);
	int r = gs_name_attach((char *)name);
	if (r == 0) {
		// As C SIMPL: the library's clean-up first registered, so the
		// program's exit function runs before it at exit().
		if (!atexit_done) {
			atexit(run_at_exit);
			atexit_done = 1;
		}
		my_exit = myExit;
		if (myExit != NULL)
			atexit(myExit);
	}
	return r;
}

int name_detach(void) { CHILD(-1); RET(gs_name_detach()); }

int child_detach(void)
{
	// In a forked child: forget the parent's name, which stays the
	// parent's. The child cannot attach one of its own (no Go runtime).
	if (forked)
		return 0;
	RET(gs_child_detach());
}

int sur_detach(int id) { CHILD(-1); RET(gs_sur_detach(id)); }
int name_locate(const char *name) { CHILD(-1); RET(gs_name_locate((char *)name)); }
int Send(int id, void *out, void *in, unsigned outBytes, unsigned inBytes)
{
	CHILD(-1);
	RET(gs_Send(&gs_pace, id, out, in, outBytes, inBytes));
}
int Receive(char **sender, void *in, unsigned maxBytes) { CHILD(-1); RET(gs_Receive(sender, in, maxBytes)); }
int Reply(char *sender, void *out, unsigned nbytes) { CHILD(-1); RET(gs_Reply(sender, out, nbytes)); }
int ReplyError(char *sender) { CHILD(-1); RET(gs_ReplyError(sender)); }
int Relay(char *sender, int id) { CHILD(-1); RET(gs_Relay(sender, id)); }
int Trigger(int id, int proxy) { CHILD(-1); RET(gs_Trigger(&gs_pace, id, proxy)); }

int returnProxy(int value)
{
	// abs(value + 1), computed without overflow for INT_MIN (the
	// Receive result of PROXY_SHUTDOWN).
	long long v = (long long)value + 1;
	return (int)(v < 0 ? -v : v);
}

char *whatsMyName(void) { CHILD(NULL); RET(gs_whatsMyName()); }

char *whatsMyError(void)
{
	int e = *code_at();
	if (e < 0 || e >= (int)(sizeof texts / sizeof texts[0]))
		return "unknown error";
	return texts[e];
}

int whatsMyRecvfd(void) { CHILD(-1); RET(gs_whatsMyRecvfd()); }
int whatsMyReplyfd(void) { CHILD(-1); RET(gs_whatsMyReplyfd()); }
char *whatsMyShmPtr(void) { CHILD(NULL); RET(gs_whatsMyShmPtr()); }
char *whatsThisShmPtr(char *sender) { CHILD(NULL); RET(gs_whatsThisShmPtr(sender)); }
void simplRcopy(char *sender, void *dst, unsigned n) { CHILD(); gs_simplRcopy(sender, dst, n); hold_if_exiting(); }
void simplScopy(void *dst, unsigned n) { CHILD(); gs_simplScopy(dst, n); hold_if_exiting(); }
int simplReplySize(char *sender) { CHILD(-1); RET(gs_simplReplySize(sender)); }
void simplSetSenderParms(char *sender, SIMPL_REC *rec) { CHILD(); gs_simplSetSenderParms(sender, rec); hold_if_exiting(); }
int simplSetReceiverParms(char *name, SIMPL_REC *rec) { CHILD(-1); RET(gs_simplSetReceiverParms(name, rec)); }
int simplCheckProcess(SIMPL_REC *rec) { CHILD(-1); RET(gs_simplCheckProcess(rec)); }
char *simplBufferGet(int id, unsigned size) { CHILD(NULL); RET(gs_simplBufferGet(id, size)); }
int simplBufferSend(int id, unsigned outBytes, unsigned inBytes) { CHILD(-1); RET(gs_simplBufferSend(&gs_pace, id, outBytes, inBytes)); }
int simplBufferFree(int id) { CHILD(-1); RET(gs_simplBufferFree(id)); }
int simplReceiveInPlace(char **sender) { CHILD(-1); RET(gs_simplReceiveInPlace(sender)); }
char *simplReplyPtr(char *sender) { CHILD(NULL); RET(gs_simplReplyPtr(sender)); }
*/
import "C"

// setErr records code as the last failure (C SIMPL's sticky code).
func setErr(code int) { C.gs_set_err(C.int(code)) }

// codeNow is the last failure's code.
func codeNow() int { return int(C.gs_get_err()) }

// callMyExit runs the program's exit function, on a signal; from its
// return on, every call of the library's holds its thread (capi.go).
func callMyExit() { C.gs_call_my_exit() }

// handlersOn tells the fork handler whether the library holds the
// signals name_attach takes.
func handlersOn(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.gs_set_handlers(v)
}
