package fifo

import (
	"errors"
	"github.com/gosimpl/gosimpl/internal/errs"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// Noticing that a receiver died. The wire has no word for it: a receiver
// killed by SIGKILL just stops, and a sender's reply FIFO, open read-write,
// never sees EOF. So every Conn watches its receiver's process.
//
// Locate opens a pidfd for the receiver, which names that process and no
// later one that reuses its pid. The first Send on the Conn starts one
// watcher goroutine, parked in the netpoller until the pidfd becomes
// readable, which is when the process has exited: no thread, no timer, no
// system call while it waits. A Send's wait stays what it was, a netpoller
// read of its own reply FIFO; it only enters its slot in the watcher's
// waiting set. When the receiver exits the watcher ends each of those reads
// the way a context's end does, with a read deadline in the past, and the
// Send returns ErrPeerGone (unless the reply doorbell is already there: a
// receiver may answer and then die). The hot path thus gains two short
// critical sections and nothing else: no goroutine, no descriptor, no
// system call per Send. (Waiting on the pidfd in each Send would need a
// descriptor per Send, since os.File lets one reader wait at a time.)
//
// Where the kernel has no pidfds (before Linux 5.3, or a sandbox refusing
// pidfd_open) the watcher instead checks the pid every pollEvery while a
// Send waits.

// pollEvery is how often a watcher without a pidfd checks its receiver.
const pollEvery = 20 * time.Millisecond

// openProcess is sys.OpenPidfd; tests replace it to run without pidfds.
var openProcess = sys.OpenPidfd

// watcher follows one located receiver for a Conn. It holds no reference
// to the Conn, so that its goroutine does not keep a Conn dropped without
// Close reachable; collecting the Conn closes the watcher.
type watcher struct {
	pid     int
	created time.Time  // when the receiver made its FIFO
	path    string     // that FIFO ("" for a relay's holder)
	proc    *sys.Pidfd // the receiver's; nil without pidfd support
	start   sync.Once  // starts run, on the first Send
	stop    sync.Once
	done    chan struct{} // closed by close

	mu      sync.Mutex // orders gone and closed against waiting
	gone    atomic.Bool
	closed  atomic.Bool
	waiting map[*slot]struct{} // slots whose reply is awaited, by a Send or a drain
}

// newWatcher opens the pidfd of the receiver ent names and checks that it
// is that receiver.
func newWatcher(ent naming.Entry) (*watcher, error) {
	w := &watcher{pid: ent.PID, created: ent.Created, path: ent.Path, done: make(chan struct{}), waiting: make(map[*slot]struct{})}
	gone := func() error {
		return errs.Errorf("%w: %q (pid %d) exited while being located", transport.ErrNotFound, ent.Name, ent.PID)
	}
	proc, err := openProcess(ent.PID)
	switch {
	case err == nil:
		w.proc = proc
	case errors.Is(err, sys.ErrNoPidfd):
		// run checks the pid instead.
	case errors.Is(err, sys.ErrNoProcess):
		return nil, gone()
	default:
		return nil, errs.Errorf("locate %q: %w", ent.Name, err)
	}
	// Lookup found the pid alive and no younger than the FIFO, but that
	// was before the pidfd was opened: the pid may have been reused in
	// between. If the process at the pid is old enough now and the pidfd's
	// process has not exited since, they are one process, the FIFO's owner.
	if !naming.AliveOwner(w.pid, w.path, w.created) || w.exited() {
		w.close()
		return nil, gone()
	}
	return w, nil
}

// exited tells, without waiting, whether the receiver has exited.
func (w *watcher) exited() bool {
	if w.proc == nil {
		return !naming.AliveOwner(w.pid, w.path, w.created)
	}
	return w.proc.Exited() // false once closed: the watch is over
}

// run waits for the receiver to exit, then fails every waiting Send. It
// returns when the watcher is closed.
func (w *watcher) run() {
	if w.proc != nil {
		err := w.proc.Wait()
		if err == nil {
			w.peerGone()
			return
		}
		if w.closed.Load() {
			return
		}
		// The pidfd is not pollable here: check it by hand.
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
			// Only a waiting Send needs to know (a doorbell to a dead
			// receiver fails by itself).
			if w.waitingCount() > 0 && w.exited() {
				w.peerGone()
				return
			}
		}
	}
}

// waitingCount is how many Sends (or drains) wait for a reply.
func (w *watcher) waitingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.waiting)
}

// peerGone marks the receiver gone and ends every wait for its replies.
func (w *watcher) peerGone() {
	w.mu.Lock()
	w.gone.Store(true)
	for s := range w.waiting {
		s.interrupt()
	}
	w.mu.Unlock()
}

// close ends every wait (the Sends return ErrClosed), closes the pidfd and
// so ends run. It is idempotent.
func (w *watcher) close() {
	w.stop.Do(func() {
		w.mu.Lock()
		w.closed.Store(true)
		for s := range w.waiting {
			s.interrupt()
		}
		w.mu.Unlock()
		close(w.done)
		if w.proc != nil {
			w.proc.Close()
		}
	})
}

// watchHolder watches process pid, the receiver a relay handed a request
// over to (see holder in segment.go). Nothing tells when that process
// started, so unlike a located receiver it is not checked against a pid
// reused in the moment between the relay and this call.
func watchHolder(pid int) (*watcher, error) {
	return newWatcher(naming.Entry{Name: "relay target pid " + strconv.Itoa(pid), PID: pid})
}

// goneErr is the error of a Send whose request was last held by process
// pid (the receiver, or one its request was handed over to), which exited
// before replying.
func (c *Conn) goneErr(pid int) error {
	if pid != c.pid {
		return errs.Errorf("%w: receiver %q (pid %d) handed the request over to pid %d, which exited before replying", transport.ErrPeerGone, c.name, c.pid, pid)
	}
	return errs.Errorf("%w: receiver %q (pid %d) exited before replying", transport.ErrPeerGone, c.name, c.pid)
}
