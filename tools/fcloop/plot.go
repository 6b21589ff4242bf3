package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// checkPlotFile checks, before anything runs, that file is a .png or .svg
// in a directory that exists.
func checkPlotFile(file string) error {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".png", ".svg":
	default:
		return fmt.Errorf("-plot %s: want a .png or .svg file", file)
	}
	if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
		return fmt.Errorf("-plot %s: no directory %s", file, filepath.Dir(file))
	}
	return nil
}

// plotHistogram draws the histogram of the report, fcloop's cycles and
// cyclictest's wake-ups as a percentage of their totals per latency
// bucket, on a log scale so that the tail shows. It writes a file next to
// file and renames it, so that a failure leaves no half-written plot.
func plotHistogram(file string, r *report) error {
	p := plot.New()
	prio := "SCHED_OTHER"
	if r.FIFO > 0 {
		prio = fmt.Sprintf("SCHED_FIFO %d", r.FIFO)
	}
	p.Title.Text = fmt.Sprintf("fcloop: cycle latency, %d cycles of %s, %s", r.Received, durText(r.PeriodNS), prio)
	p.X.Label.Text = "latency, from the scheduled tick to the actuator's receipt"
	p.Y.Label.Text = "% of cycles (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks []plot.Tick
	for i, b := range r.Histogram {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: boundText(b.FromNS)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.5, float64(len(r.Histogram))-0.5
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	series := []struct {
		name  string
		count func(bucket) uint64
		total uint64
	}{{"fcloop", func(b bucket) uint64 { return uint64(b.Count) }, uint64(r.Received)}}
	if r.Cyclictest != nil {
		series = append(series, struct {
			name  string
			count func(bucket) uint64
			total uint64
		}{"cyclictest (wake-up only)", func(b bucket) uint64 { return b.Cyclictest }, r.Cyclictest.Cycles})
	}
	for i, s := range series {
		var xys plotter.XYs
		for j, b := range r.Histogram {
			if n := s.count(b); n > 0 && s.total > 0 {
				xys = append(xys, plotter.XY{X: float64(j), Y: 100 * float64(n) / float64(s.total)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("-plot: %w", err)
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	w, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), "."))
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".fcloop-plot-*")
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	_, err = w.WriteTo(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	return nil
}
