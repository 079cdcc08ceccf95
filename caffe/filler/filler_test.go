package filler

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"google.golang.org/protobuf/proto"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

func param(typ string, set func(p *caffepb.FillerParameter)) *caffepb.FillerParameter {
	p := &caffepb.FillerParameter{Type: proto.String(typ)}
	if set != nil {
		set(p)
	}
	return p
}

func fill(t *testing.T, p *caffepb.FillerParameter, seed uint64, shape ...int) []float64 {
	t.Helper()
	b := blob.New[float64](shape...)
	if err := Fill(p, newRand(seed), b); err != nil {
		t.Fatalf("fill %v: %v", p, err)
	}
	return b.Data()
}

func stats(d []float64) (mean, std, lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range d {
		mean += v
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	mean /= float64(len(d))
	for _, v := range d {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(d))), lo, hi
}

func TestConstant(t *testing.T) {
	for _, v := range fill(t, param("constant", func(p *caffepb.FillerParameter) { p.Value = proto.Float32(2.5) }), 1, 3, 4) {
		if v != 2.5 {
			t.Fatalf("constant filler wrote %v, want 2.5", v)
		}
	}
	// nil parameter: Caffe's default, constant 0.
	b := blob.New[float32](5)
	copy(b.Data(), []float32{1, 2, 3, 4, 5})
	if err := Fill[float32](nil, nil, b); err != nil {
		t.Fatal(err)
	}
	for _, v := range b.Data() {
		if v != 0 {
			t.Fatalf("default filler wrote %v, want 0", v)
		}
	}
}

func TestUniform(t *testing.T) {
	d := fill(t, param("uniform", func(p *caffepb.FillerParameter) {
		p.Min, p.Max = proto.Float32(-3), proto.Float32(1)
	}), 2, 100, 100)
	mean, std, lo, hi := stats(d)
	if lo < -3 || hi >= 1 {
		t.Errorf("uniform values in [%v, %v], want within [-3, 1)", lo, hi)
	}
	if math.Abs(mean+1) > 0.05 || math.Abs(std-4/math.Sqrt(12)) > 0.05 {
		t.Errorf("uniform mean %v std %v, want -1 and %v", mean, std, 4/math.Sqrt(12))
	}
}

func TestGaussian(t *testing.T) {
	d := fill(t, param("gaussian", func(p *caffepb.FillerParameter) {
		p.Mean, p.Std = proto.Float32(1), proto.Float32(0.5)
	}), 3, 200, 100)
	mean, std, _, _ := stats(d)
	if math.Abs(mean-1) > 0.02 || math.Abs(std-0.5) > 0.02 {
		t.Errorf("gaussian mean %v std %v, want 1 and 0.5", mean, std)
	}
}

func TestGaussianSparse(t *testing.T) {
	// 50 outputs, sparse 5: each weight is nonzero with probability 0.1.
	d := fill(t, param("gaussian", func(p *caffepb.FillerParameter) { p.Sparse = proto.Int32(5) }), 4, 50, 400)
	nz := 0
	for _, v := range d {
		if v != 0 {
			nz++
		}
	}
	frac := float64(nz) / float64(len(d))
	if math.Abs(frac-0.1) > 0.01 {
		t.Errorf("sparse gaussian kept %.4f of weights, want 0.1", frac)
	}
}

func TestXavierMSRA(t *testing.T) {
	shape := []int{40, 30, 3, 3} // fan_in 270, fan_out 360
	for _, tc := range []struct {
		norm caffepb.FillerParameter_VarianceNorm
		n    float64
	}{
		{caffepb.FillerParameter_FAN_IN, 270},
		{caffepb.FillerParameter_FAN_OUT, 360},
		{caffepb.FillerParameter_AVERAGE, 315},
	} {
		if got := FanNorm(shape, tc.norm); got != tc.n {
			t.Errorf("FanNorm(%v) = %v, want %v", tc.norm, got, tc.n)
		}
		set := func(p *caffepb.FillerParameter) { p.VarianceNorm = tc.norm.Enum() }
		d := fill(t, param("xavier", set), 5, shape...)
		_, std, lo, hi := stats(d)
		bound := math.Sqrt(3 / tc.n)
		if lo < -bound || hi > bound {
			t.Errorf("xavier %v: values in [%v, %v], want within ±%v", tc.norm, lo, hi, bound)
		}
		if want := math.Sqrt(1 / tc.n); math.Abs(std-want) > 0.03*want {
			t.Errorf("xavier %v: std %v, want %v", tc.norm, std, want)
		}
		d = fill(t, param("msra", set), 6, shape...)
		mean, std, _, _ := stats(d)
		if want := math.Sqrt(2 / tc.n); math.Abs(std-want) > 0.03*want || math.Abs(mean) > 0.05*want {
			t.Errorf("msra %v: mean %v std %v, want 0 and %v", tc.norm, mean, std, want)
		}
	}
	if got := FanNorm([]int{7}, caffepb.FillerParameter_FAN_OUT); got != 7 {
		t.Errorf("1-D fan_out = %v, want count 7", got)
	}
}

