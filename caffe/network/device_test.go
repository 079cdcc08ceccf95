package network

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/prototxt"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

const mixedNet = `
name: "mixed"
force_backward: true
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 6 } } }
layer { name: "a" type: "InnerProduct" bottom: "x" top: "a"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" } } }
layer { name: "b" type: "InnerProduct" bottom: "x" top: "b"
  inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" eltwise_param { coeff: 1 coeff: -2 } }
layer { name: "relu" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "cat" type: "Concat" bottom: "a" bottom: "sum" top: "cat" }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" dropout_param { dropout_ratio: 0.3 } }
layer { name: "tanh" type: "TanH" bottom: "cat" top: "t" }
layer { name: "loss" type: "Reduction" bottom: "t" top: "loss" loss_weight: 1 reduction_param { operation: SUMSQ } }
`

// A net mixing device layers (InnerProduct, Eltwise SUM, ReLU, Concat,
// Dropout, TanH) and a host one (Reduction) computes on the simulated
// device what it computes on the CPU: the blobs are synced around each
// host layer, and the device layers issue their math on the device.
func TestMixedNetOnSimulatedDevice(t *testing.T) {
	sameOnSimulatedDevice(t, mixedNet, "Gemm", "Axpy", "Mul", "DropoutForward", "Copy", "Fill", "ReLUForward", "ActivationForward", "ActivationBackward", "Upload", "Download")
}

const lrnNet = `
name: "lrn"
force_backward: true
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 5 dim: 4 dim: 4 } } }
layer { name: "across" type: "LRN" bottom: "x" top: "a" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layer { name: "within" type: "LRN" bottom: "a" top: "w" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL } }
layer { name: "scale" type: "Scale" bottom: "w" top: "w" scale_param { bias_term: true filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
layer { name: "bias" type: "Bias" bottom: "w" top: "b" bias_param { filler { type: "gaussian" } } }
layer { name: "pool" type: "Pooling" bottom: "b" top: "p" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "loss" type: "Reduction" bottom: "p" top: "loss" loss_weight: 1 reduction_param { operation: SUMSQ } }
`

func TestLRNScaleBiasOnSimulatedDevice(t *testing.T) {
	sameOnSimulatedDevice(t, lrnNet, "LRNForward", "LRNBackward", "AvePoolForward", "AvePoolBackward", "ScaleChannels", "ChannelDot", "AddBias", "BiasGrad")
}

// sameOnSimulatedDevice runs one forward and backward pass of the net (its
// input blob "x" set by formula) on the CPU and on the simulated device
// and compares the loss and all gradients; ops must have run on the device.
func sameOnSimulatedDevice(t *testing.T, net string, ops ...string) {
	t.Helper()
	run := func(opts ...Option) (float64, [][]float64, []float64) { return forwardBackward(t, net, opts...) }
	wantLoss, wantDiffs, wantDx := run()
	d := simdev.New()
	loss, diffs, dx := run(WithDevice(d))
	sameNumbers(t, 1e-12, loss, wantLoss, diffs, wantDiffs, dx, wantDx)
	if f := d.Faults(); len(f) > 0 {
		t.Errorf("device operations got host operands: %v", f)
	}
	for _, op := range ops {
		if d.Calls(op) == 0 {
			t.Errorf("no %s on the device (calls: %v)", op, d)
		}
	}
}

const convNet = `
name: "conv"
force_backward: true
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 3 dim: 4 dim: 9 dim: 8 } } }
layer { name: "c1" type: "Convolution" bottom: "x" top: "c1"
  convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 dilation: 2 group: 2
    weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" } } }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
  convolution_param { num_output: 6 kernel_size: 1 group: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" } } }
layer { name: "c3" type: "Convolution" bottom: "c2" bottom: "c1" top: "c3a" top: "c3b"
  convolution_param { num_output: 5 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "sum" type: "Eltwise" bottom: "c3a" bottom: "c3b" top: "s" }
layer { name: "loss" type: "Reduction" bottom: "s" top: "loss" loss_weight: 1 reduction_param { operation: SUMSQ } }
`

// Convolutions on a device run over the whole batch at once (one im2col,
// one batched GEMM per group, a batched col2im): with groups, dilation,
// stride, a 1×1 kernel and two bottoms sharing weights they compute what
// the per-image CPU path computes.
func TestBatchedConvolutionOnSimulatedDevice(t *testing.T) {
	sameOnSimulatedDevice(t, convNet, "GemmBatched", "GemmNTSum", "Im2col", "Col2im", "AddBias", "BiasGrad")
}

