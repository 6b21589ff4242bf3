package fifo

import (
	"testing"

	"github.com/gosimpl/gosimpl/transport/transporttest"
)

// The FIFO transport keeps the contract of package transport.
func TestConformance(t *testing.T) { transporttest.Run(t, Transport{}) }
