package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"golang.org/x/sys/unix"
)

// CIEnv is the environment variable .ci/run sets to 1: New then fails a
// test it would otherwise skip (not root, a command missing).
const CIEnv = "GOSIMPL_CI"

const (
	// prefix starts the name of every namespace and /etc/netns directory
	// a lab makes; the pid of the process that made it follows.
	prefix = "gsl"
	// subnet is the hosts' /24; host i (from 0) gets subnet.(i+1).
	subnet = "10.77.0."
	// maxHosts is how many hosts a lab can have on its /24.
	maxHosts = 250
	// maxHostName is the longest host name: C SIMPL keeps host names in
	// 52-byte fields, terminator included.
	maxHostName = 51
	// netnsDir is where `ip netns` keeps named namespaces.
	netnsDir = "/run/netns"
	// etcNetns is where `ip netns exec` finds per-namespace /etc files.
	etcNetns = "/etc/netns"
	// utsDir holds each host's UTS namespace (its host name), kept by a
	// bind mount on a file named as its network namespace.
	utsDir = "/run/gsl-uts"
	// killWait bounds how long killing a namespace's processes may take.
	killWait = 10 * time.Second
)

// labs counts the labs this process made, for unique names.
var labs atomic.Int64

// Lab is a set of hosts on one network segment. It is safe for
// concurrent use: several goroutines may run commands on its hosts, cut,
// heal and kill them at once.
type Lab struct {
	t      testing.TB
	sw     string // the switch's namespace
	hosts  []*Host
	byName map[string]*Host
	mu     sync.Mutex // serializes Cut/Heal of one lab with its teardown
	closed bool
	guard  *exec.Cmd      // removes the lab if this process dies first
	tell   io.WriteCloser // the guard's stdin
}

// Host is one host of a Lab: a network namespace with an address and a
// FIFO_PATH directory. It is safe for concurrent use.
type Host struct {
	lab   *Lab
	name  string
	ns    string
	addr  string
	port  string // its port on the switch
	fifos string
}

// New builds a lab of hosts with the given names (letters, digits and
// '-', not starting with '-', at most 51 bytes, distinct, not
// "localhost", case ignored) and registers its removal with t. It needs
// root (CAP_SYS_ADMIN and CAP_NET_ADMIN), sh, ip (iproute2), and unshare,
// nsenter and setpriv (util-linux), and hostname: without them it skips
// the test, saying why, or fails it when GOSIMPL_CI=1. It first removes
// the leftovers of labs whose process is gone (Sweep). Any other failure
// fails the test.
func New(t testing.TB, hosts ...string) *Lab {
	t.Helper()
	if err := privileged(); err != nil {
		cannotRun(t, "%v", err)
	}
	if err := tools(); err != nil {
		cannotRun(t, "%v", err)
	}
	if err := checkNames(hosts); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	if err := Sweep(); err != nil {
		t.Logf("netlab: sweeping leftovers of earlier runs: %v", err)
	}
	n := labs.Add(1)
	l := &Lab{
		t:      t,
		sw:     fmt.Sprintf("%s%d-%d", prefix, os.Getpid(), n),
		byName: make(map[string]*Host, len(hosts)),
	}
	for i, name := range hosts {
		h := &Host{
			lab:  l,
			name: name,
			ns:   l.sw + "-" + name,
			addr: fmt.Sprintf("%s%d", subnet, i+1),
			port: fmt.Sprintf("p%d", i+1),
		}
		l.hosts = append(l.hosts, h)
		l.byName[name] = h
	}
	// From here on whatever exists must go, even if building fails, and
	// even if this process dies before its cleanups run.
	t.Cleanup(l.close)
	for _, h := range l.hosts {
		dir, err := os.MkdirTemp("", "gsl-"+h.name+"-")
		if err == nil {
			dir, err = filepath.Abs(dir)
		}
		if err != nil {
			t.Fatalf("netlab: FIFO_PATH for host %s: %v", h.name, err)
		}
		h.fifos = dir
	}
	if err := l.startGuard(); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	if err := l.build(); err != nil {
		t.Fatalf("netlab: building hosts %v: %v", hosts, err)
	}
	return l
}

// privileged checks that this process may make namespaces and links.
func privileged() error {
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("needs root to create network namespaces (running as uid %d)", uid)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				return fmt.Errorf("/proc/self/status: %q: %w", line, err)
			}
			for _, c := range []struct {
				bit  uint
				name string
			}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}} {
				if caps&(1<<c.bit) == 0 {
					return fmt.Errorf("root without %s (a container?): cannot create network namespaces", c.name)
				}
			}
			return nil
		}
	}
	return errors.New("/proc/self/status has no CapEff line")
}