const shapeEltwiseNet = `
name: "shape_eltwise"
force_backward: true
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 3 dim: 2 dim: 5 dim: 3 } } }
layer { name: "a" type: "Convolution" bottom: "x" top: "a"
  convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "gaussian" std: 0.7 } bias_filler { type: "gaussian" } } }
layer { name: "b" type: "Convolution" bottom: "x" top: "b"
  convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "gaussian" std: 0.7 } bias_filler { type: "gaussian" } } }
layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" bottom: "a" top: "p" eltwise_param { operation: PROD } }
layer { name: "quot" type: "Eltwise" bottom: "p" bottom: "b" top: "q" eltwise_param { operation: PROD stable_prod_grad: false } }
layer { name: "max" type: "Eltwise" bottom: "q" bottom: "b" bottom: "a" top: "m" eltwise_param { operation: MAX } }
layer { name: "sig" type: "Sigmoid" bottom: "m" top: "m" }
layer { name: "flat" type: "Flatten" bottom: "m" top: "f" }
layer { name: "shape" type: "Reshape" bottom: "f" top: "r" reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
layer { name: "loss" type: "Reduction" bottom: "r" top: "loss" loss_weight: 1 reduction_param { operation: SUMSQ } }
`

// Split (x, a and b feed several layers), Eltwise PROD (stable and by
// division) and MAX, Sigmoid (in place), Flatten and Reshape run on the device and compute
// there what they compute on the CPU.
func TestSplitEltwiseReshapeOnSimulatedDevice(t *testing.T) {
	sameOnSimulatedDevice(t, shapeEltwiseNet, "Mul", "Div", "EltwiseMax", "MaskSelect", "Copy", "Axpy", "ActivationForward", "ActivationBackward")
	placedOnDevice(t, shapeEltwiseNet, simdev.New(), 3)
}

