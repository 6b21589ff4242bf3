package locator

import (
	"context"
	"errors"
	"fmt"

	"github.com/gosimpl/gosimpl/internal/netwire"
)

// ErrNoGateway: ListHosts found no gateway (fcgate) attached on this
// host to ask.
var ErrNoGateway = errors.New("simpl: locator: no gateway runs on this host (start fcgate)")

// ErrHostsOff: the gateway runs but does not follow names across hosts
// (NATS refuses it their subjects: see docs/network.md); the error says
// why.
var ErrHostsOff = errors.New("simpl: locator: the gateway does not follow names across hosts")

// GatewayName is the name ListHosts and WatchHosts ask: the host's
// gateway to the others (fcgate), which keeps the names of every host it
// hears from.
const GatewayName = netwire.GatewayName

// hosts is the client that asks the gateway, made when first needed.
func (c *Client) hosts() *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gw == nil {
		c.gw = &Client{ch: c.ch, name: GatewayName, dir: c.dir, unresponsiveAfter: c.unresponsiveAfter}
	}
	return c.gw
}

// ListHosts returns the live names on every host this host's gateway
// hears from, this host's own included, as HOST:NAME (Info.Name; Info.Host
// is HOST), sorted, those matching pattern only (see Match: "SRV*" matches
// SRV* on every host, "b:*" every name on host b). The program needs no
// network configuration: it asks the gateway over the local transports.
// With no gateway attached it returns ErrNoGateway. A host whose gateway
// stopped or went silent is left out within 2 s (docs/network.md).
func (c *Client) ListHosts(ctx context.Context, pattern string) ([]Info, error) {
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	rep, ok, err := ask[listRequest, listReply](ctx, c.hosts(), listRequest{Pattern: pattern})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: no %s in %s", ErrNoGateway, GatewayName, c.dir)
	}
	return rep.Infos, nil
}

// WatchHosts follows the names matching pattern on every host, as
// ListHosts names them, through this host's gateway: first the names
// already there (Resync), then each change within a second of it on its
// host, and a host's names as Disappeared when its gateway stops or goes
// silent. It behaves as Watch does with the locator daemon, the gateway
// in its place: Lost while no gateway answers (Event.Err wraps
// simpl.ErrNotFound when none is attached), Restored and the differences
// as Resync events when one does again. Not safe for concurrent use.
func (c *Client) WatchHosts(pattern string) *Watch {
	return c.hosts().Watch(pattern)
}
