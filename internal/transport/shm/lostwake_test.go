//go:build !race

package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gosimpl/gosimpl/internal/sys"
)

// roleAnswerDie DIR NAME [live]: a receiver that takes one request,
// prints "taken", and on the command "go" does what answerLocked does up
// to its wake-up (state Answered, swait cleared) and is SIGKILLed there,
// as the OOM killer or an operator may kill it at any instruction. With
// "live" it only clears swait, prints "cleared" and lives on, answering
// nothing: a hostile receiver.
func roleAnswerDie(args []string) error {
	dir, name := args[0], args[1]
	live := len(args) > 2 && args[2] == "live"
	e, err := Listen(Address(dir, name, os.Getpid()), name, Options{})
	if err != nil {
		return err
	}
	cmds := commands()
	say("ready")
	req, _, err := e.Receive(context.Background())
	if err != nil {
		return err
	}
	l := laneOf(req)
	say("taken")
	for c := range cmds {
		if c == "go" {
			break
		}
	}
	if live {
		l.w.swait.Swap(swaitNone)
		say("cleared")
		for range cmds {
		}
		return nil
	}
	l.w.nbytes.Store(0)
	l.w.code.Store(codeOK)
	l.w.state.CompareAndSwap(laneTaken, laneAnswered)
	l.w.swait.Swap(swaitNone)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// futexNR is the futex system call's number, where the test knows it.
var futexNR = map[string]string{"amd64": "202", "arm64": "98"}

// inFutexWait reports whether a thread of this process is in FUTEX_WAIT
// on addr (/proc/self/task/*/syscall).
func inFutexWait(addr uintptr) bool {
	tasks, _ := filepath.Glob("/proc/self/task/*/syscall")
	want := fmt.Sprintf("%s 0x%x ", futexNR[runtime.GOARCH], addr)
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), want) {
			return true
		}
	}
	return false
}

// A receiver killed between clearing swait and waking the sender (or a
// hostile one that clears swait and never answers) no longer leaves the
// Send asleep for good: the receiver's death wakes it whatever swait
// says. Before, the watcher's wake-up looked at swait, found it cleared,
// and woke nobody; neither the Send's context nor Close could either
// (helper-55).
func TestWakeAfterSwaitCleared(t *testing.T) {
	t.Run("died", func(t *testing.T) { testWakeAfterSwaitCleared(t, false) })
	t.Run("hostile", func(t *testing.T) { testWakeAfterSwaitCleared(t, true) })
}

// testWakeAfterSwaitCleared: the receiver dies having cleared swait, or
// (hostile) clears it and lives on, when the Send's context ends.
func testWakeAfterSwaitCleared(t *testing.T, hostile bool) {
	if futexNR[runtime.GOARCH] == "" {
		t.Skipf("the futex system call's number on %s is not known to the test", runtime.GOARCH)
	}
	dir := t.TempDir()
	args := []string{dir, "ANSDIE"}
	if hostile {
		args = append(args, "live")
	}
	p := startHelper(t, "answerdie", args...)
	c, err := Dial(context.Background(), Address(dir, "ANSDIE", p.PID()), p.PID(), "tester", Options{NoSpin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, []byte("hi"), make([]byte, 8))
		res <- err
	}()
	p.Expect("taken", 10*time.Second)
	var l *lane
	c.mu.Lock()
	for x := range c.all {
		l = x
	}
	c.mu.Unlock()
	addr := uintptr(unsafe.Pointer(l.w.swait))
	for deadline := time.Now().Add(3 * time.Second); !inFutexWait(addr); {
		if time.Now().After(deadline) {
			// Under qemu-user, say, the file shows the host's calls.
			t.Skip("the Send's thread not seen in FUTEX_WAIT within 3s (no /proc/self/task/*/syscall of this architecture here?)")
		}
		time.Sleep(time.Millisecond) // polling the thread's state
	}
	p.command("go")
	if hostile {
		p.Expect("cleared", 10*time.Second)
		cancel()
	}
	select {
	case err := <-res:
		if hostile && !errors.Is(err, context.Canceled) {
			t.Errorf("Send whose context ended: %v, want context.Canceled", err)
		}
		if !hostile && err != nil {
			t.Errorf("Send answered before its receiver died: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Send still asleep 5s after its receiver cleared swait and died or its context ended")
		for {
			syscallFutexWakeAll(l) // let the Send go, so the test ends
			select {
			case <-res:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func syscallFutexWakeAll(l *lane) { sys.FutexWake(l.w.swait, 1) }
