package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotFormats are the -plot file types, by extension.
var plotFormats = []string{"png", "svg", "pdf"}

// checkPlotFile checks, before anything is measured, that file's type is
// one -plot draws and that its directory exists.
func checkPlotFile(file string) error {
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), ".")
	if !strings.Contains(" "+strings.Join(plotFormats, " ")+" ", " "+ext+" ") || ext == "" {
		return fmt.Errorf("-plot %s: want a .png, .svg or .pdf file", file)
	}
	if st, err := os.Stat(filepath.Dir(file)); err != nil || !st.IsDir() {
		return fmt.Errorf("-plot %s: no directory %s", file, filepath.Dir(file))
	}
	return nil
}

// plotLatency draws the median and p99 round trip of each transport (and
// spin setting) against the message size, both on log scales, into file.
// It writes a file next to it and renames it, so that a failure leaves
// no half-written plot.
func plotLatency(file string, results []result) error {
	p := plot.New()
	senders := "1 sender"
	if len(results) > 0 && results[0].Senders > 1 {
		senders = fmt.Sprintf("%d senders", results[0].Senders)
	}
	p.Title.Text = "fcbench: round-trip latency, " + senders
	p.X.Label.Text = "message and reply size (bytes)"
	p.Y.Label.Text = "round trip (µs)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var ticks []plot.Tick // the sizes measured, as the table shows them
	for _, r := range results {
		x := float64(max(r.Size, 1))
		if !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == x }) {
			ticks = append(ticks, plot.Tick{Value: x, Label: sizeText(r.Size)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	// One series per transport (and spin setting), in the order measured.
	var names []string
	series := map[string][]result{}
	for _, r := range results {
		name := r.Transport
		if r.ZeroCopy {
			name += "-zc"
		}
		if r.Spin != nil && !*r.Spin {
			name += " (no spin)"
		}
		if _, ok := series[name]; !ok {
			names = append(names, name)
		}
		series[name] = append(series[name], r)
	}
	xmin, xmax := 0.0, 0.0
	for i, name := range names {
		for j, stat := range []string{"median", "p99"} {
			var xys plotter.XYs
			for _, r := range series[name] {
				x := float64(max(r.Size, 1)) // a log scale has no 0
				y := r.MedianUS
				if stat == "p99" {
					y = r.P99US
				}
				if y <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: x, Y: y})
				if xmin == 0 || x < xmin {
					xmin = x
				}
				xmax = max(xmax, x)
			}
			if len(xys) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("-plot: %w", err)
			}
			line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
			points.Shape = plotutil.Shape(j)
			if stat == "p99" {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(line, points)
			p.Legend.Add(name+" "+stat, line, points)
		}
	}
	if xmin == xmax { // one size: give the axis some room around it
		p.X.Min, p.X.Max = xmin/2, xmax*2
	}
	w, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), "."))
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".fcbench-plot-*")
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	_, err = w.WriteTo(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("-plot %s: %w", file, err)
	}
	return nil
}
