//go:build cuda

package solver

import (
	"fmt"
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cuda"
	"github.com/gocaffe/gocaffe/kernels/cuda/cudnn"
)

// The device update on the GPU against the CPU solver: in float64 (the
// same arithmetic up to fused multiply-adds and summation order) and in
// float32, every method, and snapshots that cross between the two.
func TestDeviceUpdateOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	t.Run("float64", func(t *testing.T) { checkDeviceUpdate[float64](t, g, 1e-10) })
	t.Run("float32", func(t *testing.T) { checkDeviceUpdate[float32](t, g, 1e-4) })
	t.Run("snapshot", func(t *testing.T) { checkDeviceSnapshot[float32](t, g, 1e-4) })
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// A Dropout net's replayed iterations draw their masks on the GPU from the
// keys the CPU solver draws (float64: the same masks, the same arithmetic
// up to FMAs), and a test's replayed passes score as the CPU's.
func TestReplaysOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	g.D.SetDNNChoice(cudnn.Deterministic)
	t.Run("dropout", func(t *testing.T) { checkDropoutReplay[float64](t, g, 1e-10) })
	t.Run("tests", func(t *testing.T) { checkTestReplay[float64](t, g, 1e-10) })
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// Iterations whose loss is read replay their passes on the GPU and compute
// what the CPU solver computes, a gradient hook between the read and the
// update (float64: the same arithmetic up to FMAs and summation order).
func TestReadReplaysOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	g.D.SetDNNChoice(cudnn.Deterministic)
	checkReadReplays(t, func() kernels.Device { return g }, 1e-10)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// Iterations replayed from a CUDA graph compute what launching every kernel
