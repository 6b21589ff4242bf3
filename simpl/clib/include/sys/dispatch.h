/*
 * <sys/dispatch.h>: QNX's name_attach family, from gosimpl's C library.
 *
 * name_attach and name_detach have other meanings in C SIMPL, whose
 * functions the same library also provides, so the QNX ones are the
 * symbols gsqnx_name_attach and gsqnx_name_detach, named here by macros:
 * a QNX program that includes this header gets them unchanged.
 */
#ifndef GOSIMPL_SYS_DISPATCH_H
#define GOSIMPL_SYS_DISPATCH_H

#include <sys/neutrino.h>
#include <sys/iomsg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A dispatch handle: none exist here (name_attach takes NULL). */
typedef struct _dispatch dispatch_t;

typedef struct _name_attach {
	dispatch_t *dpp;
	int chid;
	int mntid;
	int zero[2];
} name_attach_t;

#define NAME_FLAG_ATTACH_GLOBAL 0x2
#define NAME_FLAG_DETACH_SAVEDPP 0x1

#define name_attach gsqnx_name_attach
#define name_detach gsqnx_name_detach

extern name_attach_t *gsqnx_name_attach(dispatch_t *__dpp, const char *__path, unsigned __flags);
extern int gsqnx_name_detach(name_attach_t *__attach, unsigned __flags);
extern int name_open(const char *__name, int __flags);
extern int name_close(int __coid);

#ifdef __cplusplus
}
#endif

#endif
