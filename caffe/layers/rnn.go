package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// rnn is Caffe's RNN layer (Elman network), computed directly:
//
//	h_t = tanh(W_hh·(cont_t·h_{t-1}) + W_xh·x_t + b_h [+ W_xh_static·x_static])
//	o_t = tanh(W_ho·h_t + b_o)
//
// Bottoms: x (T, N, ...), cont (T, N), optional x_static (N, ...), and with
// expose_hidden h_0 (1, N, H). Tops: o (T, N, H), and with expose_hidden
// h_T. Blobs in Caffe's order: W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o.
// Without expose_hidden h_T carries into the next Forward, as in Caffe.
type rnn[T blob.Float] struct {
	ctx          layer.Context
	hidden       int
	expose       bool
	static       bool
	wx, bh, ws   *blob.Blob[T]
	whh, who, bo *blob.Blob[T]
	steps, num   int
	xDim         int
	h0           []T // carried state
	hs           []T // (T, N, H) hidden states
	hc           []T // (T, N, H) cont-gated previous h
	staticH      []T // (N, H)
	dpre         []T // (T, N, H) gradient at the h pre-activation
	dh           []T // (N, H) recurrent gradient
	dout         []T // (N, H) gradient at the o pre-activation
	dsum         []T // (N, H)
}

func newRNN[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetRecurrentParam()
	if p.GetNumOutput() == 0 {
		return nil, fmt.Errorf("recurrent_param num_output must be positive")
	}
	return &rnn[T]{ctx: ctx, hidden: int(p.GetNumOutput()), expose: p.GetExposeHidden()}, nil
}

// BlobCounts implements layer.BlobCounts.
func (l *rnn[T]) BlobCounts() (minBottom, maxBottom, minTop, maxTop int) {
	if l.expose {
		return 3, 4, 2, 2
	}
	return 2, 3, 1, 1
}

// AllowForceBackward refuses gradients to the continuation flags.
func (l *rnn[T]) AllowForceBackward(i int) bool { return i != 1 }

func (l *rnn[T]) Setup(bottom, top []*blob.Blob[T]) error {
	minB, maxB, minT, maxT := l.BlobCounts()
	if err := (counts{minB, maxB, minT, maxT}).check(len(bottom), len(top)); err != nil {
		return fmt.Errorf("RNN (x, cont[, x_static]%s): %w", map[bool]string{true: ", h_0", false: ""}[l.expose], err)
	}
	if bottom[0].NumAxes() < 2 {
		return fmt.Errorf("RNN input must be (T, N, ...), got shape %v", bottom[0].Shape())
	}
	l.static = len(bottom) == maxB
	h := l.hidden
	p := l.ctx.Param.GetRecurrentParam()
	l.wx, l.bh = blob.New[T](h, bottom[0].CountFrom(2)), blob.New[T](h)
	l.whh, l.who, l.bo = blob.New[T](h, h), blob.New[T](h, h), blob.New[T](h)
	weights := []*blob.Blob[T]{l.wx, l.whh, l.who}
	if l.static {
		l.ws = blob.New[T](h, bottom[2].CountFrom(1))
		weights = append(weights, l.ws)
	}
	for _, w := range weights {
		if err := filler.Fill(p.GetWeightFiller(), l.ctx.Rand, w); err != nil {
			return fmt.Errorf("weight filler: %w", err)
		}
	}
	for _, b := range []*blob.Blob[T]{l.bh, l.bo} {
		if err := filler.Fill(p.GetBiasFiller(), l.ctx.Rand, b); err != nil {
			return fmt.Errorf("bias filler: %w", err)
		}
	}
	return nil
}

func (l *rnn[T]) Blobs() []*blob.Blob[T] {
	if l.static {
		return []*blob.Blob[T]{l.wx, l.bh, l.ws, l.whh, l.who, l.bo}
	}
	return []*blob.Blob[T]{l.wx, l.bh, l.whh, l.who, l.bo}
}