// tools checks that the commands a lab runs are there.
func tools() error {
	for _, c := range []struct{ name, pkg string }{
		{"ip", "iproute2"}, {"unshare", "util-linux"}, {"nsenter", "util-linux"}, {"hostname", "hostname"},
		{"setpriv", "util-linux"}, {"sh", "dash"},
	} {
		if _, err := exec.LookPath(c.name); err != nil {
			return fmt.Errorf("needs the %s command (Debian package %s): %w", c.name, c.pkg, err)
		}
	}
	return nil
}

// cannotRun skips t, or fails it under CI.
func cannotRun(t testing.TB, format string, args ...any) {
	t.Helper()
	why := fmt.Sprintf(format, args...)
	if os.Getenv(CIEnv) == "1" {
		t.Fatalf("netlab: %s; %s=1 (CI, which runs as root) requires this test to run", why, CIEnv)
	}
	t.Skipf("netlab: %s; CI (.ci/run) runs it as root", why)
}

func checkNames(hosts []string) error {
	if len(hosts) == 0 {
		return errors.New("no hosts")
	}
	if len(hosts) > maxHosts {
		return fmt.Errorf("%d hosts: at most %d", len(hosts), maxHosts)
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		switch {
		case h == "":
			return errors.New("empty host name")
		case len(h) > maxHostName:
			return fmt.Errorf("host name %q: %d bytes, at most %d", h, len(h), maxHostName)
		case h[0] == '-':
			return fmt.Errorf("host name %q starts with '-'", h)
		case strings.EqualFold(h, "localhost"):
			return fmt.Errorf("host name %q: reserved", h)
		case seen[strings.ToLower(h)]:
			return fmt.Errorf("host name %q twice (case ignored, as resolvers do)", h)
		}
		for _, r := range h {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("host name %q: %q is not a letter, digit or '-'", h, r)
			}
		}
		seen[strings.ToLower(h)] = true
	}
	return nil
}

// build makes the namespaces, links, addresses and files.
func (l *Lab) build() error {
	// One ip process makes every namespace and link: each link is created
	// with its ends already in their namespaces, so the root namespace
	// never holds one.
	var b strings.Builder
	fmt.Fprintf(&b, "netns add %s\n", l.sw)
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "netns add %s\n", h.ns)
	}
	fmt.Fprintf(&b, "link add br0 netns %s type bridge\n", l.sw)
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "link add %s netns %s type veth peer name eth0 netns %s\n", h.port, l.sw, h.ns)
	}
	if err := ipBatch("", b.String()); err != nil {
		return err
	}

	// Then one ip process per namespace configures it, all at once.
	hostsFile := l.hostsFile()
	_, statErr := os.Stat("/etc/hostname")
	haveHostname := statErr == nil
	errs := make([]error, len(l.hosts)+1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var b strings.Builder
		b.WriteString("link set lo up\nlink set br0 up\n")
		for _, h := range l.hosts {
			fmt.Fprintf(&b, "link set %s master br0\nlink set %s up\n", h.port, h.port)
		}
		errs[0] = ipBatch(l.sw, b.String())
	}()
	for i, h := range l.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i+1] = h.build(hostsFile, haveHostname)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *Host) build(hostsFile string, haveHostname bool) error {
	etc := filepath.Join(etcNetns, h.ns)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hostsFile), 0o644); err != nil {
		return err
	}
	if haveHostname {
		// ip netns exec mounts only over files that exist.
		if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte(h.name+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := ipBatch(h.ns, fmt.Sprintf("link set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\n", h.addr)); err != nil {
		return err
	}
	// A UTS namespace of its own, so that gethostname(2) answers its name.
	if err := os.MkdirAll(utsDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(h.uts(), nil, 0o644); err != nil {
		return err
	}
	if out, err := exec.Command("unshare", "--uts="+h.uts(), "hostname", h.name).CombinedOutput(); err != nil {
		return fmt.Errorf("unshare --uts=%s hostname %s: %w: %s", h.uts(), h.name, err, bytes.TrimSpace(out))
	}
	return nil
}

// uts is the file that keeps the host's UTS namespace.
func (h *Host) uts() string { return filepath.Join(utsDir, h.ns) }

// hostsFile is every host's /etc/hosts.
func (l *Lab) hostsFile() string {
	var b strings.Builder
	b.WriteString("# written by gosimpl internal/netlab\n127.0.0.1\tlocalhost\n::1\tlocalhost\n")
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "%s\t%s\n", h.addr, h.name)
	}
	return b.String()
}

// ipBatch runs the ip commands in script (one a line) in namespace ns
// ("" for the root namespace's ip, whose commands name namespaces), with
// the options opts.
func ipBatch(ns, script string, opts ...string) error {
	args := append(opts, "-batch", "-")
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s (script:\n%s)", strings.Join(args, " "), err, strings.TrimSpace(out.String()), script)
	}
	return nil
}

