package proctest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// RaceEnabled tells whether this binary was built with the race detector.
func RaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// Build runs `go build` of pkgs (paths from the module's root, such as
// "./tools/fcsend") with flags, into out (a directory, ending in a path
// separator, or a file), with the race detector when this test binary has
// it, so that races in the programs a test runs fail it too. It gives up
// after timeout.
func Build(out string, timeout time.Duration, flags []string, pkgs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	mod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	args := append([]string{"build", "-o", out}, flags...)
	if RaceEnabled() {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(mod)))
	b, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("go %s did not finish within %v: %s", strings.Join(cmd.Args[1:], " "), timeout, b)
	}
	if err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}
