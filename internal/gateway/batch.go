package gateway

import (
	"runtime"
	"strconv"
	"sync"

	"github.com/gosimpl/gosimpl/internal/netwire"
	"github.com/nats-io/nats.go"
)

// Batching (netwire's batch.go has the format): a request whose payload is
// at most batchMax goes out in a batch with the others bound for its host
// at that moment, and an answer of at most batchMax back in a batch with
// the others bound for the requesting gateway. The NATS servers handle a
// message at a cost that hardly depends on its size, so at 16 senders one
// NATS message per request held the gateways near raw NATS's rate on a
// small machine; a batch carries what waits.
//
// Nothing waits for a batch to fill: the writer goroutine takes what is
// queued as soon as it runs, so a lone request goes out at once (one
// goroutine hand-off later) and batches form only while requests come
// faster than the writer publishes. Larger requests and answers go as
// before, one NATS message each (in chunks beyond Limit).

// batchMaxCap bounds what goes in a batch: a request or reply of up to
// this many bytes.
const batchMaxCap = 16 << 10

// batchRoom is what a batch needs beyond its entries' payloads, at most:
// its header and one entry's fields.
const batchRoom = 8 + netwire.MaxIDPrefix + netwire.MaxInbox + netwire.BatchEntryOverhead

// batchMaxFor is what goes in a batch for a gateway whose NATS messages
// carry at most limit bytes: every entry fits an empty batch.
func batchMaxFor(limit int) int {
	return max(0, min(batchMaxCap, limit-batchRoom))
}

// writer publishes the batches. Safe for concurrent use.
type writer struct {
	g    *Gateway
	mu   sync.Mutex
	reqs map[string]*pendingBatch // requests, by the subject they go to
	ans  map[string]*pendingBatch // answers, by the inbox they go to
	full []*nats.Msg              // batches that could take no more, in order
	kick chan struct{}            // capacity 1: something is queued
	stop chan struct{}
	done chan struct{}
	once sync.Once
	quit bool // stopped: publish at once
}

// pendingBatch is a batch being filled.
type pendingBatch struct {
	buf   []byte
	n     int    // entries in it
	reply string // a request batch's reply subject (no responders)
	batch uint64 // a request batch's number
}

func newWriter(g *Gateway) *writer {
	w := &writer{
		g:    g,
		reqs: make(map[string]*pendingBatch),
		ans:  make(map[string]*pendingBatch),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

// request queues e, the request wt waits for, for the host its subject
// names, and notes in wt the batch it went in (for "no responders")
// before the batch can go. false: the writer has stopped, nothing was
// queued.
func (w *writer) request(subject string, e *netwire.BatchEntry, wt *waiter) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.quit {
		return false, nil
	}
	p := w.reqs[subject]
	size := netwire.BatchEntryOverhead + len(e.Payload)
	if p != nil && len(p.buf)+size > w.g.limit {
		w.full = append(w.full, p.msg(subject, w.g))
		delete(w.reqs, subject)
		p = nil
	}
	if p == nil {
		n := unguessable()
		b, err := netwire.AppendBatch(make([]byte, 0, 4096), netwire.Batch{IDPrefix: w.g.idPrefix, Inbox: w.g.inbox})
		if err != nil {
			return false, err
		}
		p = &pendingBatch{buf: b, batch: n, reply: w.g.inbox + ".x" + strconv.FormatUint(n, 10)}
		w.reqs[subject] = p
	}
	b, err := netwire.AppendBatchEntry(p.buf, e)
	if err != nil {
		return false, err
	}
	p.buf = b
	p.n++
	wt.batch.Store(p.batch)
	w.kickLocked()
	return true, nil
}

// answer queues a for the gateway whose inbox is inbox. When the writer
// has stopped it is published at once, alone.
func (w *writer) answer(inbox string, a *netwire.Answer) error {
	w.mu.Lock()
	if w.quit {
		w.mu.Unlock()
		b, err := netwire.AppendAnswer(netwire.AppendAnswers(nil), a)
		if err != nil {
			return err
		}
		return w.g.nc.Publish(inbox+".a", b)
	}
	defer w.mu.Unlock()
	p := w.ans[inbox]
	if p != nil && len(p.buf)+netwire.AnswerOverhead+len(a.Data) > w.g.limit {
		w.full = append(w.full, p.msg(inbox+".a", w.g))
		delete(w.ans, inbox)
		p = nil
	}
	if p == nil {
		b := netwire.AppendAnswers(make([]byte, 0, 4096))
		p = &pendingBatch{buf: b}
		w.ans[inbox] = p
	}
	b, err := netwire.AppendAnswer(p.buf, a)
	if err != nil {
		return err
	}
	p.buf = b
	p.n++
	w.kickLocked()
	return nil
}

// msg is p as the NATS message it goes in, counted.
func (p *pendingBatch) msg(subject string, g *Gateway) *nats.Msg {
	if p.reply != "" {
		g.stats.batches.Add(1)
		g.stats.batched.Add(int64(p.n))
	} else {
		g.stats.answerBatches.Add(1)
		g.stats.batchedAnswers.Add(int64(p.n))
	}
	return &nats.Msg{Subject: subject, Reply: p.reply, Data: p.buf}
}

func (w *writer) kickLocked() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run publishes what is queued each time something is, until stopped.
func (w *writer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
		case <-w.stop:
			w.flush()
			return
		}
		// Let the goroutines about to queue a request or an answer run
		// first: under load they join this batch rather than the next.
		runtime.Gosched()
		w.flush()
	}
}

// flush publishes every batch queued.
func (w *writer) flush() {
	w.mu.Lock()
	msgs := w.full
	w.full = nil
	for subject, p := range w.reqs {
		if p.n > 0 { // none when its one entry could not be written
			msgs = append(msgs, p.msg(subject, w.g))
		}
		delete(w.reqs, subject)
	}
	for inbox, p := range w.ans {
		msgs = append(msgs, p.msg(inbox+".a", w.g))
		delete(w.ans, inbox)
	}
	w.mu.Unlock()
	for _, m := range msgs {
		if err := w.g.nc.PublishMsg(m); err != nil && m.Reply != "" {
			// No server took the batch: nothing was delivered.
			n, _ := strconv.ParseUint(m.Reply[len(w.g.inbox)+2:], 10, 64)
			w.g.batchLost(n, netwire.StatusUnreachable, netwire.UnreachableLocal)
		}
		// A lost answer batch leaves its requesters in silence: the
		// outcome unknown there, which is the truth.
	}
}

// close stops the writer once it has published what is queued; later
// answers go out at once, alone.
func (w *writer) close() {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		w.mu.Lock()
		w.quit = true
		w.mu.Unlock()
		w.flush() // anything queued between the last flush and quit
	})
}
