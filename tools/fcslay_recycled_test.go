package tools_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/naming"
	"golang.org/x/sys/unix"
)

// fcslay holds the process that owns a name with a pidfd and then checks
// that the pid it holds still names that process: one that took the pid
// over between the look-up and the pidfd is not signalled.
//
// The test makes that happen, deterministically, in a pid and mount
// namespace of its own (a helper, the test binary, is its init): fcrecv
// attaches VICTIM; fcslay VICTIM runs under a seccomp filter that stops it
// in its pidfd_open of fcrecv's pid (after its look-up found fcrecv
// alive); while it is stopped the helper SIGKILLs fcrecv (its FIFOs stay,
// as a crash leaves them), reaps it, and starts an unrelated process
// (sleep) with the same pid, over ns_last_pid, more than reuseSlack after
// the FIFO was made; then lets pidfd_open go on, which opens the sleep.

// fixSlayRole names the helper this file's init runs instead of the
// tests.
const fixSlayRole = "GOSIMPL_FIXTEST_SLAY_ROLE"

func init() {
	if os.Getenv(fixSlayRole) == "recycled" {
		res, err := fixSlayRecycled()
		if err != nil {
			res.Err = err.Error()
		}
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		os.Exit(0)
	}
}

// fixSlayResult is what the helper saw.
type fixSlayResult struct {
	PID       int    // the pid fcrecv had and the sleep took over
	Recycled  bool   // the sleep had the pid when fcslay went on
	Code      int    // fcslay's exit code
	Stdout    string // fcslay's
	Stderr    string
	SleepGone string // how the sleep ended before the helper killed it, "" if it ran on
	Err       string // the helper's own failure
}

// fixSlayRecycled is the helper: pid 1 of a new pid namespace, in a
// new mount namespace.
func fixSlayRecycled() (res fixSlayResult, err error) {
	if os.Getpid() != 1 {
		return res, fmt.Errorf("pid %d, not 1 of a new pid namespace", os.Getpid())
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return res, fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		return res, fmt.Errorf("mount this namespace's /proc: %w", err)
	}
	bin, dir := os.Getenv("FIXTEST_BIN"), os.Getenv("FIFO_PATH")
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		return res, err
	}

	// The holder of VICTIM.
	holder := exec.Command(filepath.Join(bin, "fcrecv"), "-n", "VICTIM")
	out, err := holder.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := holder.Start(); err != nil {
		return res, err
	}
	defer func() {
		if holder.ProcessState == nil {
			holder.Process.Kill()
			holder.Wait()
		}
	}()
	pid := holder.Process.Pid
	res.PID = pid
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if want := fmt.Sprintf("attached VICTIM pid %d\n", pid); l != want {
			return res, fmt.Errorf("fcrecv printed %q, want %q", l, want)
		}
	case <-time.After(20 * time.Second):
		return res, errors.New("fcrecv did not attach within 20 s")
	}
	reg, err := naming.Open(dir)
	if err != nil {
		return res, err
	}
	defer func() {
		os.Remove(reg.ReceivePath("VICTIM", pid))
		os.Remove(reg.ReplyPath("VICTIM", pid))
	}()
	created, err := naming.Created(reg.ReceivePath("VICTIM", pid))
	if err != nil {
		return res, err
	}

	// fcslay, started from a thread whose filter it inherits.
	type started struct {
		cmd      *exec.Cmd
		listener int
		err      error
	}
	st := make(chan started, 1)
	var slayOut, slayErr bytes.Buffer
	go func() {
		runtime.LockOSThread() // never unlocked: the filtered thread ends with this goroutine
		lfd, err := fixStopPidfdOpen(pid)
		if err != nil {
			st <- started{err: fmt.Errorf("seccomp filter: %w", err)}
			return
		}
		cmd := exec.Command(filepath.Join(bin, "fcslay"), "VICTIM")
		cmd.Stdout, cmd.Stderr = &slayOut, &slayErr
		if err := cmd.Start(); err != nil {
			unix.Close(lfd)
			st <- started{err: err}
			return
		}
		st <- started{cmd: cmd, listener: lfd}
	}()
	s := <-st
	if s.err != nil {
		return res, s.err
	}
	slay := s.cmd
	slayDone := make(chan error, 1)
	go func() { slayDone <- slay.Wait() }()
	defer func() {
		unix.Close(s.listener)
		if slay.ProcessState == nil {
			slay.Process.Kill()
			<-slayDone
		}
	}()

	// fcslay stopped in pidfd_open(pid).
	var n fixNotif
	pfd := []unix.PollFd{{Fd: int32(s.listener), Events: unix.POLLIN}}
	for {
		k, err := unix.Poll(pfd, 20_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return res, err
		}
		if k == 0 {
			return res, errors.New("fcslay made no pidfd_open of the holder within 20 s")
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			<-slayDone
			return res, fmt.Errorf("fcslay exited (%v) without a pidfd_open of the holder; stdout %q, stderr %q", slay.ProcessState, slayOut.String(), slayErr.String())
		}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.listener), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); errno != 0 {
			if errno == unix.ENOENT || errno == unix.EINTR {
				continue
			}
			return res, fmt.Errorf("SECCOMP_IOCTL_NOTIF_RECV: %w", errno)
		}
		break
	}

	// The holder dies; the pid passes, once the FIFO is older than the
	// registry's allowance for coarse clocks (2 s, and up to 1 s of boot
	// time rounding), to an unrelated process.
	holder.Process.Kill()
	holder.Wait()
	time.Sleep(time.Until(created.Add(3500 * time.Millisecond)))
	var sleeper *exec.Cmd
	for try := 0; try < 100 && sleeper == nil; try++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return res, fmt.Errorf("ns_last_pid: %w", err)
		}
		c := exec.Command(sleepBin, "600")
		if err := c.Start(); err != nil {
			return res, err
		}
		if c.Process.Pid == pid {
			sleeper = c
			break
		}
		c.Process.Kill()
		c.Wait()
	}
	if sleeper == nil {
		return res, fmt.Errorf("no process took pid %d over in 100 tries", pid)
	}
	res.Recycled = true
	reaped := false
	defer func() {
		if !reaped {
			sleeper.Process.Kill()
			sleeper.Wait()
		}
	}()
	resp := fixResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.listener), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); errno != 0 {
		return res, fmt.Errorf("SECCOMP_IOCTL_NOTIF_SEND: %w", errno)
	}
	select {
	case <-slayDone:
	case <-time.After(20 * time.Second):
		return res, errors.New("fcslay did not exit within 20 s of its pidfd_open")
	}
	res.Code = slay.ProcessState.ExitCode()
	res.Stdout, res.Stderr = slayOut.String(), slayErr.String()
	var ws unix.WaitStatus
	if p, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && p == pid {
		reaped = true
		res.SleepGone = fmt.Sprintf("exit status %d", ws.ExitStatus())
		if ws.Signaled() {
			res.SleepGone = fmt.Sprintf("killed by %v", ws.Signal())
		}
	}
	return res, nil
}

