package sys

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cred is a peer's identity as the kernel reports it.
type Cred struct {
	PID    int
	UID    int
	GID    int   // primary group
	Groups []int // supplementary groups
}

// PeerCred reads SO_PEERCRED from a connected Unix socket.
func PeerCred(rc syscall.RawConn) (Cred, error) {
	var (
		uc   *unix.Ucred
		gerr error
	)
	err := rc.Control(func(fd uintptr) {
		uc, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = gerr
	}
	if err != nil {
		return Cred{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	cred := Cred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}
	err = rc.Control(func(fd uintptr) { cred.Groups, gerr = peerGroups(int(fd)) })
	if err == nil {
		err = gerr
	}
	if err != nil {
		return Cred{}, fmt.Errorf("SO_PEERGROUPS: %w", err)
	}
	return cred, nil
}

// peerGroups reads the peer's supplementary groups (SO_PEERGROUPS).
func peerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 32)
	for {
		n := uint32(4 * len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n/4) > len(buf):
			buf = make([]uint32, n/4)
			continue
		case errno != 0:
			return nil, errno
		}
		groups := make([]int, 0, n/4)
		for _, g := range buf[:min(int(n/4), len(buf))] {
			groups = append(groups, int(g))
		}
		return groups, nil
	}
}

// SendRights sends msg over c with the descriptors fds attached
// (SCM_RIGHTS), each held open until the message is sent. It fails with
// os.ErrClosed, sending nothing, if one of them is closed.
func SendRights(c *net.UnixConn, msg []byte, fds ...*FD) error {
	var oob []byte
	if len(fds) > 0 {
		raw := make([]int, len(fds))
		for i, f := range fds {
			f.mu.RLock()
			defer f.mu.RUnlock()
			if f.raw < 0 {
				return fmt.Errorf("send descriptor: %w", os.ErrClosed)
			}
			raw[i] = f.raw
		}
		oob = unix.UnixRights(raw...)
	}
	_, _, err := c.WriteMsgUnix(msg, oob, nil)
	return err
}

// ParseRights returns the descriptors passed in an SCM_RIGHTS message, as
// plain numbers that the caller must close (ReceiveRights makes them FDs).
func ParseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_RIGHTS && len(m.Data)%4 != 0 {
			// Not whole descriptors, which the kernel never writes:
			// unix.ParseUnixRights would read past the data (and
			// panic), so it is skipped as a message it cannot parse.
			continue
		}
		f, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

// ReceiveRights takes ownership of the descriptors an SCM_RIGHTS message
// brought, in oob as ReadMsgUnix read it.
func ReceiveRights(oob []byte) []*FD {
	raw, _ := ParseRights(oob)
	fds := make([]*FD, len(raw))
	for i, fd := range raw {
		fds[i] = NewFD(fd)
	}
	return fds
}

// WriteNonblock writes b to c in one send(2) with MSG_DONTWAIT: it never
// waits for room (IsWouldBlock tells that case).
func WriteNonblock(c syscall.Conn, b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		werr = unix.Send(int(fd), b, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		return true
	})
	if err != nil {
		return err
	}
	return werr
}

// Unread reports whether c's peer has closed its side or sent something
// not read yet, without reading it or waiting (recv(2) with MSG_PEEK and
// MSG_DONTWAIT): what an idle connection should not have.
func Unread(c syscall.Conn) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var rerr error
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false, err
	case rerr == unix.EAGAIN:
		return false, nil // nothing there: open and quiet
	case rerr != nil:
		return true, rerr // reset, say
	}
	return true, nil // n == 0: closed; n > 0: bytes unread
}

// PeerClosed reports whether c's peer has closed its side, or the
// connection has failed, without reading or waiting (poll(2) for
// POLLRDHUP): unlike Unread, bytes the peer sent and nobody has read yet
// do not count.
func PeerClosed(c syscall.Conn) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var closed bool
	var perr error
	err = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		for {
			var n int
			n, perr = unix.Poll(fds, 0)
			if perr != unix.EINTR {
				closed = perr == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
				return
			}
		}
	})
	if err == nil {
		err = perr
	}
	return closed, err
}
