package solver

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

// deviceCases are the solver settings the device update is checked with:
// every method, L1 and L2, gradient clipping, iter_size.
var deviceCases = []string{
	`type: "SGD"`,
	`type: "SGD" regularization_type: "L1"`,
	`type: "SGD" clip_gradients: 0.05`,
	`type: "Nesterov" iter_size: 2`,
	`type: "AdaGrad" momentum: 0`,
	`type: "RMSProp" momentum: 0 rms_decay: 0.95`,
	`type: "AdaDelta" momentum: 0.95 delta: 1e-6 base_lr: 1`,
	`type: "Adam" momentum: 0.9 momentum2: 0.999 base_lr: 0.01 regularization_type: "L1"`,
}

// relDiff is ‖a − b‖ / ‖b‖.
func relDiff(a, b []float64) float64 {
	var num, den float64
	for i := range b {
		d := a[i] - b[i]
		num += d * d
		den += b[i] * b[i]
	}
	if den == 0 {
		den = 1
	}
	return math.Sqrt(num / den)
}

func history[T blob.Float](s *Solver[T]) []float64 {
	var h []float64
	for _, set := range s.History() {
		for _, v := range set {
			h = append(h, float64(v))
		}
	}
	return h
}

// checkDeviceUpdate trains the tiny net 10 iterations on dev and on the CPU
// with each of deviceCases and compares weights and history (relative
// error ≤ tol).
func checkDeviceUpdate[T blob.Float](t *testing.T, dev kernels.Device, tol float64) {
	for _, c := range deviceCases {
		t.Run(c, func(t *testing.T) {
			sp := solverParam(t, c)
			cpu := newTiny[T](t, sp, 16)
			gpu := newWith[T](t, solverParam(t, c), tinyImages(16), WithDevice[T](dev))
			for _, s := range []*Solver[T]{cpu, gpu} {
				if err := s.Step(t.Context(), 10); err != nil {
					t.Fatal(err)
				}
			}
			if e := relDiff(weights(gpu), weights(cpu)); !(e <= tol) {
				t.Errorf("weights after 10 iterations: relative error %.3g on %s > %.3g", e, dev.Name(), tol)
			}
			if e := relDiff(history(gpu), history(cpu)); !(e <= tol) {
				t.Errorf("history after 10 iterations: relative error %.3g on %s > %.3g", e, dev.Name(), tol)
			}
			if _, rec := dev.(kernels.Recorder); rec && sp.GetIterSize() == 1 && gpu.Replays() == 0 {
				t.Errorf("no iteration was replayed on %s: %s", dev.Name(), gpu.NotReplayedBecause())
			}
			if w := weights(gpu); len(w) == 0 || w[0] == weights(newTiny[T](t, sp, 16))[0] {
				t.Errorf("the weights did not move")
			}
		})
	}
}

// checkDeviceSnapshot: a .solverstate written by a device solver resumes on
// the CPU, and one written on the CPU resumes on the device, each ending
// where an uninterrupted CPU run ends.
func checkDeviceSnapshot[T blob.Float](t *testing.T, dev kernels.Device, tol float64) {
	for _, typ := range []string{"SGD", "Adam"} {
		for _, dir := range []string{"device to CPU", "CPU to device"} {
			t.Run(typ+" "+dir, func(t *testing.T) {
				extra := fmt.Sprintf(`type: %q lr_policy: "multistep" stepvalue: 4 stepvalue: 9 gamma: 0.5 snapshot_prefix: %q`,
					typ, filepath.Join(t.TempDir(), "tiny"))
				full := newTiny[T](t, solverParam(t, extra), 8)
				if err := full.Step(t.Context(), 14); err != nil {
					t.Fatal(err)
				}
				var first, resumed *Solver[T]
				sp := solverParam(t, extra)
				sp.RandomSeed = proto.Int64(99) // other initial weights: the snapshot's must win
				if dir == "device to CPU" {
					first = newWith[T](t, solverParam(t, extra), tinyImages(8), WithDevice[T](dev))
					resumed = newTiny[T](t, sp, 8)
				} else {
					first = newTiny[T](t, solverParam(t, extra), 8)
					resumed = newWith[T](t, sp, tinyImages(8), WithDevice[T](dev))
				}
				if err := first.Step(t.Context(), 6); err != nil {
					t.Fatal(err)
				}
				_, state, err := first.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				if err := resumed.Restore(state); err != nil {
					t.Fatal(err)
				}
				if err := resumed.Step(t.Context(), 8); err != nil {
					t.Fatal(err)
				}
				if e := relDiff(weights(resumed), weights(full)); !(e <= tol) {
					t.Errorf("weights after resuming (%s): relative error %.3g > %.3g", dir, e, tol)
				}
				if e := relDiff(history(resumed), history(full)); !(e <= tol) {
					t.Errorf("history after resuming (%s): relative error %.3g > %.3g", dir, e, tol)
				}
			})
		}
	}
}

