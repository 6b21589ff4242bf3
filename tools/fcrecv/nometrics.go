//go:build !metrics

package main

import (
	"errors"
	"fmt"

	"github.com/gosimpl/gosimpl/simpl"
)

// metricsBuild says, in -h, how to get -metrics into fcrecv.
const metricsBuild = "needs a build with -tags metrics"

// errNoMetrics is -metrics in an fcrecv built without it.
var errNoMetrics = errors.New("this fcrecv is built without metrics: go install -tags metrics ./tools/fcrecv")

// channelMetrics fails for any address: this build serves no metrics.
func channelMetrics(addr string) ([]simpl.Option, string, func(), error) {
	if addr != "" {
		return nil, "", nil, fmt.Errorf("-metrics %s: %w", addr, errNoMetrics)
	}
	return nil, "", func() {}, nil
}
