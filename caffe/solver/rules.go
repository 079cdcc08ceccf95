package solver

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
)

// Method is one of Caffe's solver types; all share the SGD loop (clip,
// normalize, regularize, compute update, apply) and differ only in how the
// update value is computed from the gradient and the history.
type Method int

// The solver types, named as in SolverParameter.type.
const (
	SGD Method = iota
	Nesterov
	AdaGrad
	RMSProp
	AdaDelta
	Adam
)

var methodNames = [...]string{"SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"}

// String returns Caffe's type name ("SGD", "Adam", ...).
func (m Method) String() string {
	if m < 0 || int(m) >= len(methodNames) {
		return fmt.Sprintf("Method(%d)", int(m))
	}
	return methodNames[m]
}

// ParseMethod maps SolverParameter.type to a Method. Caffe's names are
// matched exactly, and case-insensitively as a convenience.
func ParseMethod(s string) (Method, error) {
	for i, n := range methodNames {
		if s == n {
			return Method(i), nil
		}
	}
	for i, n := range methodNames {
		if equalFold(s, n) {
			return Method(i), nil
		}
	}
	return 0, fmt.Errorf("unknown solver type %q (known: SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam)", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HistorySets returns how many history blobs the method keeps per learnable
// parameter: 2 for AdaDelta (squared gradients, squared updates) and Adam
// (m, v), else 1. In a .solverstate the first set comes first for all
// parameters, then the second set, as Caffe lays them out.
func (m Method) HistorySets() int {
	if m == AdaDelta || m == Adam {
		return 2
	}
	return 1
}

// Hyper holds the method-specific SolverParameter fields.
type Hyper struct {
	Momentum  float64 // momentum; beta1 for Adam; decay for AdaDelta
	Momentum2 float64 // beta2 for Adam (default 0.999)
	Delta     float64 // numerical guard for AdaGrad/RMSProp/AdaDelta/Adam (default 1e-8)
	RMSDecay  float64 // RMSProp's decay (default 0.99)
}

// ComputeUpdate replaces the gradient in diff with the value Caffe subtracts
// from the weights (its ComputeUpdateValue), updating the history in place.
// hist holds m.HistorySets() slices of len(diff). iter is the solver's
// iteration before the update (Adam's bias correction uses iter+1).
func ComputeUpdate[T blob.Float](m Method, h Hyper, localRate float64, iter int, diff []T, hist [][]T) {
	lr := T(localRate)
	mom := T(h.Momentum)
	delta := T(h.Delta)
	switch m {
	case SGD:
		hs := hist[0][:len(diff)]
		for i, g := range diff {
			v := lr*g + mom*hs[i]
			hs[i] = v
			diff[i] = v
		}
	case Nesterov:
		hs := hist[0][:len(diff)]
		for i, g := range diff {
			prev := hs[i]
			v := lr*g + mom*prev
			hs[i] = v
			diff[i] = (1+mom)*v - mom*prev
		}
	case AdaGrad:
		hs := hist[0][:len(diff)]
		for i, g := range diff {
			s := hs[i] + g*g
			hs[i] = s
			diff[i] = lr * (g / (sqrt(s) + delta))
		}
	case RMSProp:
		hs := hist[0][:len(diff)]
		dec := T(h.RMSDecay)
		for i, g := range diff {
			s := (1-dec)*(g*g) + dec*hs[i]
			hs[i] = s
			diff[i] = lr * (g / (sqrt(s) + delta))
		}
	case AdaDelta:
		hg, hu := hist[0][:len(diff)], hist[1][:len(diff)]
		for i, g := range diff {
			sg := (1-mom)*(g*g) + mom*hg[i]
			hg[i] = sg
			u := g * sqrt((hu[i]+delta)/(sg+delta))
			hu[i] = (1-mom)*(u*u) + mom*hu[i]
			diff[i] = lr * u
		}
	case Adam:
		hm, hv := hist[0][:len(diff)], hist[1][:len(diff)]
		b1, b2 := T(h.Momentum), T(h.Momentum2)
		t := float64(iter + 1)
		corr := T(math.Sqrt(1-math.Pow(h.Momentum2, t)) / (1 - math.Pow(h.Momentum, t)))
		scale := lr * corr
		for i, g := range diff {
			mm := (1-b1)*g + b1*hm[i]
			vv := (1-b2)*(g*g) + b2*hv[i]
			hm[i], hv[i] = mm, vv
			diff[i] = scale * (mm / (sqrt(vv) + delta))
		}
	}
}

func sqrt[T blob.Float](x T) T { return T(math.Sqrt(float64(x))) }

// Regularize adds the weight-decay gradient to diff: decay·data for "L2",
// decay·sign(data) for "L1" (Caffe's Regularize, with decay already
// multiplied by the parameter's decay_mult).
func Regularize[T blob.Float](kind string, decay float64, data, diff []T) error {
	if decay == 0 {
		return nil
	}
	d := T(decay)
	switch kind {
	case "L2", "":
		for i, w := range data[:len(diff)] {
			diff[i] += d * w
		}
	case "L1":
		for i, w := range data[:len(diff)] {
			switch {
			case w > 0:
				diff[i] += d
			case w < 0:
				diff[i] -= d
			}
		}
	default:
		return fmt.Errorf("unknown regularization_type %q (known: L1, L2)", kind)
	}
	return nil
}

// Scale multiplies every element of x by s.
func Scale[T blob.Float](s T, x []T) {
	for i := range x {
		x[i] *= s
	}
}

// SumSq returns the sum of squares of x, accumulated in float64.
func SumSq[T blob.Float](x []T) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// ClipFactor returns the factor Caffe's ClipGradients scales all gradients
// by: clip/‖g‖ when the global L2 norm exceeds clip (clip ≥ 0), else 1.
func ClipFactor(sumSq, clip float64) float64 {
	if clip < 0 {
		return 1
	}
	n := math.Sqrt(sumSq)
	if n > clip {
		return clip / n
	}
	return 1
}
