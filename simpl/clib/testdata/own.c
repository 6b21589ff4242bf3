/*
 * own: a program with its own power(), a name libsimpl's libsimplmisc
 * helpers also define (weakly): it links, against libsimpl.so or
 * libsimpl.a, and its own definition is the one called. Prints
 * "power 42 TEXT" where TEXT is whatsMyError() (libsimpl is used).
 */
#include <stdio.h>
#include "simpl.h"

long power(int base, int n)
{
	(void)base;
	(void)n;
	return 42;
}

int main(void)
{
	printf("power %ld %s\n", power(2, 3), whatsMyError());
	return 0;
}
