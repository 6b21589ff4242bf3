/*
 * standardTypes.h: C SIMPL's fixed-width integer names (BOOL is not
 * defined, as in C SIMPL, where it is commented out).
 */
#ifndef GOSIMPL_STANDARDTYPES_H
#define GOSIMPL_STANDARDTYPES_H

typedef signed char INT8;
typedef unsigned char UINT8;
typedef short INT16;
typedef unsigned short UINT16;
typedef int INT32;
typedef unsigned int UINT32;

#endif
