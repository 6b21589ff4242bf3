package naming

import "errors"

// The naming errors. The transport and simpl packages re-export them, so
// errors.Is finds them under any of the three names.
var (
	// ErrBadName: a name is empty, longer than 31 bytes, holds a byte that
	// cannot appear in a FIFO file name, or has more than two colons.
	ErrBadName = errors.New("simpl: bad name")
	// ErrNotFound: no live process has attached the name.
	ErrNotFound = errors.New("simpl: name not found")
)
