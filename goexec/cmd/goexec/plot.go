package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gocaffe/gocaffe/caffe/metrics"
)

// runPlot draws a metrics file's curves as a PNG.
func runPlot(args []string) error { return plotCmd(args, os.Stderr) }

type plotFlags struct {
	in, out       string
	width, height int
	title         string
}

func parsePlotFlags(args []string, stderr io.Writer) (plotFlags, error) {
	var f plotFlags
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: goexec plot METRICS.jsonl -out PLOT.png [flags]")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.out, "out", "", "PNG to write (default: METRICS with .png in place of .jsonl)")
	fs.IntVar(&f.width, "width", 800, "image width in pixels")
	fs.IntVar(&f.height, "height", 700, "image height in pixels")
	fs.StringVar(&f.title, "title", "", "title (default: the metrics file's name)")
	// The metrics file may come before or after the flags.
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return f, err
	}
	var problems []string
	switch len(pos) {
	case 0:
		problems = append(problems, "give the metrics file: goexec plot METRICS.jsonl -out PLOT.png")
	case 1:
		f.in = pos[0]
	default:
		problems = append(problems, fmt.Sprintf("one metrics file, got %q", pos))
	}
	if f.width < 200 || f.width > 10000 {
		problems = append(problems, fmt.Sprintf("-width %d: want 200 to 10000 pixels", f.width))
	}
	if f.height < 150 || f.height > 10000 {
		problems = append(problems, fmt.Sprintf("-height %d: want 150 to 10000 pixels", f.height))
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "; "))
	}
	if f.out == "" {
		f.out = strings.TrimSuffix(f.in, ".jsonl") + ".png"
	}
	if f.title == "" {
		f.title = filepath.Base(f.in)
	}
	return f, nil
}

func plotCmd(args []string, stderr io.Writer) error {
	f, err := parsePlotFlags(args, stderr)
	if err != nil {
		return err
	}
	recs, err := metrics.Read(f.in)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return fmt.Errorf("metrics file %s has no records", f.in)
	}
	if err := writePlot(recs, f); err != nil {
		return fmt.Errorf("plot %s: %w", f.out, err)
	}
	fmt.Fprintf(stderr, "goexec plot: wrote %s (%d records)\n", f.out, len(recs))
	return nil
}

// series is one curve: a phase's named value against iterations.
type series struct {
	phase, name string
	pts         plotter.XYs
}

func (s *series) label() string { return s.phase + " " + s.name }

// isLoss tells the loss panel's curves from the score panel's (accuracy
// and any other test output).
func (s *series) isLoss() bool { return strings.Contains(strings.ToLower(s.name), "loss") }

// collect groups records into series, each sorted by iteration; on a
// repeated iteration (a resumed run) the later record wins.
func collect(recs []metrics.Record) []*series {
	byKey := map[[2]string]*series{}
	var order []*series
	last := map[[2]string]map[int]int{}
	for _, r := range recs {
		k := [2]string{r.Phase, r.Name}
		s := byKey[k]
		if s == nil {
			s = &series{phase: r.Phase, name: r.Name}
			byKey[k] = s
			order = append(order, s)
			last[k] = map[int]int{}
		}
		if i, ok := last[k][r.Iteration]; ok {
			s.pts[i].Y = r.Value
			continue
		}
		last[k][r.Iteration] = len(s.pts)
		s.pts = append(s.pts, plotter.XY{X: float64(r.Iteration), Y: r.Value})
	}
	for _, s := range order {
		sort.SliceStable(s.pts, func(i, j int) bool { return s.pts[i].X < s.pts[j].X })
	}
	// Train curves first, then test nets in order.
	sort.SliceStable(order, func(i, j int) bool {
		return order[i].phase == metrics.Train && order[j].phase != metrics.Train
	})
	return order
}

// wholeTicks labels iterations as integers (gonum's default writes 500.00).
type wholeTicks struct{}

func (wholeTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, // brown
}

// panel makes one plot of the given curves.
func panel(title, ylabel string, ss []*series, colorAt int, legendTop bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.X.Label.Text = "Iteration"
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(12)
		a.Tick.Label.Font.Size = vg.Points(10)
	}
	p.X.Tick.Marker = wholeTicks{}
	p.Add(plotter.NewGrid())
	p.Legend.Top = legendTop
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	for i, s := range ss {
		c := palette[(colorAt+i)%len(palette)]
		if len(s.pts) == 1 || s.phase != metrics.Train {
			l, pts, err := plotter.NewLinePoints(s.pts)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.label(), err)
			}
			l.Color, l.Width = c, vg.Points(2)
			pts.Color, pts.Shape, pts.Radius = c, draw.CircleGlyph{}, vg.Points(3)
			p.Add(l, pts)
			p.Legend.Add(s.label(), l, pts)
			continue
		}
		l, err := plotter.NewLine(s.pts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.label(), err)
		}
		l.Color, l.Width = c, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.label(), l)
	}
	return p, nil
}

// writePlot draws the loss curves (top) and the other scores, accuracy
// first among them (bottom), and writes the PNG.
func writePlot(recs []metrics.Record, f plotFlags) error {
	var losses, scores []*series
	for _, s := range collect(recs) {
		if s.isLoss() {
			losses = append(losses, s)
		} else {
			scores = append(scores, s)
		}
	}
	var rows [][]*plot.Plot
	if len(losses) > 0 {
		p, err := panel(f.title+": loss", "Loss", losses, 0, true)
		if err != nil {
			return err
		}
		rows = append(rows, []*plot.Plot{p})
	}
	if len(scores) > 0 {
		ylabel := "Score"
		allAcc := true
		for _, s := range scores {
			allAcc = allAcc && strings.Contains(strings.ToLower(s.name), "acc")
		}
		if allAcc {
			ylabel = "Accuracy"
		}
		p, err := panel(f.title+": "+strings.ToLower(ylabel), ylabel, scores, len(losses), false)
		if err != nil {
			return err
		}
		rows = append(rows, []*plot.Plot{p})
	}
	// One iteration axis for both panels.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range append(slices.Clone(losses), scores...) {
		for _, p := range s.pts {
			lo, hi = math.Min(lo, p.X), math.Max(hi, p.X)
		}
	}
	for _, r := range rows {
		r[0].X.Min, r[0].X.Max = lo, hi
	}
	const dpi = 96
	w := vg.Length(f.width) * vg.Inch / dpi
	h := vg.Length(f.height) * vg.Inch / dpi
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 3}
	canvases := plot.Align(rows, tiles, dc)
	for i, r := range rows {
		r[0].Draw(canvases[i][0])
	}
	if dir := filepath.Dir(f.out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	out, err := os.Create(f.out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
