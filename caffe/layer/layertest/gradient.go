package layertest

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"unsafe"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Mismatch is one value that disagreed with its reference.
type Mismatch struct {
	// Blob names the blob ("bottom 0", "param 1", "top 0").
	Blob string
	// Index is the element's flat index within the blob.
	Index int
	// Got is the value under test (analytic gradient, float32 result);
	// Want the reference (finite difference, float64 result).
	Got, Want float64
	// Feature is the input value at that position, for gradient checks.
	Feature float64
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s[%d]: got %.9g, want %.9g (diff %.3g, feature %.6g)",
		m.Blob, m.Index, m.Got, m.Want, m.Got-m.Want, m.Feature)
}

// Report is the outcome of a check.
type Report struct {
	// Checked counts the values compared.
	Checked int
	// Mismatches lists the values outside tolerance.
	Mismatches []Mismatch
}

// OK reports whether nothing mismatched.
func (r Report) OK() bool { return len(r.Mismatches) == 0 }

// report prints at most a few mismatches to t.
func (r Report) report(t testing.TB, what string) {
	t.Helper()
	if r.OK() {
		return
	}
	const show = 8
	msg := fmt.Sprintf("%s: %d of %d values mismatch", what, len(r.Mismatches), r.Checked)
	for i, m := range r.Mismatches {
		if i == show {
			msg += fmt.Sprintf("\n  ... and %d more", len(r.Mismatches)-show)
			break
		}
		msg += "\n  " + m.String()
	}
	t.Error(msg)
}

// Checker compares a layer's analytic gradients (from Backward) with
// central finite differences of a scalar objective over its tops, in
// float64, like Caffe's GradientChecker.
//
// The default objective is a fixed random projection of the tops,
// sum_j w_j·top_j with w_j uniform in [-1, 1], which exercises every output
// with one Backward; SumSquares selects Caffe's ½·Σ top² instead.
//
// The check also enforces the Layer contract: Forward must not rely on
// zeroed top data (tops are filled with garbage first), Backward must
// overwrite the bottom diffs it propagates to (they are filled with garbage)
// and must add into parameter diffs (they start from known nonzero values,
// which are subtracted afterwards).
type Checker struct {
	// Step is the finite-difference step; 0 means 1e-2 (Caffe's usual).
	Step float64
	// Threshold is the relative tolerance; 0 means 1e-3. A value passes when
	// |analytic - numeric| <= Threshold·max(|analytic|, |numeric|, 1).
	Threshold float64
	// Kink and KinkRange skip inputs x with |x| within KinkRange of Kink,
	// where the function is not smooth (ReLU at 0, for example). KinkRange
	// <= 0 disables skipping.
	Kink, KinkRange float64
	// Seed chooses the objective's random weights.
	Seed uint64
	// SumSquares uses ½·Σ top² as the objective.
	SumSquares bool
	// Tops lists the tops that enter the objective; nil means all.
	Tops []int
	// Bottoms lists the bottoms to check; nil means all. NoBottoms checks none.
	Bottoms   []int
	NoBottoms bool
	// Params lists the parameter blobs to check; nil means all. NoParams
	// checks none.
	Params   []int
	NoParams bool
	// BeforeForward, when set, runs before every Forward (to reseed a
	// random layer such as Dropout so each pass draws the same mask).
	BeforeForward func()
}

const garbage = 1.2345e7

func (c Checker) step() float64 {
	if c.Step == 0 {
		return 1e-2
	}
	return c.Step
}

func (c Checker) threshold() float64 {
	if c.Threshold == 0 {
		return 1e-3
	}
	return c.Threshold
}

// Check runs Setup and Reshape on l, then CheckPrepared.
func (c Checker) Check(t testing.TB, l Layer[float64], bottom, top []*blob.Blob[float64]) {
	t.Helper()
	if err := SetupReshape(l, bottom, top); err != nil {
		t.Fatalf("setup: %v", err)
	}
	c.CheckPrepared(t, l, bottom, top)
}

// CheckPrepared checks the gradients of a layer already set up and
// reshaped, reporting mismatches through t.
func (c Checker) CheckPrepared(t testing.TB, l Layer[float64], bottom, top []*blob.Blob[float64]) {
	t.Helper()
	r, err := c.Run(l, bottom, top)
	if err != nil {
		t.Fatalf("gradient check: %v", err)
	}
	if r.Checked == 0 {
		t.Fatalf("gradient check: nothing was checked")
	}
	r.report(t, "gradient check")
}

type checked struct {
	name     string
	b        *blob.Blob[float64]
	param    bool
	computed []float64
}