// Hosts returns the lab's hosts in the order New was given their names.
func (l *Lab) Hosts() []*Host { return append([]*Host(nil), l.hosts...) }

// Host returns the host named name. It panics if there is none: a test's
// mistake.
func (l *Lab) Host(name string) *Host {
	h, ok := l.byName[name]
	if !ok {
		panic(fmt.Sprintf("netlab: no host %q in this lab", name))
	}
	return h
}

// Cut disconnects host from the network as a pulled cable would: its
// switch port goes down, so whatever it sends and whatever is sent to it
// is dropped silently (connections time out; nothing is refused). Its
// processes keep running and its loopback keeps working.
func (l *Lab) Cut(host string) error { return l.setPort(host, "down") }

// Heal reconnects a host that Cut disconnected.
func (l *Lab) Heal(host string) error { return l.setPort(host, "up") }

func (l *Lab) setPort(host, state string) error {
	h := l.Host(host)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("netlab: the lab is gone")
	}
	return ipBatch(l.sw, fmt.Sprintf("link set %s %s\n", h.port, state))
}

// Kill kills with SIGKILL every process running on host (whoever started
// it, however it detached), as a host losing power would, and returns
// once they are gone. The host's network stays: processes started on it
// afterwards run normally. The caller still waits for the commands it
// started (exec.Cmd.Wait), which then report the signal.
func (l *Lab) Kill(host string) error {
	return killNamespace(l.Host(host).ns, killWait)
}

// close tears the lab down; it is the cleanup New registers.
func (l *Lab) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	start := time.Now()
	var errs []error
	names := l.names()
	var wg sync.WaitGroup
	kerrs := make([]error, len(names))
	for i, ns := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kerrs[i] = killNamespace(ns, killWait)
		}()
	}
	wg.Wait()
	errs = append(errs, kerrs...)
	errs = append(errs, deleteNamespaces(names))
	for _, h := range l.hosts {
		if h.fifos != "" {
			errs = append(errs, os.RemoveAll(h.fifos))
		}
	}
	errs = append(errs, l.stopGuard())
	if err := errors.Join(errs...); err != nil {
		l.t.Errorf("netlab: removing the lab %s: %v", l.sw, err)
	}
	l.t.Logf("netlab: lab %s removed in %v", l.sw, time.Since(start).Round(time.Microsecond))
}

// names lists the lab's namespaces, the switch's first.
func (l *Lab) names() []string {
	names := []string{l.sw}
	for _, h := range l.hosts {
		names = append(names, h.ns)
	}
	return names
}

// guardScript is what the guard runs: it waits for a line on stdin; if
// that is not "done" (the test process died before removing the lab, and
// its end of the pipe closed), it removes the lab. $@ are the lab's
// namespaces and its FIFO directories (absolute paths). It ignores the signals a terminal or a test runner sends
// to a whole group or session, and runs in a session of its own.
const guardScript = `trap '' HUP INT TERM PIPE
read -r line
[ "$line" = done ] && exit 0
for ns in "$@"; do
	case "$ns" in /*) continue ;; esac
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -z "$pids" ] && break
		kill -9 $pids 2>/dev/null
		sleep 0.1
	done
done
for ns in "$@"; do
	case "$ns" in /*) rm -rf "$ns"; continue ;; esac
	ip netns del "$ns" 2>/dev/null
	rm -rf "` + etcNetns + `/$ns"
	umount -l "` + utsDir + `/$ns" 2>/dev/null
	rm -f "` + utsDir + `/$ns"
done
`

// startGuard starts the process that removes the lab if this process
// dies without doing it (killed, or ended by -test.timeout, which runs no
// cleanups).
func (l *Lab) startGuard() error {
	args := append([]string{"-c", guardScript, "netlab-guard"}, l.names()...)
	for _, h := range l.hosts {
		args = append(args, h.fifos)
	}
	cmd := exec.Command("sh", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the guard: %w", err)
	}
	l.guard, l.tell = cmd, w
	return nil
}

// stopGuard tells the guard the lab is gone and waits for it to exit.
func (l *Lab) stopGuard() error {
	if l.guard == nil {
		return nil
	}
	_, werr := io.WriteString(l.tell, "done\n")
	l.tell.Close()
	done := make(chan error, 1)
	go func() { done <- l.guard.Wait() }()
	select {
	case err := <-done:
		if werr != nil || err != nil {
			return fmt.Errorf("the guard %d: %w", l.guard.Process.Pid, errors.Join(werr, err))
		}
		return nil
	case <-time.After(killWait):
		l.guard.Process.Kill()
		<-done
		return fmt.Errorf("the guard %d did not exit within %v", l.guard.Process.Pid, killWait)
	}
}

