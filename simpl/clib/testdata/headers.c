/*
 * headers: every header of the library in one translation unit, for
 * TestHeaders to compile under each C standard (strict ISO modes too,
 * -pedantic, warnings as errors). It defines the logger globals, as a
 * program using loggerVars.h does once.
 */
#define _ALLOC
#include "simpl.h"
#include "simplDefs.h"
#include "simplProto.h"
#include "simplmiscProto.h"
#include "standardTypes.h"
#include "loggerVars.h"
#include "loggerProto.h"

int main(void)
{
	FCMSG_REC rec;
	rec.nbytes = 0;
	return whatsMyError() == 0 || rec.nbytes != 0 || logger_ID != 0;
}