func TestPositiveUnitball(t *testing.T) {
	d := fill(t, param("positive_unitball", nil), 7, 6, 2, 5)
	for i := 0; i < 6; i++ {
		sum := 0.0
		for _, v := range d[i*10 : (i+1)*10] {
			if v < 0 || v > 1 {
				t.Fatalf("value %v outside [0, 1]", v)
			}
			sum += v
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("row %d sums to %v, want 1", i, sum)
		}
	}
}

func TestBilinear(t *testing.T) {
	// K = 4 (upsampling by 2): f = 2, c = 0.75, 1-D profile 0.25 0.75 0.75 0.25.
	d := fill(t, param("bilinear", nil), 0, 2, 1, 4, 4)
	prof := []float64{0.25, 0.75, 0.75, 0.25}
	for i, v := range d {
		want := prof[(i/4)%4] * prof[i%4]
		if math.Abs(v-want) > 1e-12 {
			t.Fatalf("bilinear[%d] = %v, want %v", i, v, want)
		}
	}
	// K = 3 (factor 2 with odd kernel): f = 2, c = 0.5, profile 0.5 1 0.5.
	d = fill(t, param("bilinear", nil), 0, 1, 1, 3, 3)
	prof = []float64{0.5, 1, 0.5}
	for i, v := range d {
		if want := prof[i/3] * prof[i%3]; math.Abs(v-want) > 1e-12 {
			t.Fatalf("bilinear 3x3 [%d] = %v, want %v", i, v, want)
		}
	}
	for _, shape := range [][]int{{1, 3, 3}, {1, 1, 3, 4}} {
		if err := Fill(param("bilinear", nil), nil, blob.New[float32](shape...)); err == nil {
			t.Errorf("bilinear on shape %v: no error", shape)
		}
	}
}

func TestRepeatable(t *testing.T) {
	for _, typ := range []string{"uniform", "gaussian", "xavier", "msra", "positive_unitball"} {
		a := fill(t, param(typ, nil), 42, 4, 5)
		b := fill(t, param(typ, nil), 42, 4, 5)
		c := fill(t, param(typ, nil), 43, 4, 5)
		same, diff := true, false
		for i := range a {
			same = same && a[i] == b[i]
			diff = diff || a[i] != c[i]
		}
		if !same || !diff {
			t.Errorf("%s: same seed same values = %v, other seed other values = %v", typ, same, diff)
		}
	}
}

func TestErrors(t *testing.T) {
	rng := newRand(1)
	bad := []*caffepb.FillerParameter{
		param("nosuch", nil),
		param("uniform", func(p *caffepb.FillerParameter) { p.Sparse = proto.Int32(3) }),
		param("gaussian", func(p *caffepb.FillerParameter) { p.Sparse = proto.Int32(-2) }),
		param("uniform", func(p *caffepb.FillerParameter) { p.Min, p.Max = proto.Float32(2), proto.Float32(1) }),
		param("gaussian", func(p *caffepb.FillerParameter) { p.Std = proto.Float32(-1) }),
	}
	for _, p := range bad {
		if _, err := New[float32](p, rng); err == nil {
			t.Errorf("New(%v): no error", p)
		}
	}
	if _, err := New[float32](param("gaussian", nil), nil); err == nil {
		t.Error("gaussian without a random source: no error")
	}
	if err := Fill(param("constant", nil), nil, blob.New[float32](0, 3)); err == nil {
		t.Error("filling an empty blob: no error")
	}
}

// TestFillRefusesUncountableShape: a parameter shape whose element count
// overflows (an inner product of 20 outputs over 5.6e17 inputs) is an error
// naming the shape, not a panic in the allocation of a wrapped count.
func TestFillRefusesUncountableShape(t *testing.T) {
	b := blob.New[float32](20, 560000000000000000)
	err := Fill(param("constant", nil), nil, b)
	if err == nil || !strings.Contains(err.Error(), "[20 560000000000000000]") {
		t.Fatalf("got %v, want an error naming the shape", err)
	}
}
