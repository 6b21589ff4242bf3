package qnx

// Receivers reports, for tests, how many MsgReceive and MsgReceivePulse
// calls are on channel chid and how many messages it holds for
// MsgReceive: how a test sees that a call has got as far as waiting.
func Receivers(chid int) (rx, prx, held int) {
	ch := lookupChan(chid)
	if ch == nil {
		return 0, 0, 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.rx, ch.prx, len(ch.held)
}
