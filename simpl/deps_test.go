package simpl_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCoreDeps: a program that imports only simpl links no Prometheus and
// no protobuf (they come with simpl/simplprom), and neither does the
// echo server that docs/sizes.sh measures.
func TestCoreDeps(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "list", "-deps", ".", "./internal/echo").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages, want the dozens simpl needs: %q", len(deps), deps)
	}
	for _, p := range deps {
		if strings.Contains(p, "prometheus") || strings.Contains(p, "protobuf") {
			t.Errorf("simpl or its echo server links %s", p)
		}
	}
}
