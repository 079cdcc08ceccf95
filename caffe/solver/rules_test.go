package solver

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func checkSlice(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range want {
		if !near(got[i], want[i]) {
			t.Errorf("%s[%d] = %.17g, want %.17g", what, i, got[i], want[i])
		}
	}
}

// Each case is one step on two parameters, with the expected values written
// out from the textbook form of the update (not from ComputeUpdate's code).
func TestComputeUpdateHandSteps(t *testing.T) {
	g := []float64{0.5, -0.25}
	const lr = 0.1
	cases := []struct {
		m        Method
		h        Hyper
		iter     int
		hist     [][]float64
		wantDiff []float64
		wantHist [][]float64
	}{
		{
			m: SGD, h: Hyper{Momentum: 0.9},
			hist:     [][]float64{{0.1, -0.2}},
			wantDiff: []float64{0.1*0.5 + 0.9*0.1, 0.1*-0.25 + 0.9*-0.2},
			wantHist: [][]float64{{0.14, -0.205}},
		},
		{
			// v' = mom v + lr g; update = v' + mom (v' - v)
			m: Nesterov, h: Hyper{Momentum: 0.9},
			hist:     [][]float64{{0.1, -0.2}},
			wantDiff: []float64{0.14 + 0.9*(0.14-0.1), -0.205 + 0.9*(-0.205+0.2)},
			wantHist: [][]float64{{0.14, -0.205}},
		},
		{
			// s' = s + g²; update = lr g / (√s' + δ)
			m: AdaGrad, h: Hyper{Delta: 1e-8},
			hist:     [][]float64{{0.75, 0.0}},
			wantDiff: []float64{0.1 * 0.5 / (1 + 1e-8), 0.1 * -0.25 / (0.25 + 1e-8)},
			wantHist: [][]float64{{1.0, 0.0625}},
		},
		{
			// s' = ρ s + (1-ρ) g²
			m: RMSProp, h: Hyper{Delta: 1e-8, RMSDecay: 0.9},
			hist: [][]float64{{0.25, 0.1}},
			wantDiff: []float64{
				0.1 * 0.5 / (math.Sqrt(0.9*0.25+0.1*0.25) + 1e-8),
				0.1 * -0.25 / (math.Sqrt(0.9*0.1+0.1*0.0625) + 1e-8)},
			wantHist: [][]float64{{0.25, 0.09625}},
		},
		{
			// Eg' = ρ Eg + (1-ρ) g²; u = g √((Eu+δ)/(Eg'+δ)); Eu' = ρ Eu + (1-ρ) u²; update = lr u
			m: AdaDelta, h: Hyper{Momentum: 0.95, Delta: 1e-6},
			hist: [][]float64{{0.2, 0.0}, {0.01, 0.0}},
			wantDiff: []float64{
				0.1 * 0.5 * math.Sqrt((0.01+1e-6)/(0.95*0.2+0.05*0.25+1e-6)),
				0.1 * -0.25 * math.Sqrt((0+1e-6)/(0.05*0.0625+1e-6))},
			wantHist: [][]float64{
				{0.95*0.2 + 0.05*0.25, 0.05 * 0.0625},
				{0.95*0.01 + 0.05*0.25*(0.01+1e-6)/(0.95*0.2+0.05*0.25+1e-6), 0.05 * 0.0625 * 1e-6 / (0.05*0.0625 + 1e-6)}},
		},
		{
			// t = iter+1 = 3; m' = β1 m + (1-β1) g; v' = β2 v + (1-β2) g²;
			// update = lr √(1-β2^t)/(1-β1^t) m'/(√v' + ε)
			m: Adam, h: Hyper{Momentum: 0.9, Momentum2: 0.999, Delta: 1e-8}, iter: 2,
			hist: [][]float64{{0.1, 0.0}, {0.04, 0.0}},
			wantDiff: []float64{
				0.1 * math.Sqrt(1-0.999*0.999*0.999) / (1 - 0.9*0.9*0.9) * (0.9*0.1 + 0.1*0.5) / (math.Sqrt(0.999*0.04+0.001*0.25) + 1e-8),
				0.1 * math.Sqrt(1-0.999*0.999*0.999) / (1 - 0.9*0.9*0.9) * (0.1 * -0.25) / (math.Sqrt(0.001*0.0625) + 1e-8)},
			wantHist: [][]float64{{0.14, -0.025}, {0.999*0.04 + 0.001*0.25, 0.001 * 0.0625}},
		},
	}
	for _, c := range cases {
		t.Run(c.m.String(), func(t *testing.T) {
			if got := c.m.HistorySets(); got != len(c.hist) {
				t.Fatalf("HistorySets = %d, want %d", got, len(c.hist))
			}
			diff := append([]float64(nil), g...)
			ComputeUpdate(c.m, c.h, lr, c.iter, diff, c.hist)
			checkSlice(t, "update", diff, c.wantDiff)
			for k := range c.hist {
				checkSlice(t, "history", c.hist[k], c.wantHist[k])
			}
		})
	}
}

