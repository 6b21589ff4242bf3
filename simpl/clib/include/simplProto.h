/*
 * simplProto.h: the C SIMPL 3.x functions, as gosimpl's drop-in library
 * provides them. Return values and error codes follow C SIMPL 3.3.8's
 * code (docs/porting-csimpl.md lists the few places where this library has to
 * differ, and why).
 */
#ifndef GOSIMPL_SIMPLPROTO_H
#define GOSIMPL_SIMPLPROTO_H

#include "simplDefs.h"

#ifdef __cplusplus
extern "C" {
#endif

int name_attach(const char *name, void (*myExit)());
int name_detach(void);
int child_detach(void);
int sur_detach(int id);
int name_locate(const char *name);
int Send(int id, void *out, void *in, unsigned outBytes, unsigned inBytes);
int Receive(char **sender, void *in, unsigned maxBytes);
int Reply(char *sender, void *out, unsigned nbytes);
int ReplyError(char *sender);
int Relay(char *sender, int id);
int Trigger(int id, int proxy);
int returnProxy(int value);
char *whatsMyName(void);
char *whatsMyError(void);
int whatsMyRecvfd(void);
int whatsMyReplyfd(void);
char *whatsMyShmPtr(void);
char *whatsThisShmPtr(char *sender);
void simplRcopy(char *sender, void *dst, unsigned n);
void simplScopy(void *dst, unsigned n);
int simplReplySize(char *sender);
void simplSetSenderParms(char *sender, SIMPL_REC *rec);
int simplSetReceiverParms(char *name, SIMPL_REC *rec);
int simplCheckProcess(SIMPL_REC *rec);

#ifdef __cplusplus
}
#endif

#endif
