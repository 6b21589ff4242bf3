//go:build metrics

package main

import "github.com/gosimpl/gosimpl/tools/internal/climetrics"

// metricsBuild says, in -h, how this fcrecv serves -metrics.
const metricsBuild = "built in (-tags metrics)"

// channelMetrics serves the Channel's metrics at addr (nothing for "").
var channelMetrics = climetrics.ChannelMetrics
