//go:build race

package shm

import (
	"os"
	"testing"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

// TestMain of a race build, which has only the tests that touch no shared
// memory: it checks, once they are done, that they left nothing behind.
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }
