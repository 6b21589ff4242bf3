package transport

// Priority order and the serving thread's publication: what a receiver
// that inherits priorities (simpl.WithPriorityInheritance) and receives
// in priority order (simpl.WithPriorityOrder) asks of its Queue.

// SetPriorityOrder makes Receive take waiting requests highest priority
// first (Request.Prio, DefaultPrio for those that carry none, proxies
// included), in arrival order within a priority, except that no request
// is overtaken by more than PriorityWindow requests that arrived after
// it. Call it before the first Receive. Arrivals are numbered by the
// polled Source's bell when it is a ServingBell (so that its senders and
// posted requests share one count), else by the queue.
func (q *Queue) SetPriorityOrder() {
	q.prio = true
	q.held = make([]posted, 0, QueueDepth)
}

// ticket numbers a posted request's arrival; the caller read-holds
// postMu.
func (q *Queue) ticket() uint32 {
	if !q.prio {
		return 0
	}
	if p := q.polled.Load(); p != nil {
		if sb, ok := p.bell.(ServingBell); ok {
			return sb.Ticket()
		}
	}
	return q.tick.Add(1)
}

// pick is a candidate and where it waits.
type pick struct {
	c    Candidate
	held bool // in q.held at index c.ID, else in the Source
}

// pollPrio is poll in priority order. Posted requests are moved to held
// (their credit slots kept until they are received) so that they can be
// compared with the Source's; the Source is asked for its best and
// oldest. The caller holds rsem.
func (q *Queue) pollPrio(src Source) (Request, int, bool) {
	for len(q.held) < cap(q.held) {
		select {
		case p := <-q.posted:
			q.held = append(q.held, p)
			continue
		default:
		}
		break
	}
	ps, _ := src.(PrioSource)
	if src != nil && ps == nil {
		// A Source that cannot tell its requests' priorities: held
		// requests first, in arrival order, then the Source.
		if len(q.held) > 0 {
			return q.takeHeld(0)
		}
		return src.Poll()
	}
	// Each failed Take drops its candidate, so this ends; the bound only
	// keeps a Receive from spinning here while senders withdraw.
	for range 8 {
		var best, oldest pick
		have := false
		for i, p := range q.held {
			c := pick{Candidate{Rank: p.req.rank(), Ticket: p.ticket, ID: i}, true}
			if !have || better(c.c, best.c) {
				best = c
			}
			if !have || before(c.c.Ticket, oldest.c.Ticket) {
				oldest = c
			}
			have = true
		}
		if ps != nil {
			if sb, so, ok := ps.Candidates(); ok {
				if !have || better(sb, best.c) {
					best = pick{sb, false}
				}
				if !have || before(so.Ticket, oldest.c.Ticket) {
					oldest = pick{so, false}
				}
				have = true
			}
		}
		if !have {
			return Request{}, 0, false
		}
		chosen := best
		if int32(best.c.Ticket-oldest.c.Ticket) > PriorityWindow {
			chosen = oldest
		}
		if chosen.held {
			return q.takeHeld(chosen.c.ID)
		}
		if r, p, ok := ps.Take(chosen.c); ok {
			return r, p, true
		}
	}
	return Request{}, 0, false
}

// takeHeld removes held request i and returns it, giving its credit slot
// back.
func (q *Queue) takeHeld(i int) (Request, int, bool) {
	p := q.held[i]
	n := len(q.held)
	copy(q.held[i:], q.held[i+1:])
	q.held[n-1] = posted{}
	q.held = q.held[:n-1]
	p.cr.returnSlot()
	return p.req, p.proxy, true
}

// MaxWaiting is the highest priority among the requests waiting in the
// polled Source (see PrioSource.MaxWaiting); ok is false when none waits
// there or the Source cannot tell. Posted requests carry no priority and
// are not counted. Safe for concurrent use.
func (q *Queue) MaxWaiting() (Prio, bool) {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if p := q.polled.Load(); p != nil {
		if ps, ok := p.src.(PrioSource); ok {
			return ps.MaxWaiting()
		}
	}
	return Prio{}, false
}

// PublishServer tells the polled Source's senders, through its bell when
// it is a ServingBell, which thread serves the queue (tid; 0: none) and
// at what rank, so that a sender of a higher rank raises that thread
// while it waits. It reports false when there is no such bell.
func (q *Queue) PublishServer(tid int, rank uint32) bool {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if p := q.polled.Load(); p != nil {
		if sb, ok := p.bell.(ServingBell); ok {
			sb.Server().Store(int32(tid))
			sb.ServerRank().Store(rank)
			return true
		}
	}
	return false
}

// ServerRank is the serving thread's rank as published, raised by any
// sender since; ok is false when there is no ServingBell.
func (q *Queue) ServerRank() (uint32, bool) {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if p := q.polled.Load(); p != nil {
		if sb, ok := p.bell.(ServingBell); ok {
			return sb.ServerRank().Load(), true
		}
	}
	return 0, false
}

// SwapServerRank publishes rank new in place of old, unless a sender
// changed it meanwhile (false), and the serving thread tid again (senders
// can write the word; see PublishServer). Without a ServingBell it
// reports true.
func (q *Queue) SwapServerRank(tid int, old, new uint32) bool {
	q.postMu.RLock()
	defer q.postMu.RUnlock()
	if p := q.polled.Load(); p != nil {
		if sb, ok := p.bell.(ServingBell); ok {
			sb.Server().Store(int32(tid))
			return sb.ServerRank().CompareAndSwap(old, new)
		}
	}
	return true
}
