package fifo

import (
	"errors"
	"fmt"
	"github.com/gosimpl/gosimpl/internal/errs"
	"slices"

	"github.com/gosimpl/gosimpl/internal/sys"
	"github.com/gosimpl/gosimpl/transport"
)

// What a receiver trusts. A doorbell is four bytes with no sender attached
// to them, and whoever may write the receive FIFO may ring any segment id.
// Two checks keep a receiver from acting for someone other than the
// doorbell's real author (a confused deputy):
//
//   - The sender's identity. The header's pid must be the segment's
//     creator, as the kernel recorded it (shm_cpid), and that process must
//     still be running as the user that created the segment (shm_perm.cuid).
//     A forged header naming another process is dropped unanswered, so a
//     reply, or a failure code, can only go to the reply FIFO of the
//     process that made the segment. C SIMPL senders, like gosimpl's,
//     create their segment themselves, so this holds for them too. (The
//     uid check is what makes pid reuse harmless: a process that reuses
//     the creator's pid is accepted only if it runs as the same user, who
//     could do all this anyway.)
//   - The request itself. A public receiver (its FIFO writable by its
//     group or by everyone) takes a segment that some of those who may
//     ring could not read or write themselves only through the segment's
//     claim (see segment.go): only requests meant for it, once each.
//     Without a claim (a C sender, or a relay through a C receiver) such a
//     segment is dropped. A segment every possible ringer may use anyway
//     (C SIMPL's 0777 ones, or 0660 ones of the FIFO's group) is taken as
//     before.
//
// Neither costs a system call per request beyond one poll of the creator's
// pidfd: the segment's creator and modes are read once, when a receiver
// first attaches it.

// creator is the process that made a segment, checked when a receiver
// first attached the segment. Used by the receiver's reader only, but for
// pid, uid and gid, which never change and which Request.Cred reports.
type creator struct {
	pid  int
	uid  uint32     // shm_perm.cuid
	gid  uint32     // shm_perm.cgid: the creator's group then, never checked
	proc *sys.Pidfd // its pidfd; nil without pidfd support
	bad  error      // set once the creator fails a check; for good
	// short: the checks could not be made for want of descriptors in
	// this receiver (EMFILE, ENFILE): no verdict on the creator, and
	// they are made again at the next verify.
	short bool
	seg   int // the segment's id, for errors
}

// errShortage: the receiver could not check a request for want of
// descriptors of its own. A passing state, never a verdict on the sender:
// the request is tried again (see Endpoint.dispatch).
var errShortage = errors.New("receiver out of descriptors")

// newCreator checks the creator of the segment info describes: it must be
// visible (a positive pid in this pid namespace), running, and running as
// the user that created the segment.
func newCreator(info sys.ShmInfo) *creator {
	c := &creator{pid: info.CPID, uid: info.CUID, gid: info.CGID, seg: info.ID}
	if c.pid <= 0 {
		c.bad = fmt.Errorf("segment %d has no creator in this pid namespace", info.ID)
		return c
	}
	c.open()
	return c
}

// open opens the creator's pidfd and checks the creator; a shortage of
// descriptors leaves short set and nothing open.
func (c *creator) open() {
	c.short = false
	proc, err := openProcess(c.pid)
	switch {
	case err == nil:
		c.proc = proc
	case errors.Is(err, sys.ErrNoPidfd):
		// check reads /proc on every request instead.
	case sys.IsShortage(err):
		c.short = true
		return
	default:
		c.bad = fmt.Errorf("creator of segment %d: %w", c.seg, err)
		return
	}
	if err := c.check(); err != nil {
		c.close()
		if sys.IsShortage(err) {
			c.short = true
			return
		}
		c.bad = err
	}
}

// check reads /proc for the creator's pid: it must be running as the
// segment's creator uid. With a pidfd, the pidfd's process must not have
// exited after that read, so the read was about it (a pid is not reused
// while its process, or its zombie, exists).
func (c *creator) check() error {
	uids, err := sys.ProcessUIDs(c.pid)
	if err != nil {
		return fmt.Errorf("creator pid %d: %w", c.pid, err)
	}
	if !slices.Contains(uids[:], c.uid) {
		return fmt.Errorf("pid %d runs as uid %d, not as the segment's creator uid %d", c.pid, uids[1], c.uid)
	}
	if c.exited() {
		return fmt.Errorf("creator pid %d: %w", c.pid, sys.ErrExited)
	}
	return nil
}

// exited tells whether the pidfd's process has exited (false without a
// pidfd). Pidfd.Exited costs one poll and no allocation a request.
func (c *creator) exited() bool {
	if c.proc == nil {
		return false
	}
	return c.proc.Exited()
}

// verify accepts a request whose header names pid as its sender. An
// error wrapping errShortage means the check could not be made for want
// of descriptors in this receiver (see shortErr).
func (c *creator) verify(pid int, closing bool) error {
	if c.bad == nil && c.short {
		c.open()
	}
	if c.bad == nil {
		switch {
		case c.short:
			return c.shortErr(pid, closing, errors.New("no pidfd"))
		case c.proc != nil:
			if c.exited() {
				c.bad = fmt.Errorf("creator pid %d: %w", c.pid, sys.ErrExited)
				c.close()
			}
		default:
			if err := c.check(); err != nil {
				if sys.IsShortage(err) {
					return c.shortErr(pid, closing, err)
				}
				return errs.Errorf("%w: %w", transport.ErrBadMessage, err)
			}
		}
	}
	if c.bad != nil {
		return errs.Errorf("%w: %w", transport.ErrBadMessage, c.bad)
	}
	if pid != c.pid {
		return errs.Errorf("%w: header says pid %d, the segment was made by pid %d", transport.ErrBadMessage, pid, c.pid)
	}
	return nil
}

// shortErr is verify's answer when the creator could not be checked for
// want of descriptors: an error wrapping errShortage, to try again later;
// but nil when closing and the header's pid is the kernel's creator pid,
// the one check that needs no descriptor: the request is then only
// answered as closed, which rings the process that made the segment (or
// one that reused its pid) and nobody else.
func (c *creator) shortErr(pid int, closing bool, err error) error {
	if closing && pid == c.pid {
		return nil
	}
	return fmt.Errorf("creator pid %d: %w: %w", c.pid, errShortage, err)
}

func (c *creator) close() {
	if c.proc != nil {
		c.proc.Close()
		c.proc = nil
	}
}

// ringersMayUse tells whether everyone other than its owner (and root) who
// may write a receive FIFO of mode fifoMode and group fifoGID could read
// and write the segment info describes on their own, as the kernel checks
// System V permissions: the owner or creator by the owner bits (and may
// change the mode anyway), members of the segment's group or creator group
// by the group bits, everyone else by the other bits.
func ringersMayUse(fifoMode, fifoGID uint32, info sys.ShmInfo) bool {
	m := info.Mode
	if fifoMode&0o002 != 0 && m&0o066 != 0o066 {
		return false
	}
	if fifoMode&0o020 != 0 {
		if info.GID == fifoGID || info.CGID == fifoGID {
			return m&0o060 == 0o060
		}
		return m&0o066 == 0o066
	}
	return true
}
