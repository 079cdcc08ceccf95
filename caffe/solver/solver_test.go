package solver

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layer"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

// tinyNet is a linear softmax classifier on 2×3×3 inputs (a convolution
// whose kernel covers the image), with lr_mult 2 / decay_mult 0 on the bias
// as Caffe's examples set it.
const tinyNet = `
name: "tiny"
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 8 channels: 2 height: 3 width: 3 } }
layer { name: "fc" type: "Convolution" bottom: "data" top: "fc"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3
    weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "acc" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
`

// tinyImages returns n separable-ish random images: class k brightens channel k%2.
func tinyImages(n int) *data.Images {
	r := rand.New(rand.NewPCG(3, 4))
	im := &data.Images{N: n, C: 2, H: 3, W: 3, Float: make([]float32, n*18), Labels: make([]float32, n)}
	for i := 0; i < n; i++ {
		k := i % 4
		im.Labels[i] = float32(k)
		for j := 0; j < 18; j++ {
			v := r.Float32() - 0.5
			if j/9 == k%2 && j%9 < 3*(k/2+1) {
				v += 1
			}
			im.Float[i*18+j] = v
		}
	}
	return im
}

// wideNet has a 2×20,000 inner product, big enough for the parallel update.
const wideNet = `
name: "wide"
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 4 channels: 1 height: 1 width: 20000 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  inner_product_param { num_output: 2
    weight_filler { type: "gaussian" std: 0.01 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
`

func wideImages() *data.Images {
	r := rand.New(rand.NewPCG(5, 6))
	im := &data.Images{N: 4, C: 1, H: 1, W: 20000, Float: make([]float32, 4*20000), Labels: []float32{0, 1, 1, 0}}
	for i := range im.Float {
		im.Float[i] = r.Float32() - 0.5
	}
	return im
}

func solverParam(t *testing.T, extra string) *caffepb.SolverParameter {
	return solverParamFor(t, tinyNet, extra)
}

func solverParamFor(t *testing.T, netDef, extra string) *caffepb.SolverParameter {
	t.Helper()
	np, err := prototxt.ParseNet("net", []byte(netDef))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := prototxt.ParseSolver("solver", []byte(`
base_lr: 0.1 momentum: 0.9 weight_decay: 0.01 lr_policy: "inv" gamma: 0.01 power: 0.75
max_iter: 20 random_seed: 7 test_interval: 0`))
	if err != nil {
		t.Fatal(err)
	}
	over := &caffepb.SolverParameter{}
	if err := prototxt.Unmarshal("extra", []byte(extra), over); err != nil {
		t.Fatal(err)
	}
	proto.Merge(sp, over)
	if len(sp.TestIter) == 0 {
		sp.TestIter = []int32{1}
	}
	sp.NetParam = np
	return sp
}

func newTiny[T blob.Float](t *testing.T, sp *caffepb.SolverParameter, images int) *Solver[T] {
	return newWith[T](t, sp, tinyImages(images))
}

