package layertest

import (
	"fmt"
	"math"
	"testing"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Precision compares a layer's float32 path with its float64 path on the
// same inputs and weights: top data after Forward, then bottom and
// parameter diffs after Backward from the same random top diffs.
//
// Inputs and weights are rounded to float32 first, so only the arithmetic
// differs. A value passes when |f32 - f64| <= Tol·max(|f64|, 1).
type Precision struct {
	// Tol is the tolerance; 0 means 1e-4.
	Tol float64
	// Seed chooses the random top diffs.
	Seed uint64
	// NoBackward compares only Forward.
	NoBackward bool
	// PropagateDown selects the bottoms that get diffs; nil means all.
	PropagateDown []bool
	// BeforeForward32 and BeforeForward64, when set, run before the
	// respective Forward (to reseed random layers alike).
	BeforeForward32, BeforeForward64 func()
}

func (p Precision) tol() float64 {
	if p.Tol == 0 {
		return 1e-4
	}
	return p.Tol
}

// Check sets up both layers on the given float64 bottoms (and float32
// copies), with nTop tops each, and reports mismatches through t.
func (p Precision) Check(t testing.TB, l32 Layer[float32], l64 Layer[float64], bottom []*blob.Blob[float64], nTop int) {
	t.Helper()
	r, err := p.Run(l32, l64, bottom, nTop)
	if err != nil {
		t.Fatalf("precision check: %v", err)
	}
	if r.Checked == 0 {
		t.Fatalf("precision check: nothing was compared")
	}
	r.report(t, "float32 vs float64")
}

// Run is Check returning its findings; an error means it could not run.
// The float64 bottoms' data are rounded to float32 in place.
func (p Precision) Run(l32 Layer[float32], l64 Layer[float64], bottom []*blob.Blob[float64], nTop int) (Report, error) {
	var rep Report
	b32 := make([]*blob.Blob[float32], len(bottom))
	for i, b := range bottom {
		RoundToFloat32(b)
		b32[i] = Convert[float32](b)
	}
	t32, t64 := Tops[float32](nTop), Tops[float64](nTop)
	if err := SetupReshape(l64, bottom, t64); err != nil {
		return rep, fmt.Errorf("float64 setup: %w", err)
	}
	if err := SetupReshape(l32, b32, t32); err != nil {
		return rep, fmt.Errorf("float32 setup: %w", err)
	}
	p64, p32 := l64.Blobs(), l32.Blobs()
	if len(p64) != len(p32) {
		return rep, fmt.Errorf("float32 layer has %d blobs, float64 layer %d", len(p32), len(p64))
	}
	for i := range p64 {
		if !blob.ShapeEquals(p64[i].Shape(), p32[i].Shape()) {
			return rep, fmt.Errorf("param %d: float32 shape %v, float64 shape %v", i, p32[i].Shape(), p64[i].Shape())
		}
		RoundToFloat32(p64[i])
		CopyData(p32[i], p64[i])
	}
	if p.BeforeForward64 != nil {
		p.BeforeForward64()
	}
	if err := l64.Forward(bottom, t64); err != nil {
		return rep, fmt.Errorf("float64 forward: %w", err)
	}
	if p.BeforeForward32 != nil {
		p.BeforeForward32()
	}
	if err := l32.Forward(b32, t32); err != nil {
		return rep, fmt.Errorf("float32 forward: %w", err)
	}
	tol := p.tol()
	for i := range t64 {
		if !blob.ShapeEquals(t64[i].Shape(), t32[i].Shape()) {
			return rep, fmt.Errorf("top %d: float32 shape %v, float64 shape %v", i, t32[i].Shape(), t64[i].Shape())
		}
		compare(&rep, fmt.Sprintf("top %d", i), t32[i].Data(), t64[i].Data(), tol)
	}
	if p.NoBackward {
		return rep, nil
	}
	rng := NewRand(p.Seed + 7)
	for i := range t64 {
		d64, d32 := t64[i].Diff(), t32[i].Diff()
		for j := range d64 {
			v := float32(2*rng.Float64() - 1)
			d64[j], d32[j] = float64(v), v
		}
	}
	for i := range p64 {
		p64[i].ZeroDiff()
		p32[i].ZeroDiff()
	}
	prop := p.PropagateDown
	if prop == nil {
		prop = make([]bool, len(bottom))
		for i := range prop {
			prop[i] = true
		}
	}
	if err := l64.Backward(t64, prop, bottom); err != nil {
		return rep, fmt.Errorf("float64 backward: %w", err)
	}
	if err := l32.Backward(t32, prop, b32); err != nil {
		return rep, fmt.Errorf("float32 backward: %w", err)
	}
	for i := range bottom {
		if i < len(prop) && prop[i] {
			compare(&rep, fmt.Sprintf("bottom %d diff", i), b32[i].Diff(), bottom[i].Diff(), tol)
		}
	}
	for i := range p64 {
		compare(&rep, fmt.Sprintf("param %d diff", i), p32[i].Diff(), p64[i].Diff(), tol)
	}
	return rep, nil
}

func compare(rep *Report, name string, got []float32, want []float64, tol float64) {
	for i := range want {
		g, w := float64(got[i]), want[i]
		rep.Checked++
		if !(math.Abs(g-w) <= tol*math.Max(math.Abs(w), 1)) {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Blob: name, Index: i, Got: g, Want: w, Feature: math.NaN()})
		}
	}
}

// Near reports through t every element of got that differs from want by
// more than tol·max(|want|, 1); it is for hand-computed expectations.
func Near[T blob.Float](t testing.TB, name string, got []T, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", name, len(got), len(want))
		return
	}
	var rep Report
	for i := range want {
		g := float64(got[i])
		rep.Checked++
		if !(math.Abs(g-want[i]) <= tol*math.Max(math.Abs(want[i]), 1)) {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Blob: name, Index: i, Got: g, Want: want[i], Feature: math.NaN()})
		}
	}
	rep.report(t, name)
}
