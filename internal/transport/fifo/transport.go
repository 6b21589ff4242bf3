package fifo

import "github.com/gosimpl/gosimpl/transport"

// Name is the FIFO transport's name.
const Name = "fifo"

// Transport is the C SIMPL 3.x FIFO transport, as registered with the
// transport package. It ranks last: its receive FIFO publishes the name,
// so it is made after every other transport listens, and it is dialled
// when no other transport reaches the receiver.
type Transport struct{}

func init() { transport.Register(Transport{}) }

// Name is "fifo".
func (Transport) Name() string { return Name }

// Rank puts the FIFO transport last.
func (Transport) Rank() int { return 100 }

// Listen attaches cfg.Name: its receive FIFO appears in cfg.Registry.
func (Transport) Listen(cfg transport.Config) (transport.Endpoint, error) {
	e, err := Attach(cfg.Name, Options{
		Registry:      cfg.Registry,
		Perm:          cfg.Perm,
		MaxMessage:    cfg.MaxMessage,
		Queue:         cfg.Queue,
		ThreadWait:    cfg.ThreadWait,
		ThreadReceive: cfg.ThreadReceive,
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}
