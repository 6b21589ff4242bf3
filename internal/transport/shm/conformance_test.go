//go:build !race

package shm

import (
	"testing"

	"github.com/gosimpl/gosimpl/transport/transporttest"
)

// The shm transport keeps the contract of package transport. Without the
// race detector, which cannot see its hand-offs through shared memory.
func TestConformance(t *testing.T) { transporttest.Run(t, Transport{}) }
