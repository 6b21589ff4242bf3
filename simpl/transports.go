package simpl

// The built-in transports register themselves with the transport
// package; this is the one place simpl names them. A transport of another
// package joins every Channel the same way: a transport.Register call in
// its init, and an import of the package.
import (
	_ "github.com/gosimpl/gosimpl/internal/transport/fifo"
	_ "github.com/gosimpl/gosimpl/internal/transport/remote"
	_ "github.com/gosimpl/gosimpl/internal/transport/shm"
)
