//go:build integration

package integration

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/metrics"
)

// checkCurves: the driver wrote the validation curves beside the model
// (PREFIX_metrics.jsonl): the loss at each display (every 100 iterations)
// once, the test scores at iteration 0 and at maxIter with the final
// accuracy the driver printed, and their plot PREFIX_metrics.png (800 px wide).
func checkCurves(t *testing.T, dir string, maxIter int, accuracy float64) {
	t.Helper()
	recs, err := metrics.Read(filepath.Join(dir, "lenet_metrics.jsonl"))
	if err != nil {
		t.Errorf("validation curves: %v", err)
		return
	}
	var lossIters, accIters []int
	finalAcc := math.NaN()
	for _, r := range recs {
		switch {
		case r.Phase == metrics.Train && r.Name == "loss":
			lossIters = append(lossIters, r.Iteration)
			if r.Value <= 0 || r.Value > 10 {
				t.Errorf("metrics: train loss %v at iteration %d", r.Value, r.Iteration)
			}
		case r.Phase == metrics.Test && r.Name == "accuracy":
			accIters = append(accIters, r.Iteration)
			if r.Iteration == maxIter {
				finalAcc = r.Value
			}
		}
		if r.WallTime < 1.7e9 {
			t.Errorf("metrics: wall_time %v is no Unix time", r.WallTime)
		}
	}
	var want []int
	for i := 0; i < maxIter; i += 100 {
		want = append(want, i)
	}
	if !slices.Equal(lossIters, want) {
		t.Errorf("metrics: train loss at iterations %v, want %v", lossIters, want)
	}
	if !slices.Equal(accIters, []int{0, maxIter}) {
		t.Errorf("metrics: test accuracy at iterations %v, want [0 %d]", accIters, maxIter)
	}
	if math.Abs(finalAcc-accuracy) > 5e-5 {
		t.Errorf("metrics: final accuracy %v, the driver printed %.4f", finalAcc, accuracy)
	}
	f, err := os.Open(filepath.Join(dir, "lenet_metrics.png"))
	if err != nil {
		t.Errorf("plot of the validation curves: %v", err)
		return
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 800 {
		t.Errorf("plot: %v, width %d (want an 800 px PNG)", err, cfg.Width)
	}
}
