package qnx

import "github.com/gosimpl/gosimpl/simpl"

// MaxFreeKept is maxFreeKept, for tests: how many answered slots the
// rcvid table keeps for their client threads.
const MaxFreeKept = maxFreeKept

// RcvidTable reports, for tests, how many slots the process's rcvid
// table has and how many of them are free (answered, kept for their
// client threads).
func RcvidTable() (slots, free int) {
	rcvids.mu.Lock()
	defer rcvids.mu.Unlock()
	return len(rcvids.slots), len(rcvids.free)
}

// SendKey reports, for tests, which message rcvid names while it waits
// for its reply: its client's pid and the send id the client gave it.
func SendKey(rcvid int) (pid, id int, ok bool) {
	s := rcvids.get(rcvid)
	defer rcvids.mu.Unlock()
	if s == nil {
		return 0, 0, false
	}
	return int(s.key.pid), int(s.key.id), true
}

// LateUnblock runs, for tests, the rest of an unblock request for the
// message (pid, id) on channel chid that found the message's rcvid in
// the channel (channel.unblock, its REPLY-state case) and was then held
// up, the message answered and another received, before it went on:
// the interleaving of goroutines a test cannot otherwise bring about.
// The request itself is not answered (it has no simpl message). False
// when chid is not a channel of this process.
func LateUnblock(chid, rcvid, pid, id, why int) bool {
	ch := lookupChan(chid)
	if ch == nil {
		return false
	}
	ch.replyExpired(rcvid, sendKey{int32(pid), int32(id)}, simpl.Message{}, int32(why))
	return true
}

// LocalPulses reports, for tests, how many pulses channel chid has
// raised for itself (UNBLOCK, DISCONNECT) and not yet delivered.
func LocalPulses(chid int) int {
	ch := lookupChan(chid)
	if ch == nil {
		return 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.local)
}

// Unblock runs, for tests, the unblock request a client sends for its
// message (pid, id) on channel chid when its MsgSend times out in the
// states given (NTO_TIMEOUT_SEND, _REPLY), leaving with why; the request
// itself has no simpl message. False when chid is not a channel of
// this process.
func Unblock(chid, pid, id, states, why int) bool {
	ch := lookupChan(chid)
	if ch == nil {
		return false
	}
	ch.unblock(simpl.Message{}, pid, header{kind: kindUnblock, a: int32(id), b: int32(states), c: int32(why)})
	return true
}

// UnblockState reports, for tests, what channel chid keeps for messages
// still to come: unblock requests held, and messages withdrawn.
func UnblockState(chid int) (waiting, withdrawn int) {
	ch := lookupChan(chid)
	if ch == nil {
		return 0, 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.waitingU), len(ch.withdrawn)
}