// Run checks the gradients of a layer already set up and reshaped and
// returns what it found; an error means the check could not run.
func (c Checker) Run(l Layer[float64], bottom, top []*blob.Blob[float64]) (Report, error) {
	var rep Report
	inTop := func(b *blob.Blob[float64]) bool {
		for _, t := range top {
			if t == b {
				return true
			}
		}
		return false
	}
	diffInTop := func(b *blob.Blob[float64]) bool {
		for _, t := range top {
			if aliases(t.Diff(), b.Diff()) {
				return true
			}
		}
		return false
	}
	tops, err := indices(c.Tops, len(top), "top")
	if err != nil {
		return rep, err
	}
	var targets []*checked
	params := l.Blobs()
	if !c.NoParams {
		idx, err := indices(c.Params, len(params), "param")
		if err != nil {
			return rep, err
		}
		for _, i := range idx {
			targets = append(targets, &checked{name: fmt.Sprintf("param %d", i), b: params[i], param: true})
		}
	}
	propagate := make([]bool, len(bottom))
	if !c.NoBottoms {
		idx, err := indices(c.Bottoms, len(bottom), "bottom")
		if err != nil {
			return rep, err
		}
		for _, i := range idx {
			if inTop(bottom[i]) {
				return rep, fmt.Errorf("bottom %d is also a top (in place); check it out of place", i)
			}
			propagate[i] = true
			targets = append(targets, &checked{name: fmt.Sprintf("bottom %d", i), b: bottom[i]})
		}
	}
	if len(targets) == 0 {
		return rep, errors.New("no blobs to check")
	}
	obj := newObjective(c, top, tops)

	// Analytic gradient, with the contract traps described on Checker.
	inputs := append(append([]*blob.Blob[float64]{}, bottom...), params...)
	for _, t := range top {
		if !sharesData(t, inputs) {
			fill(t.Data(), garbage)
		}
	}
	loss, err := c.forward(l, bottom, top, obj)
	if err != nil {
		return rep, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return rep, fmt.Errorf("objective is %v after forward (tops not fully written?)", loss)
	}
	obj.setDiffs(top)
	prefill := make([][]float64, len(targets))
	for k, tg := range targets {
		d := tg.b.Diff()
		if tg.param {
			prefill[k] = make([]float64, len(d))
			for i := range d {
				prefill[k][i] = 0.25 + float64(i%7)*0.125
			}
			copy(d, prefill[k])
		} else if !diffInTop(tg.b) {
			fill(d, garbage)
		}
	}
	if err := l.Backward(top, propagate, bottom); err != nil {
		return rep, fmt.Errorf("backward: %w", err)
	}
	for k, tg := range targets {
		d := tg.b.Diff()
		tg.computed = make([]float64, len(d))
		for i := range d {
			tg.computed[i] = d[i]
			if tg.param {
				tg.computed[i] -= prefill[k][i]
			}
		}
	}

	// Numeric gradient.
	h, thr := c.step(), c.threshold()
	for _, tg := range targets {
		data := tg.b.Data()
		for i := range data {
			orig := data[i]
			data[i] = orig + h
			plus, err := c.forward(l, bottom, top, obj)
			if err != nil {
				return rep, err
			}
			data[i] = orig - h
			minus, err := c.forward(l, bottom, top, obj)
			if err != nil {
				return rep, err
			}
			data[i] = orig
			if c.KinkRange > 0 && math.Abs(math.Abs(orig)-c.Kink) <= c.KinkRange {
				continue
			}
			est := (plus - minus) / (2 * h)
			got := tg.computed[i]
			scale := math.Max(math.Max(math.Abs(got), math.Abs(est)), 1)
			rep.Checked++
			if !(math.Abs(got-est) <= thr*scale) {
				rep.Mismatches = append(rep.Mismatches, Mismatch{Blob: tg.name, Index: i, Got: got, Want: est, Feature: orig})
			}
		}
	}
	return rep, nil
}

func (c Checker) forward(l Layer[float64], bottom, top []*blob.Blob[float64], obj *objective) (float64, error) {
	if c.BeforeForward != nil {
		c.BeforeForward()
	}
	if err := l.Forward(bottom, top); err != nil {
		return 0, fmt.Errorf("forward: %w", err)
	}
	return obj.value(top), nil
}

// objective is the scalar function of the tops whose gradient is checked.
type objective struct {
	sumSquares bool
	tops       []int
	w          [][]float64 // per top, random weights (nil for tops not used)
}

func newObjective(c Checker, top []*blob.Blob[float64], tops []int) *objective {
	o := &objective{sumSquares: c.SumSquares, tops: tops, w: make([][]float64, len(top))}
	rng := NewRand(c.Seed + 1701)
	for _, i := range tops {
		w := make([]float64, top[i].Count())
		for j := range w {
			w[j] = 2*rng.Float64() - 1
		}
		o.w[i] = w
	}
	return o
}

func (o *objective) value(top []*blob.Blob[float64]) float64 {
	s := 0.0
	for _, i := range o.tops {
		d := top[i].Data()
		if o.sumSquares {
			for _, v := range d {
				s += v * v / 2
			}
			continue
		}
		w := o.w[i]
		for j, v := range d {
			s += w[j] * v
		}
	}
	return s
}

func (o *objective) setDiffs(top []*blob.Blob[float64]) {
	for _, t := range top {
		clear(t.Diff())
	}
	for _, i := range o.tops {
		if o.sumSquares {
			copy(top[i].Diff(), top[i].Data())
		} else {
			copy(top[i].Diff(), o.w[i])
		}
	}
}

func indices(sel []int, n int, what string) ([]int, error) {
	if sel == nil {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	for _, i := range sel {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("%s index %d out of range (have %d)", what, i, n)
		}
	}
	return sel, nil
}

// sharesData reports whether b's data storage is (or overlaps) the data of
// one of bottom (an in-place layer, or one that shares data like Split).
func sharesData[T blob.Float](b *blob.Blob[T], bottom []*blob.Blob[T]) bool {
	for _, x := range bottom {
		if x == b || aliases(x.Data(), b.Data()) {
			return true
		}
	}
	return false
}

// aliases reports whether two slices overlap in memory.
func aliases[T blob.Float](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	size := uintptr(unsafe.Sizeof(a[0]))
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b))*size && b0 < a0+uintptr(len(a))*size
}

func fill(d []float64, v float64) {
	for i := range d {
		d[i] = v
	}
}
