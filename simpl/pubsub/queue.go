package pubsub

// entry is one message in a queue. Its data is shared by every queue it
// is in and never written after publishing.
type entry struct {
	t    *topic
	seq  uint64
	time int64 // unix nanoseconds
	data []byte
}

// queue is a subscription's bounded FIFO: a ring that grows by doubling
// up to its size, and lets go of its memory when it empties. In latest
// mode it also indexes its entries by topic, so that a new message
// replaces its topic's queued one in place.
type queue struct {
	buf  []entry // a power of two long, or nil
	head uint64  // the absolute position of the first entry
	n    int
	size int               // the most entries it holds
	idx  map[*topic]uint64 // latest mode: the absolute position of each topic's entry
	// bytes is the data its entries hold, counted in *total too: the
	// broker's count over every queue (a message in several queues
	// counts in each).
	bytes int64
	total *int64
}

func newQueue(size int, latest bool, total *int64) queue {
	q := queue{size: size, total: total}
	if latest {
		q.idx = make(map[*topic]uint64)
	}
	return q
}

func (q *queue) at(pos uint64) *entry { return &q.buf[pos&uint64(len(q.buf)-1)] }

// push appends e. It returns the entry that made way for it, if any:
// replaced (latest mode, the same topic's) or dropped (the oldest, the
// queue being full).
func (q *queue) push(e entry) (lost entry, replaced, dropped bool) {
	if q.idx != nil {
		if pos, ok := q.idx[e.t]; ok {
			p := q.at(pos)
			lost, *p = *p, e
			q.count(int64(len(e.data)) - int64(len(lost.data)))
			return lost, true, false
		}
	}
	if q.n == q.size {
		lost, dropped = q.pop(), true
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	pos := q.head + uint64(q.n)
	*q.at(pos) = e
	q.n++
	q.count(int64(len(e.data)))
	if q.idx != nil {
		q.idx[e.t] = pos
	}
	return lost, false, dropped
}

// pop removes and returns the first entry; the queue must not be empty.
func (q *queue) pop() entry {
	p := q.at(q.head)
	e := *p
	*p = entry{} // let go of the data
	q.count(-int64(len(e.data)))
	if q.idx != nil && q.idx[e.t] == q.head {
		delete(q.idx, e.t)
	}
	q.head++
	q.n--
	if q.n == 0 && len(q.buf) > 64 {
		q.buf = nil // a burst is over: give its memory back
	}
	return e
}

// count adds d bytes to the queue's and the broker's counts.
func (q *queue) count(d int64) {
	q.bytes += d
	if q.total != nil {
		*q.total += d
	}
}

// peek is the first entry; the queue must not be empty.
func (q *queue) peek() *entry { return q.at(q.head) }

func (q *queue) grow() {
	n := max(8, 2*len(q.buf))
	for n/2 >= q.size && n > 8 { // no larger than the power of two that holds size
		n /= 2
	}
	buf := make([]entry, n)
	for i := range q.n {
		pos := q.head + uint64(i)
		buf[pos&uint64(n-1)] = *q.at(pos)
	}
	q.buf = buf
}

// drain removes every entry, calling f on each.
func (q *queue) drain(f func(entry)) {
	for q.n > 0 {
		f(q.pop())
	}
}
