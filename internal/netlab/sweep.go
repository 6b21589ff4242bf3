package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sweep removes what labs of processes that are no longer alive left
// behind (a test binary killed, or ended by -test.timeout): it kills the
// processes still running in their namespaces and deletes the namespaces
// and their /etc/netns directories. Labs of live processes, this one's
// included, are not touched. New calls it; it is safe for concurrent use.
// A lab whose pid has been reused by another process is left until that
// process is gone too.
func Sweep() error {
	dead := map[string]bool{}
	for _, name := range Leftovers(0) {
		ns := filepath.Base(name)
		if pid := ownerPID(ns); pid > 0 && !alive(pid) {
			dead[ns] = true
		}
	}
	if len(dead) == 0 {
		return nil
	}
	var errs []error
	names := slices.Sorted(func(yield func(string) bool) {
		for ns := range dead {
			if !yield(ns) {
				return
			}
		}
	})
	for _, ns := range names {
		errs = append(errs, killNamespace(ns, killWait))
	}
	errs = append(errs, deleteNamespaces(names))
	return errors.Join(errs...)
}

// Leftovers lists the network namespaces (as /run/netns/NAME), /etc/netns
// directories and UTS namespaces (as /run/gsl-uts/NAME) of labs made by process pid, or by any process for pid 0.
// After a lab's test has ended it lists nothing of that lab: a test's
// leak check. It is safe for concurrent use.
func Leftovers(pid int) []string {
	var out []string
	for _, dir := range []string{netnsDir, etcNetns, utsDir} {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			owner := ownerPID(de.Name())
			if owner > 0 && (pid == 0 || owner == pid) {
				out = append(out, filepath.Join(dir, de.Name()))
			}
		}
	}
	return out
}

// ownerPID is the pid encoded in a lab's namespace name
// (gsl<pid>-<n>[-<host>]), or 0 if name is not one.
func ownerPID(name string) int {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0
	}
	digits, rest, ok := strings.Cut(rest, "-")
	if !ok {
		return 0
	}
	n, _, _ := strings.Cut(rest, "-")
	if _, err := strconv.Atoi(n); err != nil {
		return 0
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// alive tells whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) STATE ...; comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// nsID is what /proc/PID/ns/net reads for the processes in the named
// namespace ("net:[inode]"), or "" if there is no such namespace.
func nsID(ns string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, ns), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return "", nil
		}
		return "", err
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}

// PIDs lists the processes running on the host (in its network
// namespace), whoever started them; none once the lab is gone.
func (h *Host) PIDs() ([]int, error) {
	id, err := nsID(h.ns)
	if err != nil || id == "" {
		return nil, err
	}
	return pidsIn(id)
}

func pidsIn(id string) ([]int, error) {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var out []int
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		// Fails for a zombie (no namespaces left) and a process gone.
		if link, err := os.Readlink("/proc/" + de.Name() + "/ns/net"); err == nil && link == id {
			out = append(out, pid)
		}
	}
	return out, nil
}

// killNamespace kills every process in namespace ns with SIGKILL and
// waits, up to d, until none is left (processes may fork meanwhile).
func killNamespace(ns string, d time.Duration) error {
	id, err := nsID(ns)
	if err != nil || id == "" {
		return err
	}
	deadline := time.Now().Add(d)
	for {
		pids, err := pidsIn(id)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in namespace %s after %v", pids, ns, d)
		}
		for _, pid := range pids {
			killAndWait(pid, id, time.Until(deadline))
		}
	}
}

// killAndWait kills pid if it is still in namespace id, and waits up to d
// for it to exit. A pidfd makes sure the process signalled is the one
// that was looked at, not a later one with its pid.
func killAndWait(pid int, id string, d time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil || link != id {
		return // gone, and the pid reused
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return
	}
	ms := int(d / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		// The pidfd becomes readable once the process has exited.
		if _, err := unix.Poll(fds, ms); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