// The device update (kernels.Backend.SolverUpdate over the net's flat
// device buffers, the history kept on the device) on the simulated device
// against the CPU solver: the same numbers.
func TestDeviceUpdateMatchesCPU(t *testing.T) {
	checkDeviceUpdate[float64](t, simdev.New(), 1e-12)
}

func TestDeviceSnapshotResume(t *testing.T) {
	checkDeviceSnapshot[float64](t, simdev.New(), 1e-12)
}

// On a device net an iteration reads nothing back: one SolverUpdate, no
// download between display iterations (the last iteration's loss is the
// one read), the history uploaded once.
func TestDeviceUpdateStaysOnDevice(t *testing.T) {
	d := simdev.New()
	s := newWith[float32](t, solverParam(t, `type: "Adam" display: 0`), tinyImages(16), WithDevice[float32](d))
	if err := s.Step(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	down, up, upd := d.Calls("Download"), d.Calls("Upload"), d.Calls("SolverUpdate")
	if err := s.Step(t.Context(), 10); err != nil {
		t.Fatal(err)
	}
	if got := d.Calls("SolverUpdate") - upd; got != 10 {
		t.Errorf("%d SolverUpdate calls in 10 iterations, want 10", got)
	}
	if got := d.Calls("Download") - down; got != 1 {
		t.Errorf("%d downloads in 10 iterations, want 1 (the last loss)", got)
	}
	// Each iteration uploads its batch (data); nothing of the solver's.
	if got := d.Calls("Upload") - up; got != 10 {
		t.Errorf("%d uploads in 10 iterations, want 10 (one batch each)", got)
	}
	if f := d.Faults(); len(f) > 0 {
		t.Errorf("operations got host memory: %v", f)
	}
}

// A device test net's scores are summed on the device and read once: the
// same scores and loss as the CPU's, with one download for all passes.
func TestDeviceScoresMatchCPU(t *testing.T) {
	sp := solverParam(t, `test_interval: 100 test_iter: 5`)
	cpu := newTiny[float64](t, sp, 16)
	d := simdev.New()
	dev := newWith[float64](t, solverParam(t, `test_interval: 100 test_iter: 5`), tinyImages(16), WithDevice[float64](d))
	want, wantLoss, err := Score(t.Context(), cpu.TestNets()[0], 5)
	if err != nil {
		t.Fatal(err)
	}
	down, replays := d.Calls("Download"), d.Replays()
	got, gotLoss, err := Score(t.Context(), dev.TestNets()[0], 5)
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Calls("Download") - down; n != 1 {
		t.Errorf("%d downloads for 5 test passes, want 1", n)
	}
	if n := d.Replays() - replays; n != 4 {
		t.Errorf("%d of 5 test passes replayed, want 4 (all but the first)", n)
	}
	if len(got) != len(want) || len(want) != 2 {
		t.Fatalf("scores: device %v, CPU %v (want accuracy and loss)", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || math.Abs(got[i].Value-want[i].Value) > 1e-12 {
			t.Errorf("score %d: device %s=%.15g, CPU %s=%.15g", i, got[i].Name, got[i].Value, want[i].Name, want[i].Value)
		}
	}
	if math.Abs(gotLoss-wantLoss) > 1e-12 || wantLoss <= 0 {
		t.Errorf("test loss: device %.15g, CPU %.15g", gotLoss, wantLoss)
	}
	if dev.TestNets()[0].DefersLoss() {
		t.Errorf("Score left the test net deferring its loss")
	}
}

// dropoutNet has a Dropout between two inner products.
const dropoutNet = `
name: "dropout"
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 8 channels: 2 height: 3 width: 3 } }
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "fc1"
  inner_product_param { num_output: 40 weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "drop" type: "Dropout" bottom: "fc1" top: "fc1" dropout_param { dropout_ratio: 0.4 } }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"
  inner_product_param { num_output: 4 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc2" bottom: "label" top: "loss" }
`

// A net with Dropout replays its iterations on a device that records, each
// with a fresh mask drawn on the device from the key staged before the
// replay: the same training as on the CPU, which draws the same keys.
func TestDeviceReplaysDropout(t *testing.T) {
	d := simdev.New()
	checkDropoutReplay[float64](t, d, 1e-12)
	if n := d.Calls("DropoutForward"); n != 12 {
		t.Errorf("%d masks drawn on the device in 12 iterations", n)
	}
}

func checkDropoutReplay[T blob.Float](t *testing.T, d kernels.Device, tol float64) {
	cpu := newWith[T](t, solverParamFor(t, dropoutNet, `display: 0`), tinyImages(16))
	dev := newWith[T](t, solverParamFor(t, dropoutNet, `display: 0`), tinyImages(16), WithDevice[T](d))
	for _, s := range []*Solver[T]{cpu, dev} {
		if err := s.Step(t.Context(), 12); err != nil {
			t.Fatal(err)
		}
	}
	if dev.Replays() < 10 {
		t.Errorf("%d of 12 iterations replayed (%s), want 10", dev.Replays(), dev.NotReplayedBecause())
	}
	if e := relDiff(weights(dev), weights(cpu)); !(e <= tol) {
		t.Errorf("weights after 12 iterations: relative error %.3g against the CPU's", e)
	}
	// The masks differ between iterations: a replay that reused one mask
	// would train differently from the CPU, and so would a mask drawn
	// from a stale key.
	if w := weights(dev); len(w) == 0 || w[0] == weights(newWith[T](t, solverParamFor(t, dropoutNet, ``), tinyImages(16)))[0] {
		t.Errorf("the weights did not move")
	}
}

// The solver's tests on a device replay one recorded test pass, kept from
// one test to the next while training moves the weights between them: the
// scores every test_interval are the CPU's.
func TestDeviceTestsReplayBetweenTraining(t *testing.T) {
	checkTestReplay[float64](t, simdev.New(), 1e-12)
}

func checkTestReplay[T blob.Float](t *testing.T, d kernels.Device, tol float64) {
	type score struct {
		iter int
		vals []float64
		loss float64
	}
	run := func(dev bool) []score {
		var got []score
		keep := WithTestScores[T](func(iter, _ int, sc []TestScore, loss float64) {
			var v []float64
			for _, x := range sc {
				v = append(v, x.Value)
			}
			got = append(got, score{iter, v, loss})
		})
		sp := solverParam(t, `test_interval: 4 test_iter: 6 test_initialization: true display: 0 test_compute_loss: true`)
		opts := []Option[T]{keep}
		if dev {
			opts = append(opts, WithDevice[T](d))
		}
		s := newWith[T](t, sp, tinyImages(16), opts...)
		if err := s.Step(t.Context(), 12); err != nil {
			t.Fatal(err)
		}
		if dev && (len(s.scorers) != 1 || s.scorers[0].replays != 3*5) {
			t.Errorf("test passes replayed: %v, want 15 (5 of 6 in each of 3 tests)", s.scorers)
		}
		return got
	}
	want, got := run(false), run(true)
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("tests: device %d, CPU %d, want 3 each (iterations 0, 4, 8)", len(got), len(want))
	}
	for i := range want {
		if got[i].iter != want[i].iter || len(got[i].vals) != len(want[i].vals) {
			t.Fatalf("test %d: device %+v, CPU %+v", i, got[i], want[i])
		}
		for k := range want[i].vals {
			if !(math.Abs(got[i].vals[k]-want[i].vals[k]) <= tol) {
				t.Errorf("test at iteration %d, output %d: device %.15g, CPU %.15g", want[i].iter, k, got[i].vals[k], want[i].vals[k])
			}
		}
		if !(math.Abs(got[i].loss-want[i].loss) <= tol*(1+math.Abs(want[i].loss))) {
			t.Errorf("test loss at iteration %d: device %.15g, CPU %.15g", want[i].iter, got[i].loss, want[i].loss)
		}
	}
	if want[0].vals[0] == want[2].vals[0] && want[0].loss == want[2].loss {
		t.Errorf("the scores did not change with training: %+v", want)
	}
}

// Iterations whose loss is read (every one with average_loss > 1 or a
// gradient hook, display iterations otherwise) replay their forward and
// backward passes and launch the update after the read: the same losses,
// the same hook input and the same weights as the CPU solver's.
func TestDeviceReadIterationsReplay(t *testing.T) {
	checkReadReplays(t, func() kernels.Device { return simdev.New() }, 1e-12)
}

// checkReadReplays trains with a gradient hook on fresh devices from
// newDevice and on the CPU, in float64, and compares the losses, the hook's
// gradient sums and the weights within tol.
func checkReadReplays(t *testing.T, newDevice func() kernels.Device, tol float64) {
	// The hook halves the gradient on the host, as an all-reduce of two
	// ranks averages it, and reports the loss it saw.
	type seen struct{ losses, sums []float64 }
	hook := func(rec *seen) Option[float64] {
		return WithGradientHook(func(ctx context.Context, s *Solver[float64], loss float64) (float64, error) {
			sum := 0.0
			for _, p := range s.Params() {
				d := p.Diff()
				for i := range d {
					sum += d[i]
					d[i] *= 0.5
				}
			}
			rec.losses, rec.sums = append(rec.losses, loss), append(rec.sums, sum)
			return loss, nil
		})
	}
	for _, c := range []string{`display: 3 average_loss: 4`, `display: 5`, `display: 2 type: "Adam" base_lr: 0.01`} {
		t.Run(c, func(t *testing.T) {
			var cpuSeen, devSeen seen
			var cpuP, devP []Progress
			keep := func(ps *[]Progress) Option[float64] {
				return WithProgress[float64](func(p Progress) { *ps = append(*ps, p) })
			}
			d := newDevice()
			cpu := newWith[float64](t, solverParam(t, c), tinyImages(16), hook(&cpuSeen), keep(&cpuP))
			dev := newWith[float64](t, solverParam(t, c), tinyImages(16), hook(&devSeen), keep(&devP), WithDevice[float64](d))
			for _, s := range []*Solver[float64]{cpu, dev} {
				for k := 0; k < 2; k++ {
					if err := s.Step(t.Context(), 7); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The first iteration is launched (it allocates); the other 13
			// replay their passes, the hook reading each, and none whole.
			if dev.ReadReplays() != 13 || dev.Replays() != 0 {
				t.Errorf("%d iterations replayed forward and backward, %d whole, want 13 and 0 (%s)", dev.ReadReplays(), dev.Replays(), dev.NotReplayedBecause())
			}
			if len(devSeen.losses) != 14 || len(cpuSeen.losses) != 14 {
				t.Fatalf("hook called %d times on the device, %d on the CPU, want 14", len(devSeen.losses), len(cpuSeen.losses))
			}
			for i := range cpuSeen.losses {
				if !(math.Abs(devSeen.losses[i]-cpuSeen.losses[i]) <= tol*(1+math.Abs(cpuSeen.losses[i]))) || !(math.Abs(devSeen.sums[i]-cpuSeen.sums[i]) <= tol*(1+math.Abs(cpuSeen.sums[i]))) {
					t.Errorf("iteration %d: the hook saw loss %.15g and gradient sum %.15g on the device, %.15g and %.15g on the CPU",
						i, devSeen.losses[i], devSeen.sums[i], cpuSeen.losses[i], cpuSeen.sums[i])
				}
			}
			if len(devP) != len(cpuP) || len(cpuP) == 0 {
				t.Fatalf("%d progress reports on the device, %d on the CPU", len(devP), len(cpuP))
			}
			for i := range cpuP {
				if !(math.Abs(devP[i].Loss-cpuP[i].Loss) <= tol*(1+math.Abs(cpuP[i].Loss))) || devP[i].Iter != cpuP[i].Iter {
					t.Errorf("report %d: device iteration %d loss %.15g, CPU iteration %d loss %.15g", i, devP[i].Iter, devP[i].Loss, cpuP[i].Iter, cpuP[i].Loss)
				}
			}
			if e := relDiff(weights(dev), weights(cpu)); !(e <= tol) {
				t.Errorf("weights after 14 iterations: relative error %.3g against the CPU's", e)
			}
		})
	}
}

// Without a hook, display iterations replay forward and backward and the
// others the whole iteration.
func TestDeviceDisplayIterationsReplay(t *testing.T) {
	d := simdev.New()
	s := newWith[float64](t, solverParam(t, `display: 4`), tinyImages(16), WithDevice[float64](d))
	if err := s.Step(t.Context(), 12); err != nil {
		t.Fatal(err)
	}
	// Iteration 0 is launched; 4 and 8 (display) and 11 (the last) replay
	// their passes; the other 8 replay whole.
	if s.ReadReplays() != 3 || s.Replays() != 8 {
		t.Errorf("%d read iterations and %d others replayed, want 3 and 8 (%s)", s.ReadReplays(), s.Replays(), s.NotReplayedBecause())
	}
}