func (l *rnn[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	x, cont := bottom[0], bottom[1]
	if x.NumAxes() < 2 {
		return fmt.Errorf("RNN input must be (T, N, ...), got shape %v", x.Shape())
	}
	steps, num, h := x.Dim(0), x.Dim(1), l.hidden
	if cont.NumAxes() != 2 || cont.Dim(0) != steps || cont.Dim(1) != num {
		return fmt.Errorf("cont must be (T, N) = (%d, %d), got shape %v", steps, num, cont.Shape())
	}
	if x.CountFrom(2) != l.wx.Dim(1) {
		return fmt.Errorf("input has %d values per step, W_xh expects %d", x.CountFrom(2), l.wx.Dim(1))
	}
	if l.static {
		s := bottom[2]
		if s.NumAxes() < 1 || s.Dim(0) != num || s.CountFrom(1) != l.ws.Dim(1) {
			return fmt.Errorf("x_static must be (N=%d, %d values), got shape %v", num, l.ws.Dim(1), s.Shape())
		}
	}
	if l.expose {
		if b := bottom[len(bottom)-1]; !blob.ShapeEquals(b.Shape(), []int{1, num, h}) {
			return fmt.Errorf("h_0 must be (1, %d, %d), got shape %v", num, h, b.Shape())
		}
		top[1].Reshape(1, num, h)
	}
	if num != l.num || l.h0 == nil {
		l.h0 = make([]T, num*h)
	}
	l.steps, l.num, l.xDim = steps, num, x.CountFrom(2)
	n := steps * num * h
	l.hs, l.hc, l.dpre = resize(l.hs, n), resize(l.hc, n), resize(l.dpre, n)
	l.staticH, l.dh, l.dout, l.dsum = resize(l.staticH, num*h), resize(l.dh, num*h), resize(l.dout, num*h), resize(l.dsum, num*h)
	top[0].Reshape(steps, num, h)
	return nil
}

func (l *rnn[T]) Forward(bottom, top []*blob.Blob[T]) error {
	h, num, steps := l.hidden, l.num, l.steps
	x, cont, out := bottom[0].HostData(), bottom[1].HostData(), top[0].Data()
	n := steps * num
	// Input contribution for all steps: hs = x·W_xhᵀ + b_h.
	hostGemm(false, true, n, h, l.xDim, 1, x, l.xDim, l.wx.Data(), l.xDim, 0, l.hs, h)
	addRows(l.hs, l.bh.Data(), n)
	if l.static {
		hostGemm(false, true, num, h, l.ws.Dim(1), 1, bottom[2].HostData(), l.ws.Dim(1), l.ws.Data(), l.ws.Dim(1), 0, l.staticH, h)
	}
	h0 := l.h0
	if l.expose {
		h0 = bottom[len(bottom)-1].Data()
	}
	for t := 0; t < steps; t++ {
		hPrev := h0
		if t > 0 {
			hPrev = l.hs[(t-1)*num*h : t*num*h]
		}
		hc := l.hc[t*num*h : (t+1)*num*h]
		for k := range hc {
			hc[k] = cont[t*num+k/h] * hPrev[k]
		}
		ht := l.hs[t*num*h : (t+1)*num*h]
		hostGemm(false, true, num, h, h, 1, hc, h, l.whh.Data(), h, 1, ht, h)
		if l.static {
			for k, v := range l.staticH {
				ht[k] += v
			}
		}
		for k, v := range ht {
			ht[k] = T(math.Tanh(float64(v)))
		}
	}
	hostGemm(false, true, n, h, h, 1, l.hs, h, l.who.Data(), h, 0, out, h)
	addRows(out[:n*h], l.bo.Data(), n)
	for k, v := range out[:n*h] {
		out[k] = T(math.Tanh(float64(v)))
	}
	last := l.hs[(steps-1)*num*h : steps*num*h]
	if l.expose {
		copy(top[1].Data(), last)
	} else if steps > 0 {
		copy(l.h0, last)
	}
	return nil
}

// addRows adds b to each of the rows of m.
func addRows[T blob.Float](m, b []T, rows int) {
	w := len(b)
	for r := 0; r < rows; r++ {
		row := m[r*w : (r+1)*w]
		for j, v := range b {
			row[j] += v
		}
	}
}

func (l *rnn[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if propagateDown[1] {
		return fmt.Errorf("RNN cannot backpropagate to the sequence continuation flags (bottom 1)")
	}
	h, num, steps := l.hidden, l.num, l.steps
	n := steps * num
	cont, o, dy := bottom[1].HostData(), top[0].HostData(), top[0].HostDiff()
	// Output layer: d(pre_o) = dy·(1 - o²), accumulated into W_ho, b_o.
	dpo := l.dpre // reused: first the output pre-activation gradients
	for k := 0; k < n*h; k++ {
		dpo[k] = dy[k] * (1 - o[k]*o[k])
	}
	hostGemm(true, false, h, h, n, 1, dpo, h, l.hs, h, 1, l.who.Diff(), h)
	sumRows(l.bo.Diff(), dpo, n)
	// dh_t from the output, then back through time. dpre is overwritten
	// step by step from the end, after its output part is read.
	dh := l.dh
	if l.expose {
		copy(dh, top[1].HostDiff())
	} else {
		clear(dh)
	}
	for t := steps - 1; t >= 0; t-- {
		dpt := l.dpre[t*num*h : (t+1)*num*h]
		hostGemm(false, false, num, h, h, 1, dpt, h, l.who.Data(), h, 0, l.dout, h)
		ht := l.hs[t*num*h : (t+1)*num*h]
		for k := range dpt {
			dpt[k] = (l.dout[k] + dh[k]) * (1 - ht[k]*ht[k])
		}
		hostGemm(true, false, h, h, num, 1, dpt, h, l.hc[t*num*h:(t+1)*num*h], h, 1, l.whh.Diff(), h)
		hostGemm(false, false, num, h, h, 1, dpt, h, l.whh.Data(), h, 0, dh, h)
		for k := range dh {
			dh[k] *= cont[t*num+k/h]
		}
	}
	hostGemm(true, false, h, l.xDim, n, 1, l.dpre, h, bottom[0].HostData(), l.xDim, 1, l.wx.Diff(), l.xDim)
	sumRows(l.bh.Diff(), l.dpre, n)
	if propagateDown[0] {
		hostGemm(false, false, n, l.xDim, h, 1, l.dpre, h, l.wx.Data(), l.xDim, 0, bottom[0].Diff(), l.xDim)
	}
	if l.static {
		clear(l.dsum)
		for t := 0; t < steps; t++ {
			for k, v := range l.dpre[t*num*h : (t+1)*num*h] {
				l.dsum[k] += v
			}
		}
		sd := l.ws.Dim(1)
		hostGemm(true, false, h, sd, num, 1, l.dsum, h, bottom[2].HostData(), sd, 1, l.ws.Diff(), sd)
		if propagateDown[2] {
			hostGemm(false, false, num, sd, h, 1, l.dsum, h, l.ws.Data(), sd, 0, bottom[2].Diff(), sd)
		}
	}
	if l.expose && propagateDown[len(bottom)-1] {
		copy(bottom[len(bottom)-1].Diff(), dh)
	}
	return nil
}

// sumRows adds the rows of m into acc.
func sumRows[T blob.Float](acc, m []T, rows int) {
	w := len(acc)
	for r := 0; r < rows; r++ {
		for j, v := range m[r*w : (r+1)*w] {
			acc[j] += v
		}
	}
}