// forwardBackward builds net in float64 with opts (its input blob "x" set
// by formula), runs one forward and backward pass and returns the loss,
// the parameter gradients and the input gradient.
func forwardBackward(t *testing.T, net string, opts ...Option) (float64, [][]float64, []float64) {
	t.Helper()
	p, err := prototxt.ParseNet("net.prototxt", []byte(net))
	if err != nil {
		t.Fatal(err)
	}
	n, err := New[float64](p, &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), append([]Option{WithSeed(7)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	x := n.BlobByName("x").Data()
	for i := range x {
		x[i] = math.Sin(float64(i) * 0.9)
	}
	n.ClearParamDiffs()
	loss, err := n.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	var diffs [][]float64
	for _, p := range n.LearnableParams() {
		diffs = append(diffs, append([]float64(nil), p.HostDiff()...))
	}
	return loss, diffs, append([]float64(nil), n.BlobByName("x").HostDiff()...)
}

// sameNumbers fails unless the loss and gradients agree within tol
// (relative, absolute below 1).
func sameNumbers(t *testing.T, tol, loss, wantLoss float64, diffs, wantDiffs [][]float64, dx, wantDx []float64) {
	t.Helper()
	close := func(a, b float64) bool { return math.Abs(a-b) <= tol*max(1, math.Abs(b)) }
	if !close(loss, wantLoss) || wantLoss == 0 {
		t.Fatalf("loss %v on the device, %v on the CPU", loss, wantLoss)
	}
	for i := range wantDiffs {
		for j := range wantDiffs[i] {
			if !close(diffs[i][j], wantDiffs[i][j]) {
				t.Fatalf("param %d diff[%d]: %v on the device, %v on the CPU", i, j, diffs[i][j], wantDiffs[i][j])
			}
		}
	}
	for j := range wantDx {
		if !close(dx[j], wantDx[j]) {
			t.Fatalf("input diff[%d]: %v on the device, %v on the CPU", j, dx[j], wantDx[j])
		}
	}
}

// placedOnDevice builds net on dev and fails unless every layer but the
// Input and the Reduction loss is placed on dev and at least splits Split
// layers were inserted.
func placedOnDevice(t *testing.T, net string, dev kernels.Device, splits int) {
	t.Helper()
	n, err := New[float64](parseNet(t, net), &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), WithDevice(dev))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for i, lp := range n.LayerParams() {
		switch lp.GetType() {
		case "Split":
			got++
		case "Input", "Reduction":
			continue
		}
		if pl := n.LayerPlacement(i); pl.Fallback {
			t.Errorf("layer %q (%s) falls back to the CPU", lp.GetName(), lp.GetType())
		}
	}
	if got < splits {
		t.Errorf("%d Split layers inserted, want %d", got, splits)
	}
}

const accuracyNet = `
name: "accuracy"
layer { name: "in" type: "Input" top: "x" top: "label" input_param { shape { dim: 7 dim: 5 dim: 3 } shape { dim: 7 dim: 3 } } }
layer { name: "top1" type: "Accuracy" bottom: "x" bottom: "label" top: "a1" top: "per_class" accuracy_param { ignore_label: 3 } }
layer { name: "top2" type: "Accuracy" bottom: "x" bottom: "label" top: "a2" accuracy_param { top_k: 2 } }
`

// accuracies runs accuracyNet's forward pass in float64 with opts (scores
// with ties, a NaN, labels with ignored positions) and returns a1, a2 and
// the per-class accuracy.
func accuracies(t *testing.T, opts ...Option) []float64 {
	t.Helper()
	n, err := New[float64](parseNet(t, accuracyNet), &caffepb.NetState{Phase: caffepb.Phase_TEST.Enum()}, standard(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	x, label := n.BlobByName("x").Data(), n.BlobByName("label").Data()
	for i := range x {
		x[i] = math.Round(math.Sin(float64(i)*1.7) * 3) // small integers: ties
	}
	x[17] = math.NaN()
	for i := range label {
		label[i] = float64(i*2) - 5*math.Floor(float64(i*2)/5)
	}
	if _, err := n.Forward(); err != nil {
		t.Fatal(err)
	}
	out := append([]float64(nil), n.BlobByName("a1").HostData()...)
	out = append(out, n.BlobByName("a2").HostData()...)
	return append(out, n.BlobByName("per_class").HostData()...)
}

// Accuracy (top 1 with ignore_label and per-class accuracy, top 2) counts
// on the device what it counts on the CPU, exactly.
func TestAccuracyOnSimulatedDevice(t *testing.T) {
	want := accuracies(t)
	d := simdev.New()
	got := accuracies(t, WithDevice(d))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("accuracy output %d: %v on the device, %v on the CPU (all: %v, %v)", i, got[i], want[i], got, want)
		}
	}
	if d.Calls("AccuracyForward") != 2 {
		t.Errorf("%d AccuracyForward calls on the device, want 2", d.Calls("AccuracyForward"))
	}
	if f := d.Faults(); len(f) > 0 {
		t.Errorf("device operations got host operands: %v", f)
	}
	if want[0] == 0 || want[0] == 1 || want[1] == want[0] {
		t.Errorf("accuracies %v do not exercise the count", want)
	}
}

const batchNormNet = `
name: "bn"
force_backward: true
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 3 dim: 4 dim: 5 dim: 3 } } }
layer { name: "c" type: "Convolution" bottom: "x" top: "c"
  convolution_param { num_output: 5 kernel_size: 1 weight_filler { type: "gaussian" std: 0.7 } bias_filler { type: "gaussian" } } }
layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c" batch_norm_param { moving_average_fraction: 0.9 } }
layer { name: "s" type: "Scale" bottom: "c" top: "s" scale_param { bias_term: true filler { type: "gaussian" } bias_filler { type: "gaussian" } } }
layer { name: "bn2" type: "BatchNorm" bottom: "s" top: "b2" batch_norm_param { use_global_stats: true eps: 0.01 } }
layer { name: "loss" type: "Reduction" bottom: "b2" top: "loss" loss_weight: 1 reduction_param { operation: SUMSQ } }
`

// BatchNorm with batch statistics (in place, before a Scale) and with
// global statistics runs on the device and computes there what it
// computes on the CPU; two passes, so the running statistics and scale
// factor the first pass updates are used by the second (checked after it).
func TestBatchNormOnSimulatedDevice(t *testing.T) {
	sameOnSimulatedDevice(t, batchNormNet, "BatchNormForward", "BatchNormBackward")
	placedOnDevice(t, batchNormNet, simdev.New(), 0)
	for passes := 1; passes <= 2; passes++ {
		want := batchNormStats(t, passes)
		got := batchNormStats(t, passes, WithDevice(simdev.New()))
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*max(1, math.Abs(want[i])) {
				t.Fatalf("BatchNorm blob value %d after %d passes: %v on the device, %v on the CPU", i, passes, got[i], want[i])
			}
		}
	}
}

// batchNormStats runs batchNormNet forward twice and returns the blobs of
// bn (running mean, variance, factor), then the loss.
func batchNormStats(t *testing.T, passes int, opts ...Option) []float64 {
	t.Helper()
	n, err := New[float64](parseNet(t, batchNormNet), &caffepb.NetState{Phase: caffepb.Phase_TRAIN.Enum()}, standard(t), append([]Option{WithSeed(7)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var loss float64
	for pass := 0; pass < passes; pass++ {
		x := n.BlobByName("x").Data() // each pass: a write through an old slice would not reach the device
		for i := range x {
			x[i] = math.Sin(float64(i)*0.9 + float64(pass))
		}
		if loss, err = n.Forward(); err != nil {
			t.Fatal(err)
		}
	}
	var out []float64
	for _, b := range n.LayerByName("bn").Blobs() {
		out = append(out, b.HostData()...)
	}
	if want := []float64{1, float64(float32(0.9)) + 1}[passes-1]; out[len(out)-1] != want {
		t.Errorf("scale factor %v after %d passes, want %v", out[len(out)-1], passes, want)
	}
	return append(out, loss)
}
