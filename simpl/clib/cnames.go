//go:build cgo

package main

import "C"

// C's types under Go names, for this package's tests, which call the
// exported functions from Go and cannot import "C" themselves.
type (
	cChar = C.char
	cInt  = C.int
	cUint = C.uint

	// A C thread's pacer (gs_pace in capi.go); a test's calls from Go
	// pass one of their own.
	cLonglong = C.longlong
)
