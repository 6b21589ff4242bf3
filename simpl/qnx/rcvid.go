package qnx

import (
	"cmp"
	"slices"
	"sync"

	"github.com/gosimpl/gosimpl/simpl"
)

// An rcvid names one received message until it is answered: gen<<16 |
// (slot+1). A client thread's messages get its own slot again while it
// is free, with the same rcvid (as on QNX, where the rcvid names the
// client thread); the generation changes when a slot goes to another
// thread, so a stale rcvid is ESRCH, never another client's message.
// After the answer the slot remembers its client for MsgDeliverEvent
// until it goes to another thread.
type slot struct {
	gen    int
	busy   bool
	m      simpl.Message
	ch     *channel
	cl     *client
	key    sendKey
	info   MessageInfo
	stage  []byte // reply parts written by MsgWrite
	staged int    // how much of stage holds data
	why    int32  // the errno the client asked to unblock with (UNBLOCK channel), else 0
	runs   []run  // the parts of the reply buffer MsgWrite wrote: sorted, apart
}

// run is the part [off, end) of a client's reply buffer.
type run struct{ off, end int }

// addRun records that [off, end) of the reply buffer was written.
func (s *slot) addRun(off, end int) {
	s.runs = append(s.runs, run{off, end})
	slices.SortFunc(s.runs, func(a, b run) int { return cmp.Compare(a.off, b.off) })
	out := s.runs[:0]
	for _, r := range s.runs {
		if k := len(out); k > 0 && r.off <= out[k-1].end {
			out[k-1].end = max(out[k-1].end, r.end)
			continue
		}
		out = append(out, r)
	}
	s.runs = out
}

const maxSlots = 0xFFFF

// maxFreeKept is how many answered slots are kept for their client
// threads (and their rcvids good for MsgDeliverEvent) before the oldest
// goes to a new thread.
const maxFreeKept = 1024

// maxKeptStage is the largest MsgWrite buffer a slot keeps for reuse.
const maxKeptStage = 64 << 10

type rcvTable struct {
	mu    sync.Mutex
	slots []slot
	free  []int // slot indexes, oldest freed first
	// byThread is the slot each client thread's messages get, and keep
	// while it is free: as on QNX, where an rcvid names the client
	// thread, the rcvid of a message answered stays good for
	// MsgDeliverEvent while that thread sends again, and until its
	// client goes (dropClient) or the table runs out of new slots.
	byThread map[thread]int
}

// thread is one client thread: its client and its tid.
type thread struct {
	cl  *client
	tid int
}

var rcvids rcvTable

// add records a received message and returns its rcvid.
func (t *rcvTable) add(m simpl.Message, ch *channel, cl *client, key sendKey, info *MessageInfo) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	th := thread{cl, info.Tid}
	if i, ok := t.byThread[th]; ok && !t.slots[i].busy && t.slots[i].cl == cl {
		// The thread's own slot, free: the same rcvid again.
		t.unfree(i)
		s := &t.slots[i]
		s.busy, s.m, s.ch, s.key, s.info, s.staged, s.why = true, m, ch, key, *info, 0, 0
		s.runs = s.runs[:0]
		return s.gen<<16 | (i + 1), nil
	}
	i, ok := t.goneSlot()
	switch {
	case ok:
	case len(t.free) > maxFreeKept:
		// Enough slots kept for client threads that may send again:
		// the oldest freed goes to this one, so that a client starting
		// a thread a request does not grow the table to its limit.
		i = t.free[0]
		t.unfree(i)
	case len(t.slots) < maxSlots:
		t.slots = append(t.slots, slot{})
		i = len(t.slots) - 1
	case len(t.free) > 0:
		i = t.free[0] // the oldest freed: another thread's rcvid ends
		t.unfree(i)
	default:
		return -1, EAGAIN
	}
	s := &t.slots[i]
	if old := s.cl; old != nil {
		if j, ok := t.byThread[thread{old, s.info.Tid}]; ok && j == i {
			delete(t.byThread, thread{old, s.info.Tid})
		}
	}
	if t.byThread == nil {
		t.byThread = make(map[thread]int)
	}
	t.byThread[th] = i
	s.gen = s.gen%0x7FFF + 1
	s.busy, s.m, s.ch, s.cl, s.key, s.info, s.staged, s.why = true, m, ch, cl, key, *info, 0, 0
	s.runs = s.runs[:0]
	return s.gen<<16 | (i + 1), nil
}