// fixNotif and fixResp are the kernel's struct seccomp_notif
// (with its struct seccomp_data) and struct seccomp_notif_resp.
type fixNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type fixResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// fixStopPidfdOpen installs on the calling thread, and so on the
// processes it starts, a filter that hands every pidfd_open(pid, ...) to
// the listener it returns.
func fixStopPidfdOpen(pid int) (int, error) {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return -1, fmt.Errorf("no filter for %s", runtime.GOARCH)
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		{Code: ld, K: 4},                            // 0: arch
		{Code: jeq, Jt: 1, K: arch},                 // 1
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},      // 2
		{Code: ld, K: 0},                            // 3: nr
		{Code: jeq, Jf: 3, K: unix.SYS_PIDFD_OPEN},  // 4
		{Code: ld, K: 16},                           // 5: args[0], low half
		{Code: jeq, Jf: 1, K: uint32(pid)},          // 6
		{Code: ret, K: unix.SECCOMP_RET_USER_NOTIF}, // 7
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},      // 8
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// fcslay does not signal a process that took the pid of the name's owner
// over after fcslay looked the name up: it says the owner exited, exits
// 1, and the other process runs on.
func TestSlayRecycledPID(t *testing.T) {
	if os.Geteuid() != 0 {
		why := fmt.Sprintf("needs root (running as uid %d): a pid namespace whose pids the test hands out", os.Geteuid())
		if os.Getenv("GOSIMPL_CI") == "1" {
			t.Fatalf("%s; GOSIMPL_CI=1 (CI, which runs as root) requires this test to run", why)
		}
		t.Skipf("%s; CI (.ci/run) runs it as root", why)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("the seccomp filter knows amd64 and arm64, not %s", runtime.GOARCH)
	}
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(e.environ(), fixSlayRole+"=recycled", "FIXTEST_BIN="+binDir, "GOSIMPL_TRANSPORT=fifo")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the helper did not finish within 90 s; stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("helper: %v; stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	var res fixSlayResult
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("helper printed %q (%v); stderr %q", stdout.String(), err, stderr.String())
	}
	t.Logf("helper: %+v", res)
	if res.Err != "" {
		if strings.Contains(res.Err, "seccomp filter") {
			t.Skipf("cannot stop fcslay in its pidfd_open: %s", res.Err)
		}
		t.Fatalf("helper: %s", res.Err)
	}
	if !res.Recycled {
		t.Fatal("the helper did not hand the holder's pid to another process")
	}
	if res.SleepGone != "" {
		t.Errorf("fcslay VICTIM signalled the process that took pid %d over after the look-up (%s); fcslay exit %d, stdout %q, stderr %q",
			res.PID, res.SleepGone, res.Code, res.Stdout, res.Stderr)
	}
	if res.Code != 1 || res.Stdout != "" {
		t.Errorf("fcslay VICTIM, its owner's pid taken over: exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout", res.Code, res.Stdout, res.Stderr)
	}
	checkOneLine(t, "fcslay", res.Stderr, fmt.Sprintf("VICTIM (pid %d) exited", res.PID))
}
