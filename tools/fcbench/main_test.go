package main

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/testmain"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// P99 is the nearest rank, as fcloop's: the ceil(0.99·n)-th value, so
// that 99% of the values are at or below it; not one rank higher.
func TestRankIndex(t *testing.T) {
	for _, c := range []struct{ n, num, den, want int }{
		{100, 99, 100, 98},   // the 99th of 100, not the maximum
		{1000, 99, 100, 989}, // the 990th
		{150, 99, 100, 148},  // ceil(148.5) = 149th
		{1, 99, 100, 0},
		{2, 1, 2, 0},
		{1000, 999, 1000, 998},
		{3, 99, 100, 2},
	} {
		if got := rankIndex(c.n, c.num, c.den); got != c.want {
			t.Errorf("rankIndex(%d, %d/%d) = %d, want %d", c.n, c.num, c.den, got, c.want)
		}
	}
}

// processCPU reads another process's CPU time: a child that spins has
// used some, and more later.
func TestProcessCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	first, err := processCPU(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		now, err := processCPU(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if now > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a spinning child's CPU time stayed %v for 10s", now)
		}
		time.Sleep(time.Millisecond) // polling its CPU time
	}
	if d, err := processCPU(0); d != 0 || err != nil {
		t.Errorf("processCPU(0) = %v, %v; want 0, nil", d, err)
	}
}
