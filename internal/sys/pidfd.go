package sys

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoPidfd: the kernel (older than Linux 5.3) or a sandbox refuses
// pidfd_open. Callers check the pid by polling instead.
var ErrNoPidfd = errors.New("pidfd_open not available")

// ErrNoProcess: there is no process with that pid.
var ErrNoProcess = errors.New("no such process")

// Pidfd is an open pidfd. It refers to one process for as long as it is
// open, never to a later process that reuses the pid, and becomes readable
// when that process exits (a zombie counts as exited), which Go's poller
// waits for like any other descriptor.
//
// A Pidfd owns its descriptor. It is safe for concurrent use: Exited, Wait
// and Close may be called at once from any goroutines. Close is idempotent
// and ends a Wait.
type Pidfd struct {
	pid int
	f   *os.File
	raw syscall.RawConn

	mu sync.RWMutex // held for reading while fd is polled, for writing by Close
	fd int          // f's descriptor; -1 once closed
}

// OpenPidfd opens a pidfd for pid, non-blocking and close-on-exec, and
// registers it with Go's poller. Errors wrap ErrNoPidfd where pidfds are
// not available and ErrNoProcess where pid is not running.
func OpenPidfd(pid int) (*Pidfd, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.EINVAL) && pid > 0 {
		// Before Linux 5.10 there is no PIDFD_NONBLOCK; the file status
		// flag does the same.
		if fd, err = unix.PidfdOpen(pid, 0); err == nil {
			if err = unix.SetNonblock(fd, true); err != nil {
				unix.Close(fd)
			}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM):
		return nil, fmt.Errorf("pidfd_open %d: %w (%w)", pid, ErrNoPidfd, err)
	case errors.Is(err, unix.ESRCH):
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, ErrNoProcess)
	default:
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pidfd %d: %w", pid, err)
	}
	return &Pidfd{pid: pid, f: f, raw: raw, fd: fd}, nil
}

// PID is the pid the Pidfd was opened for.
func (p *Pidfd) PID() int { return p.pid }

// Exited tells, without waiting, whether the process has exited. A
// descriptor the kernel reports unusable counts as exited: nothing more
// can be learnt from it. Once p is closed it reports false: it watches
// nothing any more. It makes one poll system call and allocates nothing.
func (p *Pidfd) Exited() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.fd < 0 {
		return false
	}
	return exited(p.fd)
}

// Wait waits, parked in Go's poller rather than holding a thread, until
// the process exits (nil) or p is closed (an error wrapping os.ErrClosed).
// Where the kernel cannot poll the pidfd it fails at once with another
// error; Exited still works there.
func (p *Pidfd) Wait() error {
	err := p.raw.Read(func(fd uintptr) bool { return exited(int(fd)) })
	if err != nil && p.closed() {
		return fmt.Errorf("pidfd %d: %w", p.pid, os.ErrClosed)
	}
	return err
}

// Signal sends sig to the process the Pidfd refers to, never to a later
// process that reuses its pid: that one has exited is ErrNoProcess.
func (p *Pidfd) Signal(sig syscall.Signal) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.fd < 0 {
		return fmt.Errorf("pidfd %d: %w", p.pid, os.ErrClosed)
	}
	err := unix.PidfdSendSignal(p.fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("pid %d: %w", p.pid, ErrNoProcess)
	}
	return err
}

func (p *Pidfd) closed() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.fd < 0
}

// Close closes the descriptor, once; later calls return nil. A Wait in
// progress returns an error wrapping os.ErrClosed.
func (p *Pidfd) Close() error {
	p.mu.Lock()
	if p.fd < 0 {
		p.mu.Unlock()
		return nil
	}
	p.fd = -1
	p.mu.Unlock()
	return p.f.Close()
}

// exited polls pidfd without waiting: readable, or unusable, means the
// process has exited.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return true
		}
		return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}
}
