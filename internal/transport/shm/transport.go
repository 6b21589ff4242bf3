package shm

import (
	"os"

	"github.com/gosimpl/gosimpl/transport"
)

// Name is the shm transport's name.
const Name = "shm"

// Transport is the shared-memory transport between gosimpl processes, as
// registered with the transport package (Rank 10: tried before FIFOs).
type Transport struct{}

func init() { transport.Register(Transport{}) }

// Name is "shm".
func (Transport) Name() string { return Name }

// Rank puts shared memory before the FIFO transport.
func (Transport) Rank() int { return 10 }

// Listen starts an Endpoint for cfg.Name at its abstract address in
// cfg.Registry's directory, as the Source of cfg.Queue.
func (Transport) Listen(cfg transport.Config) (transport.Endpoint, error) {
	dir := cfg.Registry.Dir()
	e, err := listenAt(Address(dir, cfg.Name, os.Getpid()), dir, cfg.Name, Options{
		Perm:       cfg.Perm,
		MaxMessage: cfg.MaxMessage,
		NoSpin:     cfg.NoSpin,
		Priority:   cfg.Priority,
		Queue:      cfg.Queue,
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}
