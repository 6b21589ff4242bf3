/*
 * <sys/iomsg.h>: the resource-manager message types a name_attach server
 * sees (name_open's _IO_CONNECT), from gosimpl's C library.
 */
#ifndef GOSIMPL_SYS_IOMSG_H
#define GOSIMPL_SYS_IOMSG_H

#include <stdint.h>

#define _IO_BASE 0x100
#define _IO_CONNECT 0x100
#define _IO_MAX 0x1FF

#define _IO_CONNECT_COMBINE 0
#define _IO_CONNECT_COMBINE_CLOSE 1
#define _IO_CONNECT_OPEN 2

#define _FTYPE_NAME 12

/* What name_open sends first: path at offset 40. */
struct _io_connect {
	uint16_t type;
	uint16_t subtype;
	uint32_t file_type;
	uint16_t reply_max;
	uint16_t entry_max;
	uint32_t key;
	uint32_t handle;
	uint32_t ioflag;
	uint32_t mode;
	uint16_t sflag;
	uint16_t access;
	uint16_t zero;
	uint16_t path_len;
	uint8_t eflag;
	uint8_t extra_type;
	uint16_t extra_len;
	char path[];
};

#endif
