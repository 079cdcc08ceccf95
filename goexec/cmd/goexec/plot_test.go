package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlotDrawsCurves plots a small metrics file and checks the PNG: its
// size, and the colours of the train loss, test loss and accuracy curves
// are there (a blank or one-panel image fails).
func TestPlotDrawsCurves(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "run_metrics.jsonl")
	src := `{"iteration":0,"phase":"test","name":"accuracy","value":0.1,"wall_time":1}
{"iteration":0,"phase":"test","name":"loss","value":2.3,"wall_time":1}
{"iteration":0,"phase":"train","name":"loss","value":2.3,"wall_time":1}
{"iteration":50,"phase":"train","name":"loss","value":0.6,"wall_time":2}
{"iteration":100,"phase":"train","name":"loss","value":0.3,"wall_time":3}
{"iteration":100,"phase":"test","name":"accuracy","value":0.95,"wall_time":3}
{"iteration":100,"phase":"test","name":"loss","value":0.2,"wall_time":3}
`
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := plotCmd([]string{in, "-width", "800"}, &log); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "run_metrics.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 700 {
		t.Errorf("size %v, want 800x700", b)
	}
	// Train loss blue, test loss red (top half), test accuracy green (bottom half).
	h := img.Bounds().Dy()
	for _, c := range []struct {
		name   string
		c      color.Color
		lo, hi int
	}{{"train loss", palette[0], 0, h / 2}, {"test loss", palette[1], 0, h / 2}, {"test accuracy", palette[2], h / 2, h}} {
		if n := countColor(img, c.c, c.lo, c.hi); n < 200 {
			t.Errorf("%s: %d pixels of its colour in rows %d-%d, want a drawn curve", c.name, n, c.lo, c.hi)
		}
	}
}

func countColor(img image.Image, c color.Color, y0, y1 int) int {
	r, g, b, _ := c.RGBA()
	n := 0
	for y := y0; y < y1; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if pr>>8 == r>>8 && pg>>8 == g>>8 && pb>>8 == b>>8 {
				n++
			}
		}
	}
	return n
}

func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(bad, []byte("{\"iteration\":1,\"phase\":\"train\",\"name\":\"loss\",\"value\":1}\n{oops\n"), 0o644)
	var sink bytes.Buffer
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "give the metrics file"},
		{[]string{"a", "b"}, "one metrics file"},
		{[]string{empty}, "has no records"},
		{[]string{bad}, "bad.jsonl:2"},
		{[]string{bad, "-width", "10"}, "-width 10"},
		{[]string{filepath.Join(dir, "missing.jsonl")}, "missing.jsonl"},
	} {
		if err := plotCmd(c.args, &sink); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("plot %q: %v, want an error containing %q", c.args, err, c.want)
		}
	}
}
