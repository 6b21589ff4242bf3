/*
 * misc: checks the libsimplmisc helpers (simplmiscProto.h) from C, as
 * C SIMPL's tcp test programs and benchmark receiver use them. Written
 * for gosimpl's drop-in library tests.
 *
 *   misc FILE   print "cksum N LEN" (cksum(FILE) and the file's length,
 *               to compare with cksum(1)), then "ok CHECK" or
 *               "FAIL CHECK: why" for each check, then "done" or "failed"
 */
#include <float.h>
#include "simpl.h"
#include "simplmiscProto.h"
#include "standardTypes.h"
#include "common.h"

static int failures;

static void check(const char *what, int ok, const char *why)
{
	if (ok) {
		printf("ok %s\n", what);
	} else {
		printf("FAIL %s: %s\n", what, why);
		failures++;
	}
}

int main(int argc, char **argv)
{
	char s[8];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: misc FILE\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	long len = 0;
	if (f != NULL) {
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		fclose(f);
	}
	printf("cksum %lu %ld\n", cksum(argv[1]), len);
	check("cksum of no file", cksum("/nonexistent/file") == 0 && cksum(NULL) == 0, "0");

	btosUI(0x12345678u, s, 0);
	int ms = 1;
	for (int i = 0; i < 8; i++)
		ms &= s[i] == i + 1;
	check("btosUI nibbles", ms, "0x12345678 -> 1,2,...,8: raw nibbles, most significant first");
	btosUI(0x12345678u, s, 1);
	check("btosUI clip", s[0] == 7 && s[1] == 8 && stobUI(s, 1) == 0x78, "clip 1: the low 2 nibbles");
	unsigned uis[] = {0, 1, 0xFFFFFFFFu, 0x80000000u, 0xDEADBEEFu};
	int rt = 1;
	for (unsigned i = 0; i < sizeof uis / sizeof uis[0]; i++) {
		btosUI(uis[i], s, 0);
		rt &= stobUI(s, 0) == uis[i];
	}
	check("UI round trip", rt, "stobUI(btosUI(v)) == v");
	int sis[] = {0, -1, 1, -2147483647 - 1, 2147483647};
	rt = 1;
	for (unsigned i = 0; i < sizeof sis / sizeof sis[0]; i++) {
		btosSI(sis[i], s, 0);
		rt &= stobSI(s, 0) == sis[i];
	}
	check("SI round trip", rt, "stobSI(btosSI(v)) == v");
	short sss[] = {0, -1, 32767, -32768, 1234};
	rt = 1;
	for (unsigned i = 0; i < sizeof sss / sizeof sss[0]; i++) {
		btosSSI(sss[i], s, 0);
		rt &= stobSSI(s, 0) == sss[i];
		btosUSI((unsigned short)sss[i], s, 0);
		rt &= stobUSI(s, 0) == (unsigned short)sss[i];
	}
	check("SSI/USI round trip", rt, "16-bit values back");
	float fs[] = {0.0f, -1.5f, 3.25e10f, FLT_MIN, FLT_MAX};
	rt = 1;
	for (unsigned i = 0; i < sizeof fs / sizeof fs[0]; i++) {
		btosF(fs[i], s, 0);
		rt &= stobF(s, 0) == fs[i];
	}
	check("F round trip", rt, "stobF(btosF(v)) == v");
	unsigned u = 0xCAFEF00Du;
	btos4(&u, s, 0);
	check("btos4", u == 0 && stobUI(s, 0) == 0xCAFEF00Du, "nibbles written, value shifted to 0");
	unsigned short us = 0xBEEF;
	btos2(&us, s, 0);
	check("btos2", us == 0 && stobUSI(s, 0) == 0xBEEF, "nibbles written, value shifted to 0");
	check("atoh", atoh("1aF") == 0x1AF && atoh("ff zz") == 0xFF && atoh("") == 0, "hex digits up to the first other byte");
	check("power", power(2, 10) == 1024 && power(10, 0) == 1 && power(3, 3) == 27, "integer powers");
	INT32 i32 = -1;
	UINT16 u16 = 65535;
	check("standardTypes", sizeof i32 == 4 && sizeof u16 == 2 && i32 < 0, "INT32 and UINT16");
	printf(failures ? "failed\n" : "done\n");
	return failures ? 1 : 0;
}
