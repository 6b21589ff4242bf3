package qnx_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/gosimpl/gosimpl/simpl/qnx"
)

// Channels created at once, by ChannelCreate and name_attach, get chids
// of their own, and each is destroyed with nothing left of it. Before,
// the chid a create reserved looked free to the others: creates shared
// one, the later overwrote the earlier, whose name stayed attached with
// nobody receiving (helper-40).
func TestConcurrentCreates(t *testing.T) {
	setup(t)
	const n = 8
	chids := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if i%2 == 0 {
				chids[i], errs[i] = qnx.ChannelCreate(0)
				return
			}
			a, err := qnx.NameAttach(fmt.Sprintf("cc%d", i), 0)
			if err == nil {
				chids[i] = a.Chid
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("create %d: %v", i, errs[i])
		}
		if seen[chids[i]] {
			t.Fatalf("chids %v: %d handed out twice", chids, chids[i])
		}
		seen[chids[i]] = true
	}
	for _, chid := range chids {
		if err := qnx.ChannelDestroy(chid); err != nil {
			t.Errorf("ChannelDestroy(%d): %v", chid, err)
		}
	}
	if left, _ := os.ReadDir(os.Getenv("FIFO_PATH")); len(left) != 0 {
		names := []string{}
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("left in the FIFO directory: %v", names)
	}
}
