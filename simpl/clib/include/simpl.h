/*
 * simpl.h: the C SIMPL 3.x application interface, provided by gosimpl's
 * drop-in library (libsimpl.so or libsimpl.a built from simpl/clib).
 * As in C SIMPL, this header only includes simplProto.h.
 */
#ifndef GOSIMPL_SIMPL_H
#define GOSIMPL_SIMPL_H

#include "simplProto.h"

#endif
