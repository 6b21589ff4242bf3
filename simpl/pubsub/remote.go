package pubsub

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gosimpl/gosimpl/simpl/locator"
)

// Remote subscribers. A subscriber on another host reaches the broker
// through the hosts' gateways: its requests come from this host's gateway,
// and its Cred says where they started (Cred.Remote: its host, its
// program and that program's pid there). The broker cannot signal a
// process on another host, as it does local ones, to see whether it
// lives.
//
// What it uses instead is names across hosts (docs/network.md): this
// host's gateway follows every host's names, and a program on another
// host is alive while a name its pid holds is listed. So the broker
// watches, through its own Channel and this host's gateway
// (locator.Client.WatchHosts), the names of each host it has remote
// subscribers from, while it has some; when the last name of a
// subscriber's pid goes, the subscriber's process has exited or been
// killed, or its host's gateway has stopped, been killed or cut off, and
// its subscriptions end (ended as "dead", as a local subscriber's whose
// process is gone). The gateways bound that: a name's holder killed is
// seen within a second, a host's gateway gone within 2 s, stopped at once.
//
// Why names across hosts rather than the remote transport: the gateways
// keep no state about a remote sender once its request is delivered (a
// held Next is a local Send by this host's gateway), and tell the
// receiving side nothing when the sending program or its gateway goes;
// the sending side alone notices that (its silence). Names across hosts
// already carry, host by host, exactly the liveness wanted, with the
// bounds above, and need nothing new on the wire.
//
// What it does not cover: a subscriber whose names never reached this
// host (killed within milliseconds of subscribing, before its name was
// published, or on a host over the gateway's cap of names, or with names
// across hosts off) ends by its lease, as before. A subscriber whose host
// is cut off for 1.5 s loses its subscriptions even if it comes back; its
// next Next fails with ErrEnded, and it must subscribe again.

// origin is a remote subscriber: its host and its pid there.
type origin struct {
	host string
	pid  int
}

// hostWatch is the watch of one host's names.
type hostWatch struct {
	subs   int // the host's remote subscriptions
	cancel context.CancelFunc
}

// watchRetry is how long a watch that failed (names across hosts off in
// this host's gateway) waits before it tries again.
const watchRetry = time.Second

// watchFromLocked counts s in its host's watch, starting the watch with
// the host's first remote subscription.
func (b *Broker) watchFromLocked(s *sub) {
	if s.from.host == "" || b.remote == nil || b.rctx.Err() != nil {
		return
	}
	w := b.hosts[s.from.host]
	if w == nil {
		ctx, cancel := context.WithCancel(b.rctx)
		w = &hostWatch{cancel: cancel}
		b.hosts[s.from.host] = w
		host, ch := s.from.host, b.remote
		b.watchers.Go(func() { b.watchHost(ctx, host, locator.NewClient(ch, "")) })
	}
	w.subs++
}

// unwatchFromLocked uncounts s from its host's watch, stopping the watch
// with the host's last remote subscription.
func (b *Broker) unwatchFromLocked(s *sub) {
	w := b.hosts[s.from.host]
	if s.from.host == "" || w == nil {
		return
	}
	if w.subs--; w.subs == 0 {
		w.cancel()
		delete(b.hosts, s.from.host)
	}
}

// watchHost follows host's names until ctx ends, counting the names of
// each pid there, and ends the subscriptions of a pid whose last name
// goes.
func (b *Broker) watchHost(ctx context.Context, host string, c *locator.Client) {
	defer c.Close() // its connection to the gateway: one a watch, else one leaked at each
	w := c.WatchHosts(host + ":*")
	defer func() { w.Close() }() // its request in flight: the current watch's
	names := make(map[int]int)   // names held, by pid on host
	failing := false             // said so, and not followed since
	for {
		ev, err := w.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Names across hosts are off, or this Channel is closing:
			// lease only, until they are on (a new watch, from its
			// snapshot). Said once, not at every try.
			if !failing {
				b.logWatch(host, err)
				failing = true
			}
			t := time.NewTimer(watchRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			w.Close()
			w, names = c.WatchHosts(host+":*"), make(map[int]int)
			continue
		}
		failing = false
		switch ev.Kind {
		case locator.Appeared:
			names[ev.Info.PID]++
		case locator.Disappeared:
			if names[ev.Info.PID] == 0 {
				continue
			}
			if names[ev.Info.PID]--; names[ev.Info.PID] == 0 {
				delete(names, ev.Info.PID)
				b.remoteGone(origin{host, ev.Info.PID})
			}
		case locator.Lost:
			// No gateway here to ask: no remote subscriber reaches the
			// broker meanwhile either. What changed is told on
			// Restored.
			b.logWatch(host, ev.Err)
		}
	}
}

// remoteGone ends the subscriptions of remote subscriber o.
func (b *Broker) remoteGone(o origin) {
	var wakes []wake
	b.mu.Lock()
	for _, s := range b.subs {
		if s.from == o {
			wakes = b.end(s, endDead, wakes)
		}
	}
	b.mu.Unlock()
	b.wakeAll(wakes)
}

// logWatch reports, at level Warn, that the names of host cannot be
// followed: its subscribers' subscriptions end by their lease only.
func (b *Broker) logWatch(host string, err error) {
	l := slog.Default()
	if b.o.loggerSet {
		l = b.o.logger
	}
	if l == nil || errors.Is(err, context.Canceled) {
		return
	}
	l.Warn("pubsub: cannot follow the names of a host with remote subscribers; their subscriptions end by their lease", "host", host, "err", err)
}
