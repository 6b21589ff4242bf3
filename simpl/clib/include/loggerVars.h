/*
 * loggerVars.h: C SIMPL's logger constants and the globals its logging
 * helpers use. As in C SIMPL, the program defines the globals: exactly
 * one of its files does
 *
 *	#define _ALLOC
 *	#include "loggerVars.h"
 *
 * and the others include it without, which declares them extern.
 */
#ifndef GOSIMPL_LOGGERVARS_H
#define GOSIMPL_LOGGERVARS_H

#include "simpl.h"

#define TRACE_MAX_BUFFER_SIZE 1024
#define LOGGER_BUFFER_SIZE 200
#define LOGMASK_MARKER 0x01
#define LOGMASK_MESSAGE 0x02
#define LOGMASK_FUNCTION_IO 0x04
#define LOGMASK_INTERNAL_STRUCTURE 0x08
#define LOGMASK_MISCELLANEOUS 0x100

#ifndef _ALLOC
#define _ALLOC extern
#endif

_ALLOC int logger_ID;
_ALLOC char logBuf[LOGGER_BUFFER_SIZE];
_ALLOC char loggerArea[TRACE_MAX_BUFFER_SIZE];

#endif
