package sys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NudgePipe makes the pipe a receiver nudges a parked sender through: it
// keeps the write end, made non-blocking (its own open file, which the
// sender holding the read end cannot change), and passes the read end.
func NudgePipe() (r, w *FD, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	return NewFD(p[0]), NewFD(p[1]), nil
}

// Nudge writes one byte to a nudge pipe's write end. It never waits: when
// the reader has let the pipe fill, the byte is dropped (the reader has
// wake-ups pending anyway), and a closed reader, or a closed w, is ignored.
func Nudge(w *FD) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.raw >= 0 {
		b := [1]byte{1}
		unix.Write(w.raw, b[:])
	}
}

// NudgeReader checks that fd, received from a receiver, is a pipe, and
// hands it to a file read through Go's poller, which owns it from then on.
func NudgeReader(fd *FD) (*os.File, error) {
	var st unix.Stat_t
	var err error
	if cerr := fd.Control(func(raw int) {
		if err = unix.Fstat(raw, &st); err != nil {
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			err = fmt.Errorf("descriptor of mode %#o is not a pipe", st.Mode)
			return
		}
		err = unix.SetNonblock(raw, true)
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, err
	}
	return fd.File("gosimpl-nudge")
}
