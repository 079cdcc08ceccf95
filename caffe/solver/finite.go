package solver

import (
	"fmt"
	"math"
	"strings"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/caffepb"
	"github.com/gocaffe/gocaffe/caffe/modelio"
	"github.com/gocaffe/gocaffe/caffe/network"
	"github.com/gocaffe/gocaffe/kernels"
)

// NonFinite says what training does when the loss or a gradient is NaN or
// infinite.
type NonFinite int

const (
	// NonFiniteStop stops training with a *DivergedError before the update
	// (the default): the weights and the last snapshot stay finite.
	NonFiniteStop NonFinite = iota
	// NonFiniteWarn logs a warning and trains on, as Caffe does.
	NonFiniteWarn
)

// ParseNonFinite reads "stop" or "warn".
func ParseNonFinite(s string) (NonFinite, error) {
	switch s {
	case "stop", "":
		return NonFiniteStop, nil
	case "warn":
		return NonFiniteWarn, nil
	}
	return 0, fmt.Errorf("non-finite policy %q: want stop or warn", s)
}

func (m NonFinite) String() string {
	if m == NonFiniteWarn {
		return "warn"
	}
	return "stop"
}

// WithNonFinite sets what Step does on a non-finite loss or gradient, and
// whether loaded weights and history with non-finite values are refused
// (stop) or only reported (warn).
func WithNonFinite[T blob.Float](m NonFinite) Option[T] {
	return func(o *options[T]) { o.nonFinite = m }
}

// DivergedError says training produced a non-finite loss or gradient.
type DivergedError struct {
	Iter     int     // iteration whose loss or gradient is not finite
	Loss     float64 // that iteration's loss
	GradNorm float64 // L2 norm of the (reduced) gradient; NaN or Inf when a gradient is not finite
	LR       float64 // learning rate the update would have used
	// Layer and Top name the first layer (in forward order) whose output
	// holds a NaN or Inf; both empty when every output is finite.
	Layer, Top string
	// Param names the first parameter gradient that is not finite
	// ("layer[blob]"), when no layer output is.
	Param string
}

func (e *DivergedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "training diverged at iteration %d: loss = %g, gradient norm = %.6g, learning rate = %.6g", e.Iter, e.Loss, e.GradNorm, e.LR)
	switch {
	case e.Layer != "":
		fmt.Fprintf(&b, "; first non-finite output: layer %q (top %q)", e.Layer, e.Top)
	case e.Param != "":
		fmt.Fprintf(&b, "; every layer output is finite, the first non-finite gradient is %s", e.Param)
	}
	b.WriteString(" (lower base_lr, set clip_gradients, or check the data; the weights and snapshots are those of the last finite iteration)")
	return b.String()
}

// gradSumSq returns the squared L2 norm of the parameter gradients, in one
// float32 pass with independent accumulators; a non-finite result is
// re-checked in float64 so that a large but finite gradient is not taken
// for Inf.
func gradSumSq[T blob.Float](params []*blob.Blob[T]) float64 {
	var s float64
	for _, p := range params {
		s += float64(sumSq32(p.HostDiff()))
	}
	if isFinite(s) {
		return s
	}
	s = 0
	for _, p := range params {
		s += SumSq(p.HostDiff())
	}
	return s
}

// gradSumSq is the squared norm of the train net's gradients: on a device
// net one reduction on the device over its gradient buffer (one value
// read, the gradients left there), re-checked on the host only when it is
// not finite.
func (s *Solver[T]) gradSumSq() float64 {
	if be := kernels.For[T](s.train.Device()); !be.HostMemory() {
		g := s.train.GradBufferOn(be)
		if v := float64(be.Dot(g, g)); isFinite(v) {
			return v
		}
	}
	return gradSumSq(s.params)
}

// sumSq32 is Σx² in the blob's precision with four accumulators.
func sumSq32[T blob.Float](x []T) T {
	var a, b, c, d T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a += x[i] * x[i]
		b += x[i+1] * x[i+1]
		c += x[i+2] * x[i+2]
		d += x[i+3] * x[i+3]
	}
	for ; i < len(x); i++ {
		a += x[i] * x[i]
	}
	return a + b + c + d
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// firstNonFinite returns the index of the first value of x that is NaN or
// infinite, or -1.
func firstNonFinite[T blob.Float](x []T) int {
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// CheckFinite checks one iteration's loss and the parameter gradients about
// to be applied. When either is not finite it returns a *DivergedError
// naming the first layer whose output is not finite (found by re-checking
// the tops of the last forward pass in order: costly only on failure).
// Call it between ForwardBackward (and any all-reduce) and ApplyUpdate.
func (s *Solver[T]) CheckFinite(loss float64) error {
	sumsq := s.gradSumSq()
	if isFinite(loss) && isFinite(sumsq) {
		return nil
	}
	rate, _ := s.policy.Rate(s.iter, s.currentStep)
	e := &DivergedError{Iter: s.iter, Loss: loss, GradNorm: math.Sqrt(sumsq), LR: rate}
	e.Layer, e.Top = firstNonFiniteTop(s.train)
	if e.Layer == "" {
		names := s.train.LearnableParamNames()
		for i, p := range s.params {
			if firstNonFinite(p.HostDiff()) >= 0 {
				e.Param = names[i]
				break
			}
		}
	}
	return e
}

// firstNonFiniteTop returns the first layer, in forward order, with a top
// holding a NaN or Inf, and that top's name.
func firstNonFiniteTop[T blob.Float](n *network.Net[T]) (layer, top string) {
	names := n.LayerNames()
	tops := n.LayerParams()
	for i := range n.Layers() {
		for t, b := range n.Tops(i) {
			if firstNonFinite(b.HostData()) >= 0 {
				top := ""
				if t < len(tops[i].GetTop()) {
					top = tops[i].GetTop()[t]
				}
				return names[i], top
			}
		}
	}
	return "", ""
}

// nonFinite handles a CheckFinite failure as the solver's policy says: the
// error itself (stop), or nil after a warning (warn; later ones in the same
// Step are counted, not logged).
func (s *Solver[T]) nonFinite(err error) error {
	if s.opts.nonFinite != NonFiniteWarn {
		return err
	}
	s.nonFiniteWarned++
	if s.nonFiniteWarned == 1 {
		s.log.Warn().Err(err).Msg("non-finite loss or gradient; training on (non-finite policy: warn)")
	}
	return nil
}

// checkLoaded refuses (stop) or reports (warn) non-finite values in loaded
// weights or history.
func (s *Solver[T]) checkLoaded(what string, err error) error {
	if err == nil {
		return nil
	}
	if s.opts.nonFinite == NonFiniteWarn {
		s.log.Warn().Err(err).Str("file", what).Msg("non-finite values loaded (non-finite policy: warn)")
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// checkStateFinite returns an error naming the first history blob of st
// with a NaN or Inf value.
func (s *Solver[T]) checkStateFinite(st *caffepb.SolverState) error {
	names := s.train.LearnableParamNames()
	for k, bp := range st.GetHistory() {
		if err := modelio.CheckBlobFinite(bp); err != nil {
			param := ""
			if len(names) > 0 {
				param = fmt.Sprintf(" (param %s)", names[k%len(names)])
			}
			return fmt.Errorf("history blob %d%s: %w", k, param, err)
		}
	}
	return nil
}
