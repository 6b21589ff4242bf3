// Command clib is C SIMPL 3.x's library built from gosimpl: a drop-in
// libsimpl for C programs written against C SIMPL, which then compile and
// link with no change and talk to gosimpl programs over shared memory and
// to unported C SIMPL programs over C SIMPL's FIFOs. The same library has
// QNX Neutrino's message-passing API (<sys/neutrino.h>, <sys/dispatch.h>),
// made by package simpl/qnx, for QNX programs to build unchanged.
//
//	go build -buildmode=c-shared -o libsimpl.so ./simpl/clib
//	go build -buildmode=c-archive -o libsimpl.a ./simpl/clib
//	cc -I simpl/clib/include prog.c -L. -lsimpl -o prog
//
// The headers are in simpl/clib/include (QNX's under sys/).
// docs/porting-csimpl.md ("The drop-in C library") says what is the same
// as in C SIMPL and what a Go runtime inside the process changes (fork,
// signals, threads); docs/porting-qnx.md ("The C API") does the same for
// QNX's calls. Built without cgo the package is an empty program, so that
// the module builds and vets on machines without a C compiler.
package main

func main() {}