func newWith[T blob.Float](t *testing.T, sp *caffepb.SolverParameter, im *data.Images, opts ...Option[T]) *Solver[T] {
	t.Helper()
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	attach := func(ctx context.Context, n *network.Net[T]) error {
		for _, name := range n.FedLayers() {
			src, err := data.NewSource[T](im, data.Transform{}, n.Phase() == caffepb.Phase_TRAIN, 1)
			if err != nil {
				return err
			}
			if err := n.SetSource(name, src); err != nil {
				return err
			}
		}
		return nil
	}
	s, err := New[T](t.Context(), sp, append([]Option[T]{WithRegistry[T](reg), WithSources(attach)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func weights[T blob.Float](s *Solver[T]) []float64 {
	var w []float64
	for _, p := range s.Params() {
		for _, v := range p.Data() {
			w = append(w, float64(v))
		}
	}
	return w
}

// One solver step must apply lr_mult, decay_mult, weight_decay and the lr
// policy exactly as Caffe does; the rule itself is checked by
// TestComputeUpdateHandSteps.
// The wide net's 40,000 weights take the parallel path.
func TestApplyUpdatePlumbing(t *testing.T) {
	for _, typ := range []string{"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam", "wide/SGD", "wide/Adam"} {
		t.Run(typ, func(t *testing.T) {
			var s *Solver[float64]
			if w, ok := strings.CutPrefix(typ, "wide/"); ok {
				sp := solverParamFor(t, wideNet, `type: "`+w+`"`)
				s = newWith[float64](t, sp, wideImages())
				if n := s.Params()[0].Count(); n < parallelMin {
					t.Fatalf("wide net has %d weights, below the parallel threshold %d", n, parallelMin)
				}
			} else {
				sp := solverParam(t, `type: "`+typ+`"`)
				if typ == "AdaGrad" || typ == "RMSProp" {
					sp.Momentum = proto.Float32(0)
				}
				s = newTiny[float64](t, sp, 8)
			}
			// Take a few steps so the history is not zero.
			if err := s.Step(t.Context(), 3); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ForwardBackward(t.Context()); err != nil {
				t.Fatal(err)
			}
			rate, _ := s.policy.Rate(s.Iter(), 0)
			wantRate := float64(float32(0.1)) * math.Pow(1+float64(float32(0.01))*3, -0.75)
			if math.Abs(rate-wantRate) > 1e-15 {
				t.Fatalf("rate %g, want %g", rate, wantRate)
			}
			lrMult, decayMult := []float64{1, 2}, []float64{1, 0}
			var want [][]float64
			np := len(s.Params())
			hcopy := make([][]float64, len(s.History()))
			for k, h := range s.History() {
				hcopy[k] = append([]float64(nil), h...)
			}
			for i, p := range s.Params() {
				g := append([]float64(nil), p.Diff()...)
				w := append([]float64(nil), p.Data()...)
				for j := range g {
					g[j] += float64(float32(0.01)) * decayMult[i] * w[j]
				}
				var hist [][]float64
				for k := 0; k < s.Method().HistorySets(); k++ {
					hist = append(hist, hcopy[k*np+i])
				}
				ComputeUpdate(s.Method(), s.hyper, wantRate*lrMult[i], s.Iter(), g, hist)
				for j := range w {
					w[j] -= g[j]
				}
				want = append(want, w)
			}
			if _, err := s.ApplyUpdate(); err != nil {
				t.Fatal(err)
			}
			for i, p := range s.Params() {
				for j, v := range p.Data() {
					if math.Abs(v-want[i][j]) > 1e-14 {
						t.Fatalf("param %d[%d] = %.17g, want %.17g", i, j, v, want[i][j])
					}
				}
			}
			if s.Iter() != 4 {
				t.Errorf("iter %d after 4 updates", s.Iter())
			}
		})
	}
}

// Accumulating the same batch twice (iter_size 2) and normalizing must give
// the weights of iter_size 1, for the fused SGD path and the generic path.
func TestIterSizeAccumulation(t *testing.T) {
	for _, typ := range []string{"SGD", "Adam"} {
		for _, reg := range []string{"L2", "L1"} {
			run := func(iterSize int) []float64 {
				sp := solverParam(t, `type: "`+typ+`" regularization_type: "`+reg+`"`)
				sp.IterSize = proto.Int32(int32(iterSize))
				s := newTiny[float64](t, sp, 8)
				if err := s.Step(t.Context(), 5); err != nil {
					t.Fatal(err)
				}
				return weights(s)
			}
			a, b := run(1), run(2)
			for i := range a {
				if math.Abs(a[i]-b[i]) > 1e-12 {
					t.Fatalf("%s %s: weight %d: iter_size 1 gives %.17g, iter_size 2 gives %.17g", typ, reg, i, a[i], b[i])
				}
			}
		}
	}
}

// A run interrupted by a snapshot and resumed from its .solverstate must
// end with exactly the weights of an uninterrupted run.
func TestSnapshotResumeIdentical(t *testing.T) {
	for _, typ := range []string{"SGD", "Adam", "AdaDelta"} {
		t.Run(typ, func(t *testing.T) {
			dir := t.TempDir()
			extra := `type: "` + typ + `" lr_policy: "multistep" stepvalue: 4 stepvalue: 9 gamma: 0.5 snapshot_prefix: "` + filepath.Join(dir, "tiny") + `"`
			full := newTiny[float32](t, solverParam(t, extra), 8)
			if err := full.Step(t.Context(), 14); err != nil {
				t.Fatal(err)
			}
			first := newTiny[float32](t, solverParam(t, extra), 8)
			if err := first.Step(t.Context(), 6); err != nil {
				t.Fatal(err)
			}
			model, state, err := first.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dir, "tiny_iter_6.caffemodel"); model != want {
				t.Errorf("model file %s, want %s", model, want)
			}
			// Caffe's layout: iter, learned_net, current_step, then one history
			// blob per learnable param and history set, shaped like the param.
			st, err := modelio.ReadSolverState(state)
			if err != nil {
				t.Fatal(err)
			}
			np := len(first.Params())
			if st.GetIter() != 6 || st.GetLearnedNet() != model || st.GetCurrentStep() != 1 ||
				len(st.GetHistory()) != np*first.Method().HistorySets() {
				t.Fatalf("solverstate iter %d, learned_net %q, current_step %d, %d history blobs",
					st.GetIter(), st.GetLearnedNet(), st.GetCurrentStep(), len(st.GetHistory()))
			}
			for k, h := range st.GetHistory() {
				if got, want := modelio.ProtoShape(h), first.Params()[k%np].Shape(); !blob.ShapeEquals(got, want) || len(h.GetData()) != first.Params()[k%np].Count() {
					t.Errorf("history blob %d: shape %v with %d values, want shape %v", k, got, len(h.GetData()), want)
				}
			}
			// A fresh solver with a different seed: its initial weights differ,
			// so matching results prove the weights came from the snapshot.
			sp := solverParam(t, extra)
			sp.RandomSeed = proto.Int64(99)
			resumed := newTiny[float32](t, sp, 8)
			if err := resumed.Restore(state); err != nil {
				t.Fatal(err)
			}
			if resumed.Iter() != 6 {
				t.Fatalf("restored iter %d, want 6", resumed.Iter())
			}
			if err := resumed.Step(t.Context(), 8); err != nil {
				t.Fatal(err)
			}
			a, b := weights(full), weights(resumed)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("weight %d: uninterrupted %.9g, resumed %.9g", i, a[i], b[i])
				}
			}
		})
	}
}

func TestTrainingLearnsAndTests(t *testing.T) {
	for _, typ := range []string{"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"} {
		t.Run(typ, func(t *testing.T) {
			sp := solverParam(t, `type: "`+typ+`" test_interval: 100 test_iter: 1 lr_policy: "fixed" average_loss: 5`)
			switch typ {
			case "AdaGrad", "RMSProp":
				sp.Momentum = proto.Float32(0)
			case "AdaDelta":
				sp.BaseLr = proto.Float32(1)
				sp.Momentum = proto.Float32(0.9)
				sp.Delta = proto.Float32(1e-4)
			case "Adam":
				sp.BaseLr = proto.Float32(0.05)
				sp.Momentum = proto.Float32(0.9)
			}
			s := newTiny[float32](t, sp, 32)
			sp.TestIter = []int32{4}
			before, _, err := Score(t.Context(), s.TestNets()[0], 4)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Step(t.Context(), 60); err != nil {
				t.Fatal(err)
			}
			after, err := s.Test(t.Context(), 0)
			if err != nil {
				t.Fatal(err)
			}
			acc := func(sc []TestScore) float64 {
				for _, x := range sc {
					if x.Blob == "accuracy" {
						return x.Value
					}
				}
				t.Fatal("no accuracy output")
				return 0
			}
			if acc(after) < 0.9 || acc(after) <= acc(before) {
				t.Errorf("accuracy %.3f before, %.3f after 60 iterations", acc(before), acc(after))
			}
			if s.SmoothedLoss() <= 0 || s.SmoothedLoss() > 0.5 {
				t.Errorf("smoothed loss %g after training", s.SmoothedLoss())
			}
		})
	}
}

// cancelSource cancels a context on its k-th batch.
type cancelSource struct {
	inner  *data.Source[float32]
	cancel context.CancelFunc
	calls  *int
	k      int
}

func (c cancelSource) Next(top []*blob.Blob[float32]) error {
	*c.calls++
	if *c.calls == c.k {
		c.cancel()
	}
	return c.inner.Next(top)
}

func TestCancelStopsWithinOneIteration(t *testing.T) {
	dir := t.TempDir()
	sp := solverParam(t, `snapshot_prefix: "`+filepath.Join(dir, "c")+`" max_iter: 1000`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reg, _ := layers.Standard()
	calls := 0
	attach := func(ctx context.Context, n *network.Net[float32]) error {
		for _, name := range n.FedLayers() {
			src, err := data.NewSource[float32](tinyImages(8), data.Transform{}, true, 1)
			if err != nil {
				return err
			}
			if n.Phase() == caffepb.Phase_TRAIN {
				if err := n.SetSource(name, cancelSource{src, cancel, &calls, 5}); err != nil {
					return err
				}
			} else if err := n.SetSource(name, src); err != nil {
				return err
			}
		}
		return nil
	}
	s, err := New[float32](ctx, sp, WithRegistry[float32](reg), WithSources(attach))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Solve(ctx)
	if err != context.Canceled {
		t.Fatalf("Solve returned %v, want context.Canceled", err)
	}
	// Cancelled during the 5th forward pass: that iteration completes, the
	// next one does not start.
	if s.Iter() != 5 {
		t.Errorf("stopped at iteration %d, want 5", s.Iter())
	}
	if _, err := filepath.Glob(filepath.Join(dir, "c_iter_5.solverstate")); err != nil {
		t.Error(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "c_iter_5.*")); len(m) != 2 {
		t.Errorf("snapshot after cancel: found %v", m)
	}
}

func TestNewRejectsBadSolvers(t *testing.T) {
	reg, _ := layers.Standard()
	for name, mod := range map[string]func(*caffepb.SolverParameter){
		"unknown type":      func(sp *caffepb.SolverParameter) { sp.Type = proto.String("LBFGS") },
		"unknown policy":    func(sp *caffepb.SolverParameter) { sp.LrPolicy = proto.String("cosine") },
		"momentum adagrad":  func(sp *caffepb.SolverParameter) { sp.Type = proto.String("AdaGrad") },
		"iter_size 0":       func(sp *caffepb.SolverParameter) { sp.IterSize = proto.Int32(0) },
		"no net":            func(sp *caffepb.SolverParameter) { sp.NetParam = nil },
		"two nets":          func(sp *caffepb.SolverParameter) { sp.TrainNetParam = sp.NetParam },
		"regularization L3": func(sp *caffepb.SolverParameter) { sp.RegularizationType = proto.String("L3") },
		"test_iter no net":  func(sp *caffepb.SolverParameter) { sp.TrainNetParam, sp.NetParam = sp.NetParam, nil },
		"hdf5 snapshots":    func(sp *caffepb.SolverParameter) { sp.SnapshotFormat = caffepb.SolverParameter_HDF5.Enum() },
	} {
		sp := solverParam(t, "")
		mod(sp)
		if _, err := New[float32](t.Context(), sp, WithRegistry[float32](reg)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The gradient hook runs between backward and update: zeroing the gradients
// there (with no weight decay) must leave the weights untouched. Progress
// reports come every display iterations.
func TestGradientHookAndProgress(t *testing.T) {
	sp := solverParam(t, `weight_decay: 0 display: 2 test_interval: 3`)
	reg, _ := layers.Standard()
	im := tinyImages(8)
	attach := func(ctx context.Context, n *network.Net[float64]) error {
		if n.Phase() != caffepb.Phase_TRAIN {
			t.Error("a test net was built despite WithoutTestNets")
		}
		src, err := data.NewSource[float64](im, data.Transform{}, true, 1)
		if err != nil {
			return err
		}
		return n.SetSource(n.FedLayers()[0], src)
	}
	calls := 0
	hook := func(ctx context.Context, s *Solver[float64], loss float64) (float64, error) {
		calls++
		for _, p := range s.Params() {
			clear(p.Diff())
		}
		return loss + 1000, nil
	}
	var reports []Progress
	s, err := New[float64](t.Context(), sp, WithRegistry[float64](reg), WithSources(attach), WithoutTestNets[float64](),
		WithGradientHook(hook), WithProgress[float64](func(p Progress) { reports = append(reports, p) }))
	if err != nil {
		t.Fatal(err)
	}
	before := weights(s)
	if err := s.Step(t.Context(), 6); err != nil {
		t.Fatal(err)
	}
	if calls != 6 {
		t.Errorf("hook called %d times in 6 iterations", calls)
	}
	after := weights(s)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("weight %d moved from %g to %g with zeroed gradients", i, before[i], after[i])
		}
	}
	if len(reports) != 3 || reports[0].Iter != 0 || reports[2].Iter != 4 || reports[1].Loss <= 1000 || reports[1].LR <= 0 {
		t.Errorf("progress reports %+v, want iterations 0, 2, 4 with the hook's loss (over 1000) and lr", reports)
	}
	if len(s.TestNets()) != 0 {
		t.Errorf("%d test nets built", len(s.TestNets()))
	}
}

// With clip_gradients c and a larger gradient norm, one plain SGD step
// (lr 1, no momentum, no decay) moves the weights by exactly norm c (the
// bias has lr_mult 2, so it is checked separately).
func TestClipGradients(t *testing.T) {
	sp := solverParam(t, `clip_gradients: 0.01 base_lr: 1 lr_policy: "fixed" momentum: 0 weight_decay: 0`)
	s := newTiny[float64](t, sp, 8)
	if _, err := s.ForwardBackward(t.Context()); err != nil {
		t.Fatal(err)
	}
	var sumsq float64
	for _, p := range s.Params() {
		sumsq += SumSq(p.Diff())
	}
	if math.Sqrt(sumsq) <= 0.01 {
		t.Fatalf("gradient norm %g is already under the clip", math.Sqrt(sumsq))
	}
	before := weights(s)
	if _, err := s.ApplyUpdate(); err != nil {
		t.Fatal(err)
	}
	after := weights(s)
	nw := s.Params()[0].Count()
	var moved float64
	for i := range before {
		d := before[i] - after[i]
		if i >= nw {
			d /= 2 // lr_mult 2
		}
		moved += d * d
	}
	if math.Abs(math.Sqrt(moved)-0.01) > 1e-9 {
		t.Errorf("clipped step has norm %.12g, want 0.01", math.Sqrt(moved))
	}
}

// average_loss is a running mean over the last N iterations, as Caffe's
// UpdateSmoothedLoss keeps it.
func TestSmoothedLoss(t *testing.T) {
	s := &Solver[float32]{param: &caffepb.SolverParameter{AverageLoss: proto.Int32(3)}}
	losses := []float64{6, 3, 9, 12, 0, 3}
	want := []float64{6, 4.5, 6, 8, 7, 5} // means of the last ≤3 values
	for i, l := range losses {
		s.updateSmoothedLoss(l)
		s.iter++
		if math.Abs(s.SmoothedLoss()-want[i]) > 1e-12 {
			t.Errorf("after loss %d: smoothed %g, want %g", i, s.SmoothedLoss(), want[i])
		}
	}
}

// On a device net Step reads the loss (a download, which waits for the
// device) on display iterations and the last one only, and reports the
// losses the CPU reports.
func TestDeviceLossReadOncePerDisplay(t *testing.T) {
	run := func(display int, dev kernels.Device) ([]Progress, float64) {
		sp := solverParam(t, fmt.Sprintf("display: %d", display))
		var ps []Progress
		opts := []Option[float64]{WithProgress[float64](func(p Progress) { ps = append(ps, p) })}
		if dev != nil {
			opts = append(opts, WithDevice[float64](dev))
		}
		s := newWith[float64](t, sp, tinyImages(32), opts...)
		if err := s.Step(t.Context(), 12); err != nil {
			t.Fatal(err)
		}
		return ps, s.SmoothedLoss()
	}
	every, sparse := simdev.New(), simdev.New()
	run(1, every)
	devP, devLoss := run(4, sparse)
	cpuP, cpuLoss := run(4, nil)
	// Display 1 reads all 12 losses; display 4 reads iterations 0, 4, 8
	// and 11: 8 downloads fewer, one a loss.
	if got := every.Calls("Download") - sparse.Calls("Download"); got != 8 {
		t.Errorf("display 4 downloaded %d times fewer than display 1, want 8 (one per loss read saved)", got)
	}
	if len(devP) != len(cpuP) || len(cpuP) != 3 {
		t.Fatalf("%d progress reports on the device, %d on the CPU, want 3", len(devP), len(cpuP))
	}
	for i := range cpuP {
		if d := math.Abs(devP[i].Loss - cpuP[i].Loss); !(d <= 1e-9*math.Abs(cpuP[i].Loss)) || devP[i].Iter != cpuP[i].Iter {
			t.Errorf("report %d: device iter %d loss %g, CPU iter %d loss %g", i, devP[i].Iter, devP[i].Loss, cpuP[i].Iter, cpuP[i].Loss)
		}
	}
	if d := math.Abs(devLoss - cpuLoss); !(d <= 1e-9*math.Abs(cpuLoss)) || cpuLoss == 0 {
		t.Errorf("smoothed loss after Step: device %g, CPU %g", devLoss, cpuLoss)
	}
}

// TestSetStateMismatchKeepsHistory: a solver state whose last history blob
// does not fit its param is refused, naming the blob and the param, and the
// history is left as it was (not overwritten up to the bad blob).
func TestSetStateMismatchKeepsHistory(t *testing.T) {
	s := newTiny[float32](t, solverParam(t, `type: "Adam"`), 8)
	if err := s.Step(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	before := make([][]float32, len(s.History()))
	for k, h := range s.History() {
		before[k] = slices.Clone(h)
	}
	st := s.State("")
	for _, h := range st.GetHistory() {
		for i := range h.Data {
			h.Data[i] = 42
		}
	}
	last := st.GetHistory()[len(st.GetHistory())-1]
	last.Data = last.Data[:len(last.Data)-1]
	err := s.SetState(st)
	if err == nil {
		t.Fatal("a state with a short history blob was accepted")
	}
	k := len(st.GetHistory()) - 1
	name := s.TrainNet().LearnableParamNames()[k%len(s.Params())]
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("history blob %d", k)) || !strings.Contains(msg, name) {
		t.Errorf("error %q does not name history blob %d and param %q", msg, k, name)
	}
	for k, h := range s.History() {
		if !slices.Equal(h, before[k]) {
			t.Fatalf("history blob %d changed by the refused state", k)
		}
	}
	if s.Iter() != 2 {
		t.Errorf("iteration %d after the refused state, want 2", s.Iter())
	}
	// Restore refuses it before loading the weights it names.
	dir := t.TempDir()
	other := newTiny[float32](t, solverParam(t, `type: "Adam" random_seed: 99`), 8)
	model := filepath.Join(dir, "other.caffemodel")
	if err := modelio.WriteCaffemodel(model, other.TrainNet().ToProto(false)); err != nil {
		t.Fatal(err)
	}
	st.LearnedNet = proto.String(model)
	path := filepath.Join(dir, "bad.solverstate")
	if err := modelio.WriteSolverState(path, st); err != nil {
		t.Fatal(err)
	}
	w := weights(s)
	if err := s.Restore(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Restore of a state that does not fit: %v, want an error naming %s", err, path)
	}
	if !slices.Equal(weights(s), w) {
		t.Error("Restore loaded the weights of a state it refused")
	}
}

// TestRestoreFromMovedSnapshot: a snapshot written under an absolute
// prefix and then moved to another directory restores from its new place
// (the weights are found by name beside the .solverstate, as the Spark
// driver's resume finds them), and a state whose weights are nowhere is one
// error naming both places looked at.
func TestRestoreFromMovedSnapshot(t *testing.T) {
	root := t.TempDir()
	old := filepath.Join(root, "run1")
	extra := `snapshot_prefix: "` + filepath.Join(old, "tiny") + `"`
	s := newTiny[float32](t, solverParam(t, extra), 8)
	if err := s.Step(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(root, "copied")
	if err := os.Rename(old, moved); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(moved, "tiny_iter_3.solverstate")
	sp := solverParam(t, extra)
	sp.RandomSeed = proto.Int64(99)
	r := newTiny[float32](t, sp, 8)
	if err := r.Restore(state); err != nil {
		t.Fatalf("restore from the moved directory: %v", err)
	}
	if r.Iter() != 3 || !slices.Equal(weights(r), weights(s)) {
		t.Errorf("restored iteration %d, weights equal %v; want 3 and the snapshot's weights", r.Iter(), slices.Equal(weights(r), weights(s)))
	}
	if err := os.Remove(filepath.Join(moved, "tiny_iter_3.caffemodel")); err != nil {
		t.Fatal(err)
	}
	err := newTiny[float32](t, solverParam(t, extra), 8).Restore(state)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(old, "tiny_iter_3.caffemodel")) ||
		!strings.Contains(err.Error(), filepath.Join(moved, "tiny_iter_3.caffemodel")) {
		t.Errorf("restore without its weights: %v, want an error naming both places looked at", err)
	}
}

// countingCloser is a data source with a Close that counts.
type countingCloser struct {
	layer.BatchSource[float32]
	closed *int
}

func (c countingCloser) Close() error { *c.closed++; return nil }

// TestCloseClosesEveryNetsSources: Solver.Close closes the sources of the
// train net and of each test net.
func TestCloseClosesEveryNetsSources(t *testing.T) {
	s := newTiny[float32](t, solverParam(t, `type: "SGD" test_interval: 100 test_iter: 1 lr_policy: "fixed"`), 8)
	closed, want := 0, 0
	for _, n := range append([]*network.Net[float32]{s.TrainNet()}, s.TestNets()...) {
		for _, name := range n.FedLayers() {
			if err := n.SetSource(name, countingCloser{closed: &closed}); err != nil {
				t.Fatal(err)
			}
			want++
		}
	}
	if want < 2 {
		t.Fatalf("%d fed layers in the train and test nets, want at least 2", want)
	}
	if err := s.Close(); err != nil || closed != want {
		t.Fatalf("Close: error %v, %d of %d sources closed", err, closed, want)
	}
}