// deleteNamespaces deletes the named network namespaces that exist, their
// /etc/netns directories and the UTS namespaces of the same names. Their processes must be gone first: a namespace
// lives on, with its links, while a process runs in it.
func deleteNamespaces(names []string) error {
	var b strings.Builder
	var errs []error
	for _, ns := range names {
		if _, err := os.Lstat(filepath.Join(netnsDir, ns)); err == nil {
			fmt.Fprintf(&b, "netns del %s\n", ns)
		}
		if err := os.RemoveAll(filepath.Join(etcNetns, ns)); err != nil {
			errs = append(errs, err)
		}
		uts := filepath.Join(utsDir, ns)
		if err := unix.Unmount(uts, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", uts, err))
		}
		if err := os.Remove(uts); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if b.Len() > 0 {
		// -force: on with the others when one fails (another process
		// sweeping the same leftovers may have deleted it).
		errs = append(errs, ipBatch("", b.String(), "-force"))
	}
	return errors.Join(errs...)
}

// Name is the host's name, as the other hosts resolve it.
func (h *Host) Name() string { return h.name }

// Addr is the host's IPv4 address on the lab's network.
func (h *Host) Addr() string { return h.addr }

// Namespace is the name of the host's network namespace, for
// `ip netns exec` and `ip -n`.
func (h *Host) Namespace() string { return h.ns }

// FIFOPath is the host's FIFO_PATH directory, empty at first. It is a
// directory of the machine's file system, so the test can look into it
// too; it is removed with the lab.
func (h *Host) FIFOPath() string { return h.fifos }

// Env is what a command run on the host has in its environment beyond
// the test's own: HOSTNAME (which C SIMPL reads before /etc/hostname to
// decide which host is local) and FIFO_PATH.
func (h *Host) Env() []string {
	return []string{"HOSTNAME=" + h.name, "FIFO_PATH=" + h.fifos}
}

// Command returns a command that runs name with args on the host: in its
// network namespace, with its /etc/hosts and /etc/hostname, its host
// name (gethostname(2), os.Hostname), and the test's environment plus Env
// (callers may add to cmd.Env; later entries win). It runs through
// `ip netns exec NS nsenter --uts=FILE`: ip sets the network namespace
// and mounts the /etc files (in a mount namespace of the command's own),
// nsenter the UTS namespace, and each executes the next in the same
// process, so cmd.Process is the command itself. (Entering the
// namespaces in Go on a locked thread before the fork would save those
// two executions but cannot mount /etc/hosts for the child.) The command gets a process group of its own, is
// killed (SIGKILL) when the thread that started it exits — in practice
// when the test binary dies — and when ctx ends (with its whole process
// group); the lab kills it, and anything else left on the host, when the
// test ends.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns, "nsenter", "--uts=" + h.uts(), "--", name}, args...)...)
	cmd.Env = append(os.Environ(), h.Env()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// CommandAs is Command running name as user uid and group gid (no
// supplementary groups), through setpriv, which also keeps the command
// dying with the test (the kernel forgets PR_SET_PDEATHSIG when a process
// changes user). Do not set cmd.SysProcAttr.Credential on a Command
// instead: ip would then run as that user and fail to enter the host.
func (h *Host) CommandAs(ctx context.Context, uid, gid int, name string, args ...string) *exec.Cmd {
	return h.Command(ctx, "setpriv", append([]string{
		"--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups",
		"--pdeathsig=KILL", "--", name,
	}, args...)...)
}

// StartCmd starts name with args on the host (see Command) as an
// internal/proctest helper: its stdout can be read with Expect, its stderr
// is kept for failure messages, and it is killed and reaped when the test
// ends. It does not wait for anything from the command.
func (h *Host) StartCmd(t testing.TB, name string, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.StartCmd(t, h.Command(context.Background(), name, args...))
}

// Start runs the test binary on the host as a proctest helper playing
// role with args (the roles the package's TestMain gave proctest.Main),
// and waits up to 10 s for it to print "ready".
func (h *Host) Start(t testing.TB, role string, args ...string) *proctest.Proc {
	t.Helper()
	p := h.StartNoWait(t, role, args...)
	p.Expect("ready", 10*time.Second)
	return p
}

// StartNoWait is Start without waiting for "ready".
func (h *Host) StartNoWait(t testing.TB, role string, args ...string) *proctest.Proc {
	t.Helper()
	cmd := h.Command(context.Background(), os.Args[0], "-test.run=^$")
	cmd.Env = append(cmd.Env, proctest.Env(role, args...)...)
	return proctest.StartCmd(t, cmd)
}