// computes: the same net trained with and without the recording, SGD with
// the inv policy and Adam (the rate and Adam's correction change every
// iteration), reading the loss every 4 iterations.
func TestRecordedIterationsOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	g.D.SetDNNChoice(cudnn.Deterministic) // convolutions on cuDNN (when found) that repeat bit for bit
	for _, c := range []string{`type: "SGD" display: 4`, `type: "Adam" display: 4 base_lr: 0.01`} {
		t.Run(c, func(t *testing.T) {
			var ps [2][]Progress
			run := func(k int, opts ...Option[float32]) *Solver[float32] {
				opts = append(opts, WithDevice[float32](g), WithProgress[float32](func(p Progress) { ps[k] = append(ps[k], p) }))
				s := newWith[float32](t, solverParam(t, c), tinyImages(32), opts...)
				if err := s.Step(t.Context(), 10); err != nil {
					t.Fatal(err)
				}
				if err := s.Step(t.Context(), 10); err != nil {
					t.Fatal(err)
				}
				return s
			}
			rec, eager := run(0), run(1, WithoutGraphs[float32]())
			// Launched: display iterations (0, 4, 8, 12, 16), the last of each
			// Step (9, 19), and the first one before a recording exists (0).
			if rec.Replays() != 13 || eager.Replays() != 0 {
				t.Fatalf("%d and %d iterations replayed, want 13 and 0 (%s)", rec.Replays(), eager.Replays(), rec.whyEager)
			}
			if e := relDiff(weights(rec), weights(eager)); !(e <= 1e-6) {
				t.Errorf("weights: relative error %.3g between replayed and launched iterations", e)
			}
			if e := relDiff(history(rec), history(eager)); !(e <= 1e-6) {
				t.Errorf("history: relative error %.3g between replayed and launched iterations", e)
			}
			if len(ps[0]) != len(ps[1]) || len(ps[0]) == 0 {
				t.Fatalf("%d and %d progress reports", len(ps[0]), len(ps[1]))
			}
			for i := range ps[0] {
				if d := math.Abs(ps[0][i].Loss - ps[1][i].Loss); !(d <= 1e-5*math.Abs(ps[1][i].Loss)) {
					t.Errorf("report %d (iteration %d): loss %g replayed, %g launched", i, ps[1][i].Iter, ps[0][i].Loss, ps[1][i].Loss)
				}
			}
		})
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// The next batch copied in on a second stream (Device.SetCopyStream)
// changes nothing that is computed: the same net trained from recorded
// iterations with and without the copy stream ends with bit-identical
// weights, history and losses.
func TestCopyStreamOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	g.D.SetDNNChoice(cudnn.Deterministic) // bit-identical runs need convolutions that repeat bit for bit
	c := `type: "SGD" display: 4`
	var ps [2][]Progress
	run := func(k int, copyStream bool) *Solver[float32] {
		if err := g.D.SetCopyStream(copyStream); err != nil {
			t.Fatal(err)
		}
		s := newWith[float32](t, solverParam(t, c), tinyImages(32), WithDevice[float32](g),
			WithProgress[float32](func(p Progress) { ps[k] = append(ps[k], p) }))
		for range 2 {
			if err := s.Step(t.Context(), 10); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	single, two := run(0, false), run(1, true)
	if err := g.D.SetCopyStream(false); err != nil {
		t.Fatal(err)
	}
	if single.Replays() != 13 || two.Replays() != 13 {
		t.Fatalf("%d and %d iterations replayed, want 13 each (%s %s)", single.Replays(), two.Replays(), single.whyEager, two.whyEager)
	}
	for what, ab := range map[string][2][]float64{"weights": {weights(single), weights(two)}, "history": {history(single), history(two)}} {
		a, b := ab[0], ab[1]
		if len(a) != len(b) || len(a) == 0 {
			t.Fatalf("%s: %d and %d values", what, len(a), len(b))
		}
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s %d: %g with one stream, %g with the copy stream (relative error over all %.3g)", what, i, a[i], b[i], relDiff(b, a))
			}
		}
	}
	if len(ps[0]) != len(ps[1]) || len(ps[0]) == 0 {
		t.Fatalf("%d and %d progress reports", len(ps[0]), len(ps[1]))
	}
	for i := range ps[0] {
		if ps[0][i].Loss != ps[1][i].Loss {
			t.Errorf("report %d (iteration %d): loss %g with one stream, %g with the copy stream", i, ps[0][i].Iter, ps[0][i].Loss, ps[1][i].Loss)
		}
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// convNet has a grouped, padded convolution with a fused ReLU before an
// inner product: convolutions that cuDNN runs forward, backward data and
// backward filter.
const convNet = `
name: "conv"
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 8 channels: 2 height: 3 width: 3 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 6 kernel_size: 2 pad: 1 group: 2
    weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "conv2" type: "Convolution" bottom: "conv" top: "conv2"
  convolution_param { num_output: 5 kernel_size: 3 stride: 2
    weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc"
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
`

// Convolutions on cuDNN are recorded in the iteration's CUDA graph (every
// iteration that does not read the loss is replayed) and replay what
// launching them computes; and they train as GoCaffe's own convolution
// kernels do, to float32's rounding over 20 iterations.
func TestCuDNNTrainingOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	if !g.D.UseDNN(true) {
		t.Skipf("cuDNN not loaded, cuDNN test skipped: %s", g.D.DNN())
	}
	defer g.D.UseDNN(false)
	g.D.SetDNNChoice(cudnn.Deterministic)
	c := `type: "SGD" display: 4`
	run := func(dnn bool, opts ...Option[float32]) *Solver[float32] {
		g.D.UseDNN(dnn)
		s := newWith[float32](t, solverParamFor(t, convNet, c), tinyImages(32), append(opts, WithDevice[float32](g))...)
		for range 2 {
			if err := s.Step(t.Context(), 10); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	before := g.D.DNNCalls()
	rec, eager := run(true), run(true, WithoutGraphs[float32]())
	if g.D.DNNCalls() == before {
		t.Fatal("no convolution ran on cuDNN")
	}
	own := run(false)
	if rec.Replays() != 13 {
		t.Fatalf("%d iterations replayed with cuDNN, want 13 (%s)", rec.Replays(), rec.whyEager)
	}
	if e := relDiff(weights(rec), weights(eager)); !(e <= 1e-6) {
		t.Errorf("weights: relative error %.3g between replayed and launched cuDNN iterations", e)
	}
	if e := relDiff(weights(rec), weights(own)); !(e <= 1e-4) {
		t.Errorf("weights: relative error %.3g between cuDNN and GoCaffe's convolution kernels", e)
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}

// Parameter gradients issued on the side stream (kernels.Beside, the
// convolutions' and inner product's weight and bias gradients beside their
// bottom diffs) change nothing that is computed: the same net trained with
// and without the side stream, recorded and launched, on cuDNN and on the
// direct kernels, ends with bit-identical weights, history and losses.
func TestSideStreamOnCUDA(t *testing.T) {
	g, err := cuda.NewGPU(0)
	if err != nil {
		t.Skipf("no usable CUDA device, GPU test skipped: %v", err)
	}
	defer g.Close()
	defer g.D.SetSideStream(g.D.SetSideStream(true))
	g.D.SetDNNChoice(cudnn.Deterministic) // bit-identical runs need convolutions that repeat bit for bit
	c := `type: "SGD" display: 4`
	for _, mode := range []cuda.DirectMode{cuda.DirectOff, cuda.DirectOn} {
		t.Run(mode.String(), func(t *testing.T) {
			g.D.SetDirectConv(mode)
			defer g.D.SetDirectConv(cuda.DirectAuto)
			type run struct {
				side, graphs bool
				s            *Solver[float32]
				ps           []Progress
			}
			runs := []*run{{side: false, graphs: true}, {side: true, graphs: true}, {side: true, graphs: false}}
			for _, r := range runs {
				g.D.SetSideStream(r.side)
				opts := []Option[float32]{WithDevice[float32](g), WithProgress[float32](func(p Progress) { r.ps = append(r.ps, p) })}
				if !r.graphs {
					opts = append(opts, WithoutGraphs[float32]())
				}
				before := g.D.SideForks()
				r.s = newWith[float32](t, solverParamFor(t, convNet, c), tinyImages(32), opts...)
				for range 2 {
					if err := r.s.Step(t.Context(), 10); err != nil {
						t.Fatal(err)
					}
				}
				if forked := g.D.SideForks() > before; forked != r.side {
					t.Fatalf("side stream %v: forked %v", r.side, forked)
				}
			}
			if n := runs[1].s.Replays(); n != 13 {
				t.Fatalf("%d iterations replayed with the side stream, want 13 (%s)", n, runs[1].s.whyEager)
			}
			base := runs[0]
			for _, r := range runs[1:] {
				name := fmt.Sprintf("side stream, graphs %v", r.graphs)
				for what, ab := range map[string][2][]float64{"weights": {weights(base.s), weights(r.s)}, "history": {history(base.s), history(r.s)}} {
					a, b := ab[0], ab[1]
					if len(a) != len(b) || len(a) == 0 {
						t.Fatalf("%s: %s: %d and %d values", name, what, len(a), len(b))
					}
					for i := range a {
						if a[i] != b[i] {
							t.Fatalf("%s: %s %d: %g on one stream, %g (relative error over all %.3g)", name, what, i, a[i], b[i], relDiff(b, a))
						}
					}
				}
				if len(base.ps) != len(r.ps) || len(r.ps) == 0 {
					t.Fatalf("%s: %d and %d progress reports", name, len(base.ps), len(r.ps))
				}
				for i := range r.ps {
					if base.ps[i].Loss != r.ps[i].Loss {
						t.Errorf("%s: report %d (iteration %d): loss %g on one stream, %g", name, i, r.ps[i].Iter, base.ps[i].Loss, r.ps[i].Loss)
					}
				}
			}
		})
	}
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
}
