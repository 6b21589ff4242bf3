/* <sys/netmgr.h>: only the local node exists here. */
#ifndef GOSIMPL_SYS_NETMGR_H
#define GOSIMPL_SYS_NETMGR_H

#define ND_LOCAL_NODE 0

#endif
