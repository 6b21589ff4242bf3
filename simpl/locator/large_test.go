package locator_test

import (
	"context"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosimpl/gosimpl/naming"
	"github.com/gosimpl/gosimpl/simpl"
	"github.com/gosimpl/gosimpl/simpl/locator"
	"github.com/gosimpl/gosimpl/simpl/simpltest"
)

// bigName is the i-th name of the large tables, of the longest length.
func bigName(i int) string {
	n := fmt.Sprintf("h%d:N%05d_", i%3, i)
	return n + strings.Repeat("x", naming.MaxNameLen+3-len(n))
}

// roleTable NAME COUNT: attach NAME, serve a Table of COUNT names on
// three hosts (h0:N00000_xxx..., as a gateway's), print "ready", and stop
// on SIGTERM.
func roleTable(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	count, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	ch, err := simpl.Attach(args[0])
	if err != nil {
		return err
	}
	defer ch.Close()
	tb := locator.NewTable()
	defer tb.Close()
	for i := range count {
		tb.Appear(locator.Info{Name: bigName(i), Host: fmt.Sprintf("h%d", i%3), PID: 1000 + i, UID: 1000, Transport: "shm", Since: time.Unix(1700000000, int64(i))})
	}
	simpltest.Ready()
	for {
		m, err := ch.Receive(ctx)
		if err != nil {
			return nil
		}
		tb.Serve(m)
	}
}

// A list and a watch's first answer larger than the 64 KiB a reply
// starts with (5000 names of the longest, about 600 KiB), across real
// processes: ListHosts, List and WatchHosts get every name, as the
// locator daemon's Client and a gateway's (locator.GatewayName) are
// asked alike; a second list starts in the grown buffer.
func TestLargeReplies(t *testing.T) {
	const count = 5000
	dir := simpltest.Dir(t)
	env := []string{"FIFO_PATH=" + dir}
	gw := simpltest.Start(t, "table", env, locator.GatewayName, strconv.Itoa(count))
	t.Cleanup(func() {
		// Stopped, not killed, even when the test fails: it detaches.
		if gw.Cmd.ProcessState == nil {
			gw.Signal(syscall.SIGTERM)
			if err := gw.Wait(10 * time.Second); err != nil {
				t.Error(err)
			}
		}
	})
	ctx := simpltest.Context(t, 30*time.Second)
	ch, err := simpl.Attach("LARGE", simpl.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	c := locator.NewClient(ch, locator.GatewayName)
	check := func(what string, infos []locator.Info, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(infos) != count {
			t.Fatalf("%s: %d names, want %d", what, len(infos), count)
		}
		seen := map[string]bool{}
		for _, in := range infos {
			seen[in.Name] = true
		}
		for i := range count {
			if !seen[bigName(i)] {
				t.Fatalf("%s: %s missing", what, bigName(i))
			}
		}
	}
	infos, err := c.ListHosts(ctx, "")
	check("ListHosts", infos, err)
	infos, err = c.ListHosts(ctx, "")
	check("ListHosts again", infos, err)
	infos, err = c.List(ctx, "")
	check("List", infos, err)
	w := locator.NewClient(ch, "").WatchHosts("")
	infos = nil
	for range count {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("WatchHosts after %d events: %v", len(infos), err)
		}
		if ev.Kind != locator.Appeared || !ev.Resync {
			t.Fatalf("WatchHosts: %+v, want the names there as Resync", ev)
		}
		infos = append(infos, ev.Info)
	}
	check("WatchHosts", infos, nil)
}
