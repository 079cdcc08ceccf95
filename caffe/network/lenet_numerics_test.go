package network

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/kernels/simdev"
)

// waveSource fills data with a fixed pattern and labels with i mod 10.
type waveSource struct{}

func (waveSource) Next(top []*blob.Blob[float64]) error {
	for i := range top[0].Data() {
		top[0].Data()[i] = 0.5 + 0.5*math.Cos(float64(i)*0.37)
	}
	for i := range top[1].Data() {
		top[1].Data()[i] = float64(i % 10)
	}
	return nil
}

// TestLeNetNumericsGolden pins LeNet's forward and backward numerics: with
// weights set by formula (no fillers, no randomness) and a fixed batch, the
// loss, the accuracy and each parameter gradient's L1 and L2 norms must
// match testdata/golden/lenet_numerics.txt to 1e-9 relative error.
func TestLeNetNumericsGolden(t *testing.T) {
	checkLeNetGolden(t, lenetNumerics(t))
}

// TestLeNetNumericsOnSimulatedDevice runs the same net on a device whose
// memory is apart from the host: every layer must reach its blobs through
// the sync-aware accessors (a stale host read changes the numbers) and the
// backend-routed layers must issue their math on the device.
func TestLeNetNumericsOnSimulatedDevice(t *testing.T) {
	d := simdev.New()
	checkLeNetGolden(t, lenetNumerics(t, WithDevice(d)))
	if f := d.Faults(); len(f) > 0 {
		t.Errorf("device operations got host operands: %v", f)
	}
	for _, op := range []string{"Gemm", "Im2col", "AddBias", "BiasGrad", "MaxPoolForward", "MaxPoolBackward", "ReLUForward", "ReLUBackward", "Col2im", "SoftmaxForward", "SoftmaxLossForward", "SoftmaxLossBackward", "Upload", "Download"} {
		if d.Calls(op) == 0 {
			t.Errorf("no %s on the device (calls: %v)", op, d)
		}
	}
}

func lenetNumerics(t *testing.T, opts ...Option) []byte {
	t.Helper()
	c := netCases[1] // lenet_train_test, TEST phase: accuracy and loss
	n64, err := New[float64](parseTestNet(t, c), &caffepb.NetState{Phase: c.phase.Enum()}, standard(t), append([]Option{WithoutFillers()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	for pi, p := range n64.LearnableParams() {
		d := p.Data()
		scale := 1 / math.Sqrt(float64(p.CountFrom(min(1, p.NumAxes()))))
		for i := range d {
			d[i] = scale * math.Sin(float64(i)*0.7+float64(pi))
		}
	}
	if err := n64.SetSource("mnist", waveSource{}); err != nil {
		t.Fatal(err)
	}
	n64.ClearParamDiffs()
	loss, err := n64.ForwardBackward()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "loss %.17g\n", loss)
	fmt.Fprintf(&buf, "accuracy %.17g\n", n64.BlobByName("accuracy").Data()[0])
	for i, p := range n64.LearnableParams() {
		var l1, l2 float64
		for _, v := range p.Diff() {
			l1 += math.Abs(v)
			l2 += v * v
		}
		fmt.Fprintf(&buf, "%s %.17g %.17g\n", n64.LearnableParamNames()[i], l1, math.Sqrt(l2))
	}
	return buf.Bytes()
}

func checkLeNetGolden(t *testing.T, out []byte) {
	t.Helper()
	buf := bytes.NewBuffer(out)
	path := filepath.Join("testdata", "golden", "lenet_numerics.txt")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	got := parseNumbers(t, buf.Bytes())
	exp := parseNumbers(t, want)
	if len(got) != len(exp) {
		t.Fatalf("%d values, golden has %d:\n%s", len(got), len(exp), buf.String())
	}
	for k, w := range exp {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if math.Abs(g-w) > 1e-9*max(math.Abs(w), 1e-12) {
			t.Errorf("%s: %.17g, golden %.17g", k, g, w)
		}
	}
}

func parseNumbers(t *testing.T, text []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i, s := range f[1:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("golden line %q: %v", sc.Text(), err)
			}
			out[fmt.Sprintf("%s[%d]", f[0], i)] = v
		}
	}
	return out
}
