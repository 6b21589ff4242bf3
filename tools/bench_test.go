package tools_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// fcbench -zerocopy runs end to end on both transports: its senders build
// each request in a Buffer and its echo receiver answers in place, and
// every round trip's echo is checked by the sender (a wrong reply fails
// the run). A functional test: no figure is judged, only that each
// configuration completed its round trips, 4 MiB included.
func TestBenchZeroCopy(t *testing.T) {
	for _, c := range []struct {
		transport string
		size      int
	}{{"shm", 64}, {"shm", 4 << 20}, {"fifo", 4096}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "fcbench"), "-transport", c.transport, "-zerocopy",
			"-size", strconv.Itoa(c.size), "-n", "20", "-json")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.Fatalf("%s, %d bytes: %v\n%s", c.transport, c.size, err, stderr.String())
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		lines := 0
		for sc.Scan() {
			lines++
			var r struct {
				Transport string  `json:"transport"`
				ZeroCopy  bool    `json:"zerocopy"`
				Size      int     `json:"size"`
				N         int     `json:"n"`
				Median    float64 `json:"median_us"`
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s, %d bytes: line %q: %v", c.transport, c.size, sc.Text(), err)
			}
			if r.Transport != c.transport || !r.ZeroCopy || r.Size != c.size || r.N != 20 || r.Median <= 0 {
				t.Errorf("%s, %d bytes: reported %s", c.transport, c.size, sc.Text())
			}
		}
		if lines != 1 {
			t.Errorf("%s, %d bytes: %d result lines, want 1:\n%s", c.transport, c.size, lines, out)
		}
	}
}