func TestRegularize(t *testing.T) {
	data := []float64{2, -3, 0}
	diff := []float64{1, 1, 1}
	if err := Regularize("L2", 0.5, data, diff); err != nil {
		t.Fatal(err)
	}
	checkSlice(t, "L2", diff, []float64{2, -0.5, 1})
	diff = []float64{1, 1, 1}
	if err := Regularize("L1", 0.5, data, diff); err != nil {
		t.Fatal(err)
	}
	checkSlice(t, "L1", diff, []float64{1.5, 0.5, 1})
	if err := Regularize("L3", 0.5, data, diff); err == nil {
		t.Error("L3 accepted")
	}
}

func TestClipFactor(t *testing.T) {
	if f := ClipFactor(25, 10); f != 1 {
		t.Errorf("norm 5 under clip 10 scaled by %g", f)
	}
	if f := ClipFactor(25, 2); !near(f, 0.4) {
		t.Errorf("norm 5 clip 2: factor %g, want 0.4", f)
	}
	if f := ClipFactor(1e6, -1); f != 1 {
		t.Errorf("clip disabled but factor %g", f)
	}
}

func TestParseMethod(t *testing.T) {
	for i, n := range methodNames {
		m, err := ParseMethod(n)
		if err != nil || m != Method(i) {
			t.Errorf("ParseMethod(%q) = %v, %v", n, m, err)
		}
	}
	if m, err := ParseMethod("adam"); err != nil || m != Adam {
		t.Errorf("ParseMethod(adam) = %v, %v", m, err)
	}
	if _, err := ParseMethod("LBFGS"); err == nil {
		t.Error("LBFGS accepted")
	}
}

func TestLRPolicy(t *testing.T) {
	base := LRPolicy{BaseLR: 0.01, Gamma: 0.1, Power: 0.75, StepSize: 100, StepValue: []int{50, 80}, MaxIter: 200}
	with := func(p string) LRPolicy { q := base; q.Policy = p; return q }
	inv := with("inv")
	inv.Gamma = 1e-4
	cases := []struct {
		p    LRPolicy
		iter int
		want float64
	}{
		{with("fixed"), 1234, 0.01},
		{with("step"), 99, 0.01},
		{with("step"), 100, 0.001},
		{with("step"), 250, 0.01 * 0.1 * 0.1},
		{with("exp"), 3, 0.01 * 0.1 * 0.1 * 0.1},
		{inv, 0, 0.01},
		{inv, 10000, 0.01 * math.Pow(2, -0.75)},
		{with("poly"), 100, 0.01 * math.Pow(0.5, 0.75)},
		{with("poly"), 0, 0.01},
		{with("sigmoid"), 100, 0.005},
		{with("sigmoid"), 110, 0.01 / (1 + math.Exp(-1))},
	}
	for _, c := range cases {
		if err := c.p.Validate(); err != nil {
			t.Fatalf("%s: %v", c.p.Policy, err)
		}
		got, _ := c.p.Rate(c.iter, 0)
		if !near(got, c.want) {
			t.Errorf("%s at %d: %.17g, want %.17g", c.p.Policy, c.iter, got, c.want)
		}
	}
	// multistep advances one step per call, like Caffe, so walk the iterations.
	ms := with("multistep")
	step := 0
	for it := 0; it <= 100; it++ {
		var r float64
		r, step = ms.Rate(it, step)
		want := 0.01
		if it >= 80 {
			want = 0.0001
		} else if it >= 50 {
			want = 0.001
		}
		if !near(r, want) {
			t.Fatalf("multistep at %d: %g, want %g", it, r, want)
		}
	}
	if step != 2 {
		t.Errorf("multistep current_step = %d, want 2", step)
	}
	for _, bad := range []LRPolicy{{Policy: "cosine"}, {Policy: ""}, {Policy: "step"}, {Policy: "poly"}, {Policy: "multistep", StepValue: []int{5, 3}}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
