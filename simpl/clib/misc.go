//go:build cgo

package main

// C SIMPL's libsimplmisc helpers that programs call (simplmiscProto.h),
// in C: plain computations with no SIMPL state. Weak, so that a program's
// own function of the same name wins, even linked with libsimpl.a.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#include <stdio.h>
#include <string.h>
#include "simplmiscProto.h"

#define WEAK __attribute__((weak))

// POSIX cksum(1): CRC-32 (polynomial 0x04C11DB7, most significant bit
// first, no reflection) of the bytes, then of the length in as few bytes
// as hold it, least significant first; the result complemented.
static unsigned long crc_byte(unsigned long crc, unsigned char b)
{
	crc ^= (unsigned long)b << 24;
	for (int i = 0; i < 8; i++)
		crc = (crc & 0x80000000UL) ? ((crc << 1) ^ 0x04C11DB7UL) & 0xFFFFFFFFUL : (crc << 1) & 0xFFFFFFFFUL;
	return crc;
}

WEAK unsigned long cksum(char *file)
{
	FILE *f = file != NULL ? fopen(file, "rb") : NULL;
	if (f == NULL)
		return 0;
	unsigned long crc = 0, len = 0;
	unsigned char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		for (size_t i = 0; i < n; i++)
			crc = crc_byte(crc, buf[i]);
		len += n;
	}
	fclose(f);
	for (; len != 0; len >>= 8)
		crc = crc_byte(crc, (unsigned char)(len & 0xFF));
	return ~crc & 0xFFFFFFFFUL;
}

WEAK long atoh(char *s)
{
	long v = 0;
	for (; s != NULL && *s; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * 16 + d;
	}
	return v;
}

WEAK long power(int base, int n)
{
	long v = 1;
	for (int i = 0; i < n; i++)
		v *= base;
	return v;
}

// width is how many nibbles a clip leaves of a value of full nibbles.
static int width(int clip, int full)
{
	return clip > 0 && 2 * clip < full ? 2 * clip : full;
}

static void put_nibbles(unsigned long v, char *s, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 4)
		s[i] = (char)(v & 0xF);
}

static unsigned long get_nibbles(const char *s, int n)
{
	unsigned long v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 4) + (unsigned char)(s[i] & 0xF);
	return v;
}

WEAK void btosUI(unsigned value, char *s, int clip) { put_nibbles(value, s, width(clip, 8)); }
WEAK void btosSI(int value, char *s, int clip) { put_nibbles((unsigned)value, s, width(clip, 8)); }
WEAK void btosUSI(unsigned short value, char *s, int clip) { put_nibbles(value, s, width(clip, 4)); }
WEAK void btosSSI(short value, char *s, int clip) { put_nibbles((unsigned short)value, s, width(clip, 4)); }

WEAK void btosF(float value, char *s, int clip)
{
	unsigned bits;
	memcpy(&bits, &value, sizeof bits);
	put_nibbles(bits, s, width(clip, 8));
}

WEAK void btos4(unsigned *value, char *s, int clip)
{
	for (int i = width(clip, 8) - 1; i >= 0; i--, *value >>= 4)
		s[i] = (char)(*value & 0xF);
}

WEAK void btos2(unsigned short *value, char *s, int clip)
{
	for (int i = width(clip, 4) - 1; i >= 0; i--, *value >>= 4)
		s[i] = (char)(*value & 0xF);
}

WEAK unsigned stobUI(char *s, int clip) { return (unsigned)get_nibbles(s, width(clip, 8)); }
WEAK int stobSI(char *s, int clip) { return (int)(unsigned)get_nibbles(s, width(clip, 8)); }
WEAK unsigned short stobUSI(char *s, int clip) { return (unsigned short)get_nibbles(s, width(clip, 4)); }
WEAK short stobSSI(char *s, int clip) { return (short)(unsigned short)get_nibbles(s, width(clip, 4)); }

WEAK float stobF(char *s, int clip)
{
	unsigned bits = (unsigned)get_nibbles(s, width(clip, 8));
	float f;
	memcpy(&f, &bits, sizeof f);
	return f;
}
*/
import "C"
