package layertest

import (
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// scaleSq computes top = w·x² elementwise with one scalar weight w. Its
// flags plant the bugs the checker must catch.
type scaleSq[T blob.Float] struct {
	w            *blob.Blob[T]
	wrongGrad    bool // bottom diff off by a factor
	accumBottom  bool // adds into bottom diff instead of overwriting
	assignParam  bool // overwrites the param diff instead of adding
	skipTopWrite bool // leaves the last top element unwritten
	kink         bool // uses |x| instead of x², not smooth at 0
	perturb32    bool // float32 path is off by 1e-3 relative
}

func (l *scaleSq[T]) Setup(bottom, top []*blob.Blob[T]) error {
	l.w = blob.New[T](1)
	l.w.Data()[0] = 1.5
	return nil
}

func (l *scaleSq[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	top[0].ReshapeLike(bottom[0])
	return nil
}

func (l *scaleSq[T]) Forward(bottom, top []*blob.Blob[T]) error {
	x, y, w := bottom[0].Data(), top[0].Data(), l.w.Data()[0]
	n := len(x)
	if l.skipTopWrite {
		n--
	}
	for i := 0; i < n; i++ {
		if l.kink {
			y[i] = w * T(math.Abs(float64(x[i])))
		} else {
			y[i] = w * x[i] * x[i]
		}
		if _, ok := any(y[i]).(float32); ok && l.perturb32 {
			y[i] *= 1.001
		}
	}
	return nil
}

func (l *scaleSq[T]) Backward(top []*blob.Blob[T], prop []bool, bottom []*blob.Blob[T]) error {
	x, dy, w := bottom[0].Data(), top[0].Diff(), l.w.Data()[0]
	var dw T
	for i := range x {
		if l.kink {
			dw += dy[i] * T(math.Abs(float64(x[i])))
		} else {
			dw += dy[i] * x[i] * x[i]
		}
	}
	if l.assignParam {
		l.w.Diff()[0] = dw
	} else {
		l.w.Diff()[0] += dw
	}
	if !prop[0] {
		return nil
	}
	dx := bottom[0].Diff()
	for i := range x {
		g := 2 * w * x[i] * dy[i]
		if l.kink {
			g = w * dy[i]
			if x[i] < 0 {
				g = -g
			}
		}
		if l.wrongGrad {
			g *= 1.1
		}
		if l.accumBottom {
			dx[i] += g
		} else {
			dx[i] = g
		}
	}
	return nil
}

func (l *scaleSq[T]) Blobs() []*blob.Blob[T] { return []*blob.Blob[T]{l.w} }

func runCheck(t *testing.T, c Checker, l *scaleSq[float64], bottom *blob.Blob[float64]) Report {
	t.Helper()
	top := Tops[float64](1)
	if err := SetupReshape[float64](l, []*blob.Blob[float64]{bottom}, top); err != nil {
		t.Fatal(err)
	}
	r, err := c.Run(l, []*blob.Blob[float64]{bottom}, top)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCheckerAcceptsCorrectLayer(t *testing.T) {
	for _, sq := range []bool{false, true} {
		rng := NewRand(1)
		r := runCheck(t, Checker{SumSquares: sq}, &scaleSq[float64]{}, Gaussian[float64](rng, 0, 1, 2, 3, 4))
		if !r.OK() {
			t.Errorf("sumSquares=%v: correct layer rejected: %v", sq, r.Mismatches)
		}
		if r.Checked != 1+24 {
			t.Errorf("checked %d values, want 25", r.Checked)
		}
	}
}

func TestCheckerCatchesBugs(t *testing.T) {
	cases := map[string]*scaleSq[float64]{
		"wrong gradient":      {wrongGrad: true},
		"accumulating bottom": {accumBottom: true},
		"assigning param":     {assignParam: true},
	}
	for name, l := range cases {
		rng := NewRand(2)
		r := runCheck(t, Checker{}, l, Gaussian[float64](rng, 0, 1, 3, 4))
		if r.OK() {
			t.Errorf("%s: checker passed a broken layer", name)
		}
	}
}

func TestCheckerCatchesUnwrittenTop(t *testing.T) {
	rng := NewRand(3)
	l := &scaleSq[float64]{skipTopWrite: true}
	bottom := []*blob.Blob[float64]{Gaussian[float64](rng, 0, 1, 5)}
	top := Tops[float64](1)
	if err := SetupReshape[float64](l, bottom, top); err != nil {
		t.Fatal(err)
	}
	r, err := (Checker{}).Run(l, bottom, top)
	if err == nil && r.OK() {
		t.Errorf("checker passed a layer that leaves top data unwritten")
	}
}

func TestCheckerKink(t *testing.T) {
	// Inputs at exactly 0 and ±step/2 make |x| non-differentiable within the
	// finite-difference stencil.
	bottom := blob.New[float64](6)
	copy(bottom.Data(), []float64{0, 0.004, -0.003, 0.5, -0.7, 1.2})
	r := runCheck(t, Checker{}, &scaleSq[float64]{kink: true}, bottom)
	if r.OK() {
		t.Fatalf("expected mismatches near the kink without kink handling")
	}
	bottom2 := blob.New[float64](6)
	copy(bottom2.Data(), bottom.Data())
	r = runCheck(t, Checker{KinkRange: 0.01, Params: []int{}}, &scaleSq[float64]{kink: true}, bottom2)
	if !r.OK() {
		t.Errorf("kink-aware check failed: %v", r.Mismatches)
	}
	if r.Checked != 3 {
		t.Errorf("checked %d values, want 3 (the ones away from the kink)", r.Checked)
	}
}

func TestCheckerSelection(t *testing.T) {
	rng := NewRand(4)
	r := runCheck(t, Checker{NoParams: true}, &scaleSq[float64]{assignParam: true}, Gaussian[float64](rng, 0, 1, 4))
	if !r.OK() || r.Checked != 4 {
		t.Errorf("NoParams: ok=%v checked=%d, want ok and 4", r.OK(), r.Checked)
	}
	l := &scaleSq[float64]{}
	b := []*blob.Blob[float64]{Gaussian[float64](rng, 0, 1, 4)}
	top := Tops[float64](1)
	if err := SetupReshape[float64](l, b, top); err != nil {
		t.Fatal(err)
	}
	if _, err := (Checker{NoParams: true, NoBottoms: true}).Run(l, b, top); err == nil {
		t.Error("checking nothing should be an error")
	}
	if _, err := (Checker{Bottoms: []int{1}}).Run(l, b, top); err == nil {
		t.Error("bottom index out of range should be an error")
	}
	if _, err := (Checker{}).Run(l, b, b); err == nil {
		t.Error("in-place check should be an error")
	}
}

func TestPrecision(t *testing.T) {
	rng := NewRand(5)
	bottom := []*blob.Blob[float64]{Gaussian[float64](rng, 0, 1, 2, 5)}
	r, err := Precision{}.Run(&scaleSq[float32]{}, &scaleSq[float64]{}, bottom, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Checked != 10+10+1 {
		t.Errorf("correct layer: ok=%v checked=%d mismatches=%v", r.OK(), r.Checked, r.Mismatches)
	}
	bottom = []*blob.Blob[float64]{Gaussian[float64](rng, 0, 1, 2, 5)}
	r, err = Precision{}.Run(&scaleSq[float32]{perturb32: true}, &scaleSq[float64]{}, bottom, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Error("precision check passed a float32 path that is off by 1e-3")
	}
}

func TestAliases(t *testing.T) {
	a := make([]float64, 10)
	if !aliases(a[2:5], a[4:8]) || aliases(a[0:2], a[2:4]) {
		t.Error("aliases wrong on overlapping/adjacent slices")
	}
	if aliases(a, nil) {
		t.Error("empty slice aliases nothing")
	}
}

func TestHelpers(t *testing.T) {
	rng := NewRand(6)
	l := Labels[float32](rng, 3, 100)
	seen := map[float32]bool{}
	for _, v := range l.Data() {
		if v < 0 || v > 2 || v != float32(int(v)) {
			t.Fatalf("label %v out of [0,3)", v)
		}
		seen[v] = true
	}
	if len(seen) != 3 {
		t.Errorf("100 labels drew %d distinct classes", len(seen))
	}
	u := Uniform[float64](rng, -2, -1, 50)
	for _, v := range u.Data() {
		if v < -2 || v >= -1 {
			t.Fatalf("uniform value %v outside [-2,-1)", v)
		}
	}
	c := Convert[float32](u)
	if !blob.ShapeEquals(c.Shape(), u.Shape()) || float64(c.Data()[7]) != float64(float32(u.Data()[7])) {
		t.Error("Convert lost shape or data")
	}
	g1 := Gaussian[float64](NewRand(9), 0, 1, 8).Data()
	g2 := Gaussian[float64](NewRand(9), 0, 1, 8).Data()
	for i := range g1 {
		if g1[i] != g2[i] {
			t.Fatal("same seed gave different data")
		}
	}
}
