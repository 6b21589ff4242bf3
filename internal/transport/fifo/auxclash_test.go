package fifo

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/internal/proctest"
	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/transport"
)

// Two names of one process that share their first 29 bytes each send a
// second request at once (an auxiliary identity, NAME#k, which shortens
// the name): the four senders are four identities, and each Send gets its
// own reply. Before, each endpoint numbered its identities from 1, both
// got the same one, the second took over the first's reply FIFO, and a
// reply to one endpoint's Send reached the other's (helper-58).
func TestAuxIdentitiesDistinct(t *testing.T) {
	dir := proctest.Dir(t)
	reg, err := naming.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	attach := func(name string) *Endpoint {
		ep, err := Attach(name, Options{Registry: reg, ThreadWait: threadWait})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		return ep
	}
	srv := attach("SRV")
	a, b := attach(strings.Repeat("x", 30)), attach(strings.Repeat("x", 29))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct{ who, reply string }
	results := make(chan result, 4)
	var reqs []transport.Request
	whoms := map[string]string{} // identity -> request
	for i, ep := range []*Endpoint{a, b} {
		c, err := ep.Locate("SRV")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for k := range 2 {
			who := string(rune('A'+i)) + string(rune('1'+k))
			go func() {
				buf := make([]byte, 64)
				n, err := c.Send(ctx, []byte(who), buf)
				if err != nil {
					results <- result{who, "error: " + err.Error()}
					return
				}
				results <- result{who, string(buf[:n])}
			}()
			// Received before the next Send starts, which so needs an
			// identity of its own.
			r, _, err := srv.Receive(ctx)
			if err != nil {
				t.Fatal(err)
			}
			whom, _ := r.Sender()
			if other, dup := whoms[whom]; dup {
				t.Errorf("requests %s and %s came from one identity, %q", other, r.Data(), whom)
			}
			whoms[whom] = string(r.Data())
			reqs = append(reqs, r)
		}
	}
	for _, r := range reqs {
		if err := r.Reply([]byte("re:" + string(r.Data()))); err != nil {
			t.Errorf("reply to %s: %v", r.Data(), err)
		}
	}
	for range 4 {
		if res := <-results; res.reply != "re:"+res.who {
			t.Errorf("Send %s got %q", res.who, res.reply)
		}
	}
}