// goneSlot takes from the free list the oldest slot no live client
// thread holds (t.mu held): its client went, so no rcvid of it is good
// any more. Such slots are used before the table grows.
func (t *rcvTable) goneSlot() (int, bool) {
	for k, i := range t.free {
		if cl := t.slots[i].cl; cl == nil || cl.isGone() {
			copy(t.free[k:], t.free[k+1:])
			t.free = t.free[:len(t.free)-1]
			return i, true
		}
	}
	return 0, false
}

// unfree takes slot i out of the free list (t.mu held).
func (t *rcvTable) unfree(i int) {
	for k, j := range t.free {
		if j == i {
			copy(t.free[k:], t.free[k+1:])
			t.free = t.free[:len(t.free)-1]
			return
		}
	}
}

// get returns the busy slot of rcvid, with t.mu held; the caller unlocks.
func (t *rcvTable) get(rcvid int) *slot {
	t.mu.Lock()
	i := rcvid&0xFFFF - 1
	if rcvid <= 0 || i < 0 || i >= len(t.slots) || t.slots[i].gen != rcvid>>16 || !t.slots[i].busy {
		return nil
	}
	return &t.slots[i]
}

// release frees a busy slot (t.mu held).
func (t *rcvTable) release(s *slot, i int) {
	s.busy = false
	s.m = simpl.Message{}
	if cap(s.stage) > maxKeptStage {
		s.stage = nil // a large MsgWrite's buffer is not kept for later messages
	}
	if s.ch != nil {
		s.ch.mu.Lock()
		if s.ch.bySend[s.key] != 0 {
			delete(s.ch.bySend, s.key)
			if s.cl != nil {
				s.cl.noteAnswered(s.key.id)
			}
		}
		s.ch.mu.Unlock()
	}
	t.free = append(t.free, i)
}

// finish answers and frees the slot of rcvid with answer, or is ESRCH.
func (t *rcvTable) finish(rcvid int, answer func(s *slot) error) error {
	s := t.get(rcvid)
	defer t.mu.Unlock()
	if s == nil {
		return ESRCH
	}
	err := answer(s)
	t.release(s, rcvid&0xFFFF-1)
	return err
}

// finishKey is finish for rcvid only while it holds the message key (a
// client thread's next message gets the same rcvid): else ESRCH.
func (t *rcvTable) finishKey(rcvid int, key sendKey, answer func(s *slot) error) error {
	s := t.get(rcvid)
	defer t.mu.Unlock()
	if s == nil || s.key != key {
		return ESRCH
	}
	err := answer(s)
	t.release(s, rcvid&0xFFFF-1)
	return err
}

// drop answers how (replyGone or replyError with ESRCH) and frees every
// busy slot for which match holds.
func (t *rcvTable) drop(how byte, match func(s *slot) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b [replyHeaderSize]byte
	putReplyHeader(b[:], how, int32(ESRCH))
	for i := range t.slots {
		s := &t.slots[i]
		if s.busy && match(s) {
			s.m.Reply(b[:])
			t.release(s, i)
		}
	}
}

func (t *rcvTable) dropChannel(ch *channel) {
	t.drop(replyGone, func(s *slot) bool { return s.ch == ch })
	t.mu.Lock()
	for i := range t.slots {
		if t.slots[i].ch == ch {
			t.slots[i].ch = nil
		}
	}
	for th := range t.byThread {
		if th.cl.ch == ch {
			delete(t.byThread, th)
		}
	}
	t.mu.Unlock()
}

func (t *rcvTable) dropClient(cl *client) {
	t.drop(replyError, func(s *slot) bool { return s.cl == cl })
	t.mu.Lock()
	for th := range t.byThread {
		if th.cl == cl {
			delete(t.byThread, th)
		}
	}
	t.mu.Unlock()
}

// client returns the client of rcvid, answered or not, for
// MsgDeliverEvent: nil once the slot has gone to another client thread.
func (t *rcvTable) client(rcvid int) *client {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := rcvid&0xFFFF - 1
	if rcvid <= 0 || i < 0 || i >= len(t.slots) || t.slots[i].gen != rcvid>>16 {
		return nil
	}
	return t.slots[i].cl
}
