/*
 * loggerProto.h: C SIMPL's logging helpers (its libsimpllog), provided by
 * gosimpl's libsimpl itself. They log to an fclogger-style receiver
 * located with is_logger_upx, through the program's logger_ID and
 * loggerArea (loggerVars.h).
 */
#ifndef GOSIMPL_LOGGERPROTO_H
#define GOSIMPL_LOGGERPROTO_H

#include "simpl.h"

#ifdef __cplusplus
extern "C" {
#endif

int is_logger_upx(char *name);
int logMsgx(char *file, char *who, char *text);
int fcLogx(char *file, char *func, unsigned globalMask, unsigned userMask, char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif
