/* <sys/siginfo.h>: QNX's sigevent names live in <sys/neutrino.h> here. */
#ifndef GOSIMPL_SYS_SIGINFO_H
#define GOSIMPL_SYS_SIGINFO_H

#include <sys/neutrino.h>

#endif
