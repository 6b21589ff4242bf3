package locatorprom_test

import (
	"os"
	"testing"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

// TestMain checks, once the tests are done, that they left nothing behind.
func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }
