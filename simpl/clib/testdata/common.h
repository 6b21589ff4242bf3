/*
 * common.h: what the sample programs share. The request pattern and the
 * reply rule are those of internal/transport/fifo/testdata/cpeer.c (an
 * unported C SIMPL peer speaking the FIFO wire), so that these programs
 * and that one can be paired in either role:
 *
 *   pattern(n)[i] = (i*7 + n) & 0xFF
 *   a 1-byte request "X"  is answered with ReplyError
 *   any other request     is answered with every byte +1, then the 16
 *                         bytes 0xA0..0xAF; a reply larger than the
 *                         sender accepts is refused (error-replied)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define TAIL 16

static inline unsigned char pat(long i, long n) { return (unsigned char)((i * 7 + n) & 0xFF); }

static inline uint32_t fnv1a(const unsigned char *p, long n)
{
	uint32_t h = 2166136261u;
	for (long i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The reply to req[0..n): its length, written at out. */
static inline long rule(const unsigned char *req, long n, unsigned char *out)
{
	for (long i = 0; i < n; i++)
		out[i] = (unsigned char)(req[i] + 1);
	for (int j = 0; j < TAIL; j++)
		out[n + j] = (unsigned char)(0xA0 + j);
	return n + TAIL;
}

/* Wait until stdin ends or gives a line: the test's go-ahead. */
static inline void wait_stdin(void)
{
	char line[64];
	fgets(line, sizeof line, stdin);
}
