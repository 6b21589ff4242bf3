/*
 * qnx_common.h: what the QNX sample programs share. Written for these
 * tests from the descriptions in QNX's documentation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The command a test message starts with: a NUL-terminated word in a
 * 16-byte header, the payload (if any) after it. */
#define CMDLEN 16

static inline unsigned char qpat(long i) { return (unsigned char)((i * 13 + 7) & 0xFF); }

static inline uint32_t qfnv(const unsigned char *p, long n, uint32_t h)
{
	for (long i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}
#define QFNV0 2166136261u

/* errname is errno's name, for output the tests compare. */
static inline const char *errname(int e)
{
	switch (e) {
	case 0: return "EOK";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EBUSY: return "EBUSY";
	case EFAULT: return "EFAULT";
	case EINTR: return "EINTR";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case ENOSYS: return "ENOSYS";
	case ENOTSUP: return "ENOTSUP";
	case EPERM: return "EPERM";
	case ESRCH: return "ESRCH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EBADMSG: return "ESRVRFAULT";
	}
	return "E?";
}

static int failures __attribute__((unused));

/* check prints "ok what" when a call returned want_r with errno want_e
 * (0: errno not looked at), else a FAIL line. */
#define check(what, call, want_r, want_e)                                                  \
	do {                                                                                \
		errno = 0;                                                                  \
		long r_ = (long)(call);                                                     \
		int e_ = errno;                                                             \
		if (r_ == (long)(want_r) && (want_e == 0 || e_ == want_e))                  \
			printf("ok %s\n", what);                                            \
		else {                                                                      \
			printf("FAIL %s: got %ld %s, want %ld %s\n", what, r_, errname(e_),  \
			       (long)(want_r), errname(want_e));                            \
			failures++;                                                         \
		}                                                                           \
	} while (0)
