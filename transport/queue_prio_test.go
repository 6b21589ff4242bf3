package transport

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Handle of requests named by their ids, carrying priorities, that
// records aborts: the posted side of priority order needs no process to
// check (the shared-memory side is checked across processes in simpl).
type prioHandle struct {
	mu      sync.Mutex
	prio    map[uint64]Prio
	name    map[uint64]string
	aborted []string
}

func (h *prioHandle) Data(id uint64) []byte          { return []byte(h.name[id]) }
func (h *prioHandle) Sender(uint64) (string, int)    { return "S", 1 }
func (h *prioHandle) Cred(uint64) (Cred, bool)       { return Cred{}, false }
func (h *prioHandle) MaxReply(uint64) int            { return 0 }
func (h *prioHandle) ReplyBuffer(uint64) []byte      { return nil }
func (h *prioHandle) Reply(uint64, []byte) error     { return nil }
func (h *prioHandle) ReplyInPlace(uint64, int) error { return nil }
func (h *prioHandle) ReplyError(uint64) error        { return nil }
func (h *prioHandle) Relay(uint64, Conn) error       { return ErrNotSupported }
func (h *prioHandle) Claim(id uint64) (uint64, bool) { return id, true }
func (h *prioHandle) Prio(id uint64) (Prio, bool)    { p, ok := h.prio[id]; return p, ok }
func (h *prioHandle) Abort(id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aborted = append(h.aborted, h.name[id])
}

// post queues request name with priority p (none when p is the zero
// Prio with carried false), or a proxy when name starts with "proxy".
func (h *prioHandle) post(q *Queue, name string, p Prio, carried bool) {
	if strings.HasPrefix(name, "proxy") {
		q.Post(Request{}, 7)
		return
	}
	id := uint64(len(h.name) + 1)
	h.name[id] = name
	if carried {
		h.prio[id] = p
	}
	q.Post(NewRequest(h, id), 0)
}

func receiveAll(t *testing.T, q *Queue, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for range n {
		r, proxy, err := q.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if proxy > 0 {
			got = append(got, "proxy")
			continue
		}
		got = append(got, string(r.Data()))
	}
	return strings.Join(got, " ")
}

// Posted requests (FIFO, proxies) in priority order: highest first,
// arrival order within a priority, a request carrying none and a proxy
// ranking as SCHED_OTHER nice 0, the window bounding overtakes; requests
// held for ordering are failed for their senders when the queue closes.
func TestPostedPriorityOrder(t *testing.T) {
	h := &prioHandle{prio: map[uint64]Prio{}, name: map[uint64]string{}}
	q := NewQueue("ORDER", true)
	q.SetPriorityOrder()
	defer q.Close()
	fifo5 := Prio{Policy: SchedFIFO, Level: 5}
	h.post(q, "a", Prio{Policy: SchedOther}, true)
	h.post(q, "b", fifo5, true)
	h.post(q, "c", Prio{}, false)
	h.post(q, "nice5", Prio{Policy: SchedOther, Level: 5}, true)
	h.post(q, "d", fifo5, true)
	h.post(q, "proxy", Prio{}, false)
	if got, want := receiveAll(t, q, 6), "b d a c proxy nice5"; got != want {
		t.Errorf("received %q, want %q", got, want)
	}

	h.post(q, "low", Prio{Policy: SchedIdle}, true)
	var want []string
	for i := range 20 {
		h.post(q, fmt.Sprintf("h%02d", i), Prio{Policy: SchedRR, Level: 50}, true)
		if i == PriorityWindow {
			want = append(want, "low")
		}
		want = append(want, fmt.Sprintf("h%02d", i))
	}
	if got := receiveAll(t, q, 21); got != strings.Join(want, " ") {
		t.Errorf("window %d: received %q, want %q", PriorityWindow, got, strings.Join(want, " "))
	}

	h.post(q, "x", fifo5, true)
	h.post(q, "y", Prio{}, false)
	h.post(q, "z", Prio{}, false)
	if got := receiveAll(t, q, 1); got != "x" {
		t.Fatalf("received %q, want x", got)
	}
	q.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	if got := strings.Join(h.aborted, " "); got != "y z" {
		t.Errorf("closing the queue aborted %q, want the two held requests, y z", got)
	}
}

// Rank follows the kernel's order, and an invalid priority ranks below
// every valid one.
func TestPrioRank(t *testing.T) {
	order := []Prio{
		{Policy: SchedFIFO, Level: 99}, {Policy: SchedRR, Level: 2}, {Policy: SchedFIFO, Level: 1},
		{Policy: SchedOther, Level: -20}, {Policy: SchedBatch, Level: 0}, {Policy: SchedOther, Level: 19},
		{Policy: SchedIdle}, {Policy: 6}, // SCHED_DEADLINE: not carried
	}
	for i := 1; i < len(order); i++ {
		if order[i-1].Rank() <= order[i].Rank() {
			t.Errorf("%+v ranks %d, not above %+v's %d", order[i-1], order[i-1].Rank(), order[i], order[i].Rank())
		}
	}
	if (Prio{Policy: SchedRR, Level: 7}).Rank() != (Prio{Policy: SchedFIFO, Level: 7}).Rank() {
		t.Error("SCHED_RR and SCHED_FIFO of one level rank differently")
	}
	if (Prio{Policy: SchedOther, Level: 20}).Rank() != 0 {
		t.Error("nice 20 ranks above 0")
	}
}
