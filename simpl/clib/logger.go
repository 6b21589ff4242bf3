//go:build cgo

package main

// C SIMPL's libsimpllog helpers (loggerProto.h), in C over the public
// API. The globals they use are the program's (loggerVars.h); the library
// refers to them weakly, so a program that does not log need not define
// them, and these helpers then fail with -1.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include "loggerVars.h"
#include "loggerProto.h"

#pragma weak logger_ID
#pragma weak loggerArea

__attribute__((weak)) int is_logger_upx(char *name)
{
	if (name == NULL || name[0] == 0)
		return -1;
	return name_locate(name);
}

__attribute__((weak)) int logMsgx(char *file, char *who, char *text)
{
	if (&logger_ID == NULL || loggerArea == NULL)
		return -1;
	snprintf(loggerArea, TRACE_MAX_BUFFER_SIZE, "(%s) %s:%s", file ? file : "", who ? who : "", text ? text : "");
	if (logger_ID == -1)
		return -1;
	int r = Send(logger_ID, loggerArea, NULL, LOGGER_BUFFER_SIZE, 0);
	if (r == -1)
		logger_ID = -1;
	return r;
}

__attribute__((weak)) int fcLogx(char *file, char *func, unsigned globalMask, unsigned userMask, char *fmt, ...)
{
	if (&logger_ID == NULL || loggerArea == NULL)
		return -1;
	if (!(globalMask & userMask) || logger_ID == -1)
		return 0;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	memset(loggerArea, 0, LOGGER_BUFFER_SIZE);
	int n = snprintf(loggerArea, LOGGER_BUFFER_SIZE, "[%-8.8s:%-12.12s] %02d%02d%02d.%03ld ",
			 file ? file : "", func ? func : "", tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (long)(tv.tv_usec / 1000));
	if (n < 0 || n >= LOGGER_BUFFER_SIZE)
		return -1;
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		// Cut to the buffer, as a log line may be.
		if (vsnprintf(loggerArea + n, LOGGER_BUFFER_SIZE - n, fmt, ap) < 0) {
			va_end(ap);
			return -1;
		}
		va_end(ap);
	}
	int r = Send(logger_ID, loggerArea, NULL, LOGGER_BUFFER_SIZE, 0);
	if (r == -1)
		logger_ID = -1;
	return r;
}
*/
import "C"
