package testmain_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/testmain"
	"golang.org/x/sys/unix"
)

// leakEnv makes TestLeaky, in a child run of this test binary, leave
// behind what its value lists (comma-separated kinds, or "none" for
// things that all go before the check gives up).
const leakEnv = "GOSIMPL_TESTMAIN_LEAK"

func TestMain(m *testing.M) { os.Exit(testmain.Run(m)) }

// TestLeaky is the child's test: it does what leakEnv says and passes.
func TestLeaky(t *testing.T) {
	kinds := os.Getenv(leakEnv)
	if kinds == "" {
		t.Skip("run by TestReport in a child process")
	}
	for _, kind := range strings.Split(kinds, ",") {
		if err := leak(kind); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
}

// leak leaves one kind of thing behind (or, for the "late" kinds, leaves
// it only for a moment after the tests end).
func leak(kind string) error {
	switch kind {
	case "descriptor": // a raw one: an os.File's finalizer would close it
		var p [2]int
		return unix.Pipe2(p[:], unix.O_CLOEXEC)
	case "goroutine":
		block := make(chan struct{})
		go func() { <-block }()
	case "file":
		return os.WriteFile(filepath.Join(os.TempDir(), "leaked-file"), nil, 0o600)
	case "fifo":
		return unix.Mkfifo(filepath.Join(os.Getenv("FIFO_PATH"), "LEAKED."+strconv.Itoa(os.Getpid())), 0o600)
	case "devshm":
		return os.WriteFile("/dev/shm/testmain-leak-"+strconv.Itoa(os.Getpid()), nil, 0o600)
	case "segment":
		_, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		return err
	case "mapping":
		fd, err := unix.MemfdCreate("testmain-leak", unix.MFD_CLOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Ftruncate(fd, 4096); err != nil {
			return err
		}
		_, err = unix.Mmap(fd, 0, 4096, unix.PROT_READ, unix.MAP_SHARED)
		return err
	case "process":
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return err
		}
		testmain.Track(cmd.Process.Pid)
		cmd.Process.Kill() // a zombie: never waited for
	case "late goroutine": // ends a moment after the tests
		go func() { time.Sleep(100 * time.Millisecond) }()
	case "dropped file": // closed by its finalizer
		_, err := os.Open(os.DevNull)
		return err
	case "signal": // os/signal's goroutine stays for good, by design
		signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR2)
	default:
		return fmt.Errorf("no leak %q", kind)
	}
	return nil
}

// child runs TestLeaky in a child process leaking kinds, and returns its
// stderr and exit status.
func child(t *testing.T, kinds string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLeaky$", "-test.count=1")
	fifoDir := t.TempDir()
	cmd.Env = append(os.Environ(), leakEnv+"="+kinds, "FIFO_PATH="+fifoDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	// Clean up what the child could not: its segments (marked for removal
	// it goes once nobody has it attached), its /dev/shm file.
	os.Remove("/dev/shm/testmain-leak-" + strconv.Itoa(cmd.Process.Pid))
	segs, _ := testmain.Segments(cmd.Process.Pid)
	for _, s := range segs {
		unix.SysvShmCtl(s.ID, unix.IPC_RMID, nil)
	}
	return stderr.String(), code
}

// A child that leaves one of each kind fails, and its report names each.
func TestReport(t *testing.T) {
	report, code := child(t, "descriptor,goroutine,file,fifo,devshm,segment,mapping,process")
	if code == 0 {
		t.Fatalf("the leaky child passed; stderr:\n%s", report)
	}
	for _, want := range []string{
		"FAIL: leak check",
		"descriptor ",
		"pipe:[",
		"goroutine ",
		"testmain_test.leak", // the leaked goroutine's stack
		"file ", "leaked-file",
		"FIFO ", "LEAKED.",
		"/dev/shm/testmain-leak-",
		"System V segment ",
		"mapping ", "memfd:testmain-leak",
		"child process ", "not reaped",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q:\n%s", want, report)
		}
	}
}

// What goes within the settling time, and os/signal's goroutine, are not
// leaks.
func TestNoReport(t *testing.T) {
	report, code := child(t, "late goroutine,dropped file,signal")
	if code != 0 {
		t.Fatalf("child exited %d; stderr:\n%s", code, report)
	}
}
