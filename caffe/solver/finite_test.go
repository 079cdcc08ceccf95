package solver

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/data"
	"github.com/gocaffe/gocaffe/caffe/layers"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
)

func newTinyOpts(t *testing.T, sp *caffepb.SolverParameter, opts ...Option[float32]) *Solver[float32] {
	t.Helper()
	reg, err := layers.Standard()
	if err != nil {
		t.Fatal(err)
	}
	im := tinyImages(8)
	attach := func(ctx context.Context, n *network.Net[float32]) error {
		for _, name := range n.FedLayers() {
			src, err := data.NewSource[float32](im, data.Transform{}, n.Phase() == caffepb.Phase_TRAIN, 1)
			if err != nil {
				return err
			}
			if err := n.SetSource(name, src); err != nil {
				return err
			}
		}
		return nil
	}
	s, err := New[float32](t.Context(), sp, append([]Option[float32]{WithRegistry[float32](reg), WithSources(attach)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// regressNet is a linear regression; with divergent's learning rate every
// step multiplies its weights, which reach Inf and then NaN within 30
// iterations (as LeNet does with base_lr 10).
const regressNet = `
name: "regress"
layer { name: "d" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 8 channels: 2 height: 3 width: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 1
    weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "fc" bottom: "label" top: "loss" }
`

const divergent = `base_lr: 50 lr_policy: "fixed" momentum: 0 weight_decay: 0 max_iter: 30 `

func allFinite(t *testing.T, what string, s *Solver[float32]) {
	t.Helper()
	for i, p := range s.Params() {
		if k := firstNonFinite(p.Data()); k >= 0 {
			t.Fatalf("%s: param %s value %d is %v", what, s.TrainNet().LearnableParamNames()[i], k, p.Data()[k])
		}
	}
}

func TestDivergenceStopsTraining(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "tiny")
	s := newTinyOpts(t, solverParamFor(t, regressNet, divergent+`snapshot: 1 snapshot_prefix: "`+prefix+`"`))
	err := s.Solve(t.Context())
	var d *DivergedError
	if !errors.As(err, &d) {
		t.Fatalf("Solve: %v, want a *DivergedError", err)
	}
	if d.Iter != s.Iter() || d.Iter == 0 || d.Iter >= 30 {
		t.Errorf("diverged at iteration %d, solver at %d", d.Iter, s.Iter())
	}
	if d.Layer != "loss" || d.Top != "loss" || d.LR != 50 { // fc is still finite; its square overflows
		t.Errorf("error names layer %q top %q lr %g, want loss, loss, 50", d.Layer, d.Top, d.LR)
	}
	msg := err.Error()
	for _, want := range []string{"iteration", "loss = ", "learning rate = 50", `layer "loss"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	// The weights are those of the last finite iteration, and so is every
	// snapshot written; none was written for the diverged iteration or after.
	allFinite(t, "after divergence", s)
	for it := 1; it <= 30; it++ {
		m := SnapshotFilename(prefix, it, ".caffemodel")
		_, statErr := os.Stat(m)
		if it > d.Iter {
			if statErr == nil {
				t.Errorf("snapshot %s written after divergence at %d", m, d.Iter)
			}
			continue
		}
		if statErr != nil {
			t.Fatalf("snapshot %d missing: %v", it, statErr)
		}
		np, err := modelio.ReadCaffemodel(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := modelio.CheckNetFinite(np); err != nil {
			t.Errorf("snapshot %s: %v", m, err)
		}
	}
}

func TestDivergenceWarnTrainsOn(t *testing.T) {
	s := newTinyOpts(t, solverParamFor(t, regressNet, divergent+`snapshot_after_train: false`), WithNonFinite[float32](NonFiniteWarn))
	if err := s.Solve(t.Context()); err != nil {
		t.Fatalf("warn policy: %v", err)
	}
	if s.Iter() != 30 || s.nonFiniteWarned == 0 {
		t.Errorf("trained to %d with %d non-finite iterations, want 30 and some", s.Iter(), s.nonFiniteWarned)
	}
}

func TestFiniteTrainingPassesCheck(t *testing.T) {
	s := newTinyOpts(t, solverParam(t, ""))
	if err := s.Step(t.Context(), 20); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFinite(s.SmoothedLoss()); err != nil {
		t.Fatal(err)
	}
}

// A gradient too large for a float32 sum of squares is still finite.
func TestCheckFiniteLargeGradient(t *testing.T) {
	s := newTinyOpts(t, solverParam(t, ""))
	for _, p := range s.Params() {
		for i := range p.Diff() {
			p.Diff()[i] = 1e30
		}
	}
	if err := s.CheckFinite(1); err != nil {
		t.Fatalf("1e30 gradients: %v", err)
	}
	s.Params()[1].Diff()[2] = float32(math.Inf(-1))
	var d *DivergedError
	if err := s.CheckFinite(1); !errors.As(err, &d) || d.Param != "fc/1" {
		t.Fatalf("an Inf bias gradient: %v, want a DivergedError naming fc/1", err)
	}
}

func TestLoadRefusesNonFinite(t *testing.T) {
	dir := t.TempDir()
	s := newTinyOpts(t, solverParam(t, `snapshot_prefix: "`+filepath.Join(dir, "tiny")+`"`))
	if err := s.Step(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	model, state, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Weights: a NaN in the bias.
	np, err := modelio.ReadCaffemodel(model)
	if err != nil {
		t.Fatal(err)
	}
	np.Layer[1].Blobs[1].Data[3] = float32(math.NaN())
	bad := filepath.Join(dir, "bad.caffemodel")
	if err := modelio.WriteCaffemodel(bad, np); err != nil {
		t.Fatal(err)
	}
	fresh := newTinyOpts(t, solverParam(t, ""))
	err = fresh.LoadWeights(bad)
	if err == nil || !strings.Contains(err.Error(), `layer "fc" blob 1: data[3] = NaN`) || !strings.Contains(err.Error(), bad) {
		t.Errorf("NaN weights: %v", err)
	}
	if err := newTinyOpts(t, solverParam(t, ""), WithNonFinite[float32](NonFiniteWarn)).LoadWeights(bad); err != nil {
		t.Errorf("NaN weights under the warn policy: %v", err)
	}
	// History: an Inf in the first history blob.
	st, err := modelio.ReadSolverState(state)
	if err != nil {
		t.Fatal(err)
	}
	st.History[0].Data[0] = float32(math.Inf(1))
	badState := filepath.Join(dir, "bad.solverstate")
	if err := modelio.WriteSolverState(badState, st); err != nil {
		t.Fatal(err)
	}
	err = newTinyOpts(t, solverParam(t, "")).Restore(badState)
	if err == nil || !strings.Contains(err.Error(), "history blob 0 (param fc/0): data[0] = +Inf") {
		t.Errorf("Inf history: %v", err)
	}
}

// A snapshot is a pair: when the .solverstate cannot be written, no
// .caffemodel is left either, and no temporary file.
func TestSnapshotPairAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "tiny")
	s := newTinyOpts(t, solverParam(t, `snapshot_prefix: "`+prefix+`"`))
	if err := s.Step(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	// A directory where the .solverstate must go makes its rename fail.
	if err := os.Mkdir(SnapshotFilename(prefix, 1, ".solverstate"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(SnapshotFilename(prefix, 1, ".solverstate"), "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Snapshot(); err == nil {
		t.Fatal("snapshot over a directory succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(SnapshotFilename(prefix, 1, ".solverstate")) {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
