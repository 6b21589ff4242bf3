/*
 * simplmiscProto.h: the helpers of C SIMPL's libsimplmisc that programs
 * call, provided by gosimpl's libsimpl itself (link with -lsimpl alone).
 * They are weak symbols there, so a program that defines a function of
 * the same name (power, say) keeps its own, with either library form.
 *
 * btos*: write a value as raw nibbles (0..15, not ASCII digits), most
 * significant first: 8 for a 32-bit value, 4 for a 16-bit one; a clip of
 * 1..3 (32-bit) or 1 (16-bit) writes only the low 2*clip nibbles, 0 all.
 * No NUL is written. stob* read them back (value = value<<4 + nibble);
 * there is no sign extension of clipped values, as in C SIMPL. btos4 and
 * btos2 shift the value they point at as they go (it ends 0 unclipped).
 */
#ifndef GOSIMPL_SIMPLMISCPROTO_H
#define GOSIMPL_SIMPLMISCPROTO_H

#ifdef __cplusplus
extern "C" {
#endif

unsigned long cksum(char *file);
long atoh(char *s);
long power(int base, int n);
void btosUI(unsigned value, char *s, int clip);
void btosSI(int value, char *s, int clip);
void btosUSI(unsigned short value, char *s, int clip);
void btosSSI(short value, char *s, int clip);
void btosF(float value, char *s, int clip);
void btos4(unsigned *value, char *s, int clip);
void btos2(unsigned short *value, char *s, int clip);
unsigned stobUI(char *s, int clip);
int stobSI(char *s, int clip);
unsigned short stobUSI(char *s, int clip);
short stobSSI(char *s, int clip);
float stobF(char *s, int clip);

#ifdef __cplusplus
}
#endif

#endif
