package layers

import (
	"fmt"
	"math"

	"github.com/gocaffe/gocaffe/caffe/blob"
	"github.com/gocaffe/gocaffe/caffe/filler"
	"github.com/gocaffe/gocaffe/caffe/layer"
)

// lstm is Caffe's LSTM layer, computed directly rather than through an
// unrolled net, with the same parameters and results.
//
// Bottoms: x (T, N, ...), the sequence continuation flags cont (T, N) (0
// starts a new sequence), an optional static input x_static (N, ...), and
// with recurrent_param.expose_hidden the initial h_0 and c_0 (1, N, H).
// Tops: h (T, N, H), and with expose_hidden the final h_T and c_T.
// Blobs, in Caffe's order: W_xc (4H, X), b_c (4H), [W_xc_static (4H, Xs)],
// W_hc (4H, H); the four gate blocks are input, forget, output, cell.
//
// Without expose_hidden the final state becomes the next Forward's initial
// state, as in Caffe (a cont of 0 cuts it off).
type lstm[T blob.Float] struct {
	ctx     layer.Context
	hidden  int
	expose  bool
	static  bool
	wx, b   *blob.Blob[T]
	ws, wh  *blob.Blob[T]
	steps   int // T
	num     int // N
	xDim    int
	sDim    int
	h0, c0  []T // carried state (not exposed)
	prevC   []T // the c_0 the last Forward started from (not exposed)
	gates   []T // (T, N, 4H) activations: i, f (times cont), o, g
	cells   []T // (T, N, H)
	hc      []T // (T, N, H) cont-gated previous h
	staticG []T // (N, 4H)
	dgates  []T // (T, N, 4H)
	dh, dc  []T // (N, H) running gradients
	dsum    []T // (N, 4H) static-input gradient sum
}

func newLSTM[T blob.Float](ctx layer.Context) (layer.Layer[T], error) {
	p := ctx.Param.GetRecurrentParam()
	if p.GetNumOutput() == 0 {
		return nil, fmt.Errorf("recurrent_param num_output must be positive")
	}
	return &lstm[T]{ctx: ctx, hidden: int(p.GetNumOutput()), expose: p.GetExposeHidden()}, nil
}

// BlobCounts implements layer.BlobCounts.
func (l *lstm[T]) BlobCounts() (minBottom, maxBottom, minTop, maxTop int) {
	if l.expose {
		return 4, 5, 3, 3
	}
	return 2, 3, 1, 1
}

// AllowForceBackward refuses gradients to the continuation flags.
func (l *lstm[T]) AllowForceBackward(i int) bool { return i != 1 }

func (l *lstm[T]) Setup(bottom, top []*blob.Blob[T]) error {
	minB, maxB, minT, maxT := l.BlobCounts()
	if err := (counts{minB, maxB, minT, maxT}).check(len(bottom), len(top)); err != nil {
		return fmt.Errorf("LSTM (x, cont[, x_static]%s): %w", map[bool]string{true: ", h_0, c_0", false: ""}[l.expose], err)
	}
	l.static = len(bottom) == 3 || len(bottom) == 5
	if bottom[0].NumAxes() < 2 {
		return fmt.Errorf("LSTM input must be (T, N, ...), got shape %v", bottom[0].Shape())
	}
	h := l.hidden
	p := l.ctx.Param.GetRecurrentParam()
	l.wx = blob.New[T](4*h, bottom[0].CountFrom(2))
	l.b = blob.New[T](4 * h)
	l.wh = blob.New[T](4*h, h)
	fill := []*blob.Blob[T]{l.wx, l.wh}
	if l.static {
		l.ws = blob.New[T](4*h, bottom[2].CountFrom(1))
		fill = append(fill, l.ws)
	}
	for _, w := range fill {
		if err := filler.Fill(p.GetWeightFiller(), l.ctx.Rand, w); err != nil {
			return fmt.Errorf("weight filler: %w", err)
		}
	}
	if err := filler.Fill(p.GetBiasFiller(), l.ctx.Rand, l.b); err != nil {
		return fmt.Errorf("bias filler: %w", err)
	}
	return nil
}

func (l *lstm[T]) Blobs() []*blob.Blob[T] {
	if l.static {
		return []*blob.Blob[T]{l.wx, l.b, l.ws, l.wh}
	}
	return []*blob.Blob[T]{l.wx, l.b, l.wh}
}

func resize[T blob.Float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (l *lstm[T]) Reshape(bottom, top []*blob.Blob[T]) error {
	x, cont := bottom[0], bottom[1]
	if x.NumAxes() < 2 {
		return fmt.Errorf("LSTM input must be (T, N, ...), got shape %v", x.Shape())
	}
	steps, num, h := x.Dim(0), x.Dim(1), l.hidden
	if cont.NumAxes() != 2 || cont.Dim(0) != steps || cont.Dim(1) != num {
		return fmt.Errorf("cont must be (T, N) = (%d, %d), got shape %v", steps, num, cont.Shape())
	}
	if x.CountFrom(2) != l.wx.Dim(1) {
		return fmt.Errorf("input has %d values per step, W_xc expects %d", x.CountFrom(2), l.wx.Dim(1))
	}
	if l.static {
		s := bottom[2]
		if s.NumAxes() < 1 || s.Dim(0) != num || s.CountFrom(1) != l.ws.Dim(1) {
			return fmt.Errorf("x_static must be (N=%d, %d values), got shape %v", num, l.ws.Dim(1), s.Shape())
		}
	}
	if l.expose {
		i := 2
		if l.static {
			i = 3
		}
		for k, b := range bottom[i : i+2] {
			if !blob.ShapeEquals(b.Shape(), []int{1, num, h}) {
				return fmt.Errorf("%s must be (1, %d, %d), got shape %v", []string{"h_0", "c_0"}[k], num, h, b.Shape())
			}
		}
		top[1].Reshape(1, num, h)
		top[2].Reshape(1, num, h)
	}
	if num != l.num || l.h0 == nil {
		l.h0, l.c0, l.prevC = make([]T, num*h), make([]T, num*h), make([]T, num*h)
	}
	l.steps, l.num, l.xDim = steps, num, x.CountFrom(2)
	n := steps * num
	l.gates = resize(l.gates, n*4*h)
	l.dgates = resize(l.dgates, n*4*h)
	l.cells = resize(l.cells, n*h)
	l.hc = resize(l.hc, n*h)
	l.staticG = resize(l.staticG, num*4*h)
	l.dsum = resize(l.dsum, num*4*h)
	l.dh = resize(l.dh, num*h)
	l.dc = resize(l.dc, num*h)
	top[0].Reshape(steps, num, h)
	return nil
}

func (l *lstm[T]) initial(bottom []*blob.Blob[T]) (h0, c0 []T) {
	if !l.expose {
		return l.h0, l.c0
	}
	i := 2
	if l.static {
		i = 3
	}
	return bottom[i].Data(), bottom[i+1].Data()
}

func sigm(v float64) float64 { return 0.5*math.Tanh(0.5*v) + 0.5 }

func (l *lstm[T]) Forward(bottom, top []*blob.Blob[T]) error {
	h, num, steps := l.hidden, l.num, l.steps
	g4 := 4 * h
	x, cont, out := bottom[0].HostData(), bottom[1].HostData(), top[0].Data()
	// Input contribution for all steps at once: gates = x·W_xcᵀ + b_c.
	hostGemm(false, true, steps*num, g4, l.xDim, 1, x, l.xDim, l.wx.Data(), l.xDim, 0, l.gates, g4)
	bias := l.b.Data()
	for r := 0; r < steps*num; r++ {
		row := l.gates[r*g4 : (r+1)*g4]
		for j, v := range bias {
			row[j] += v
		}
	}
	if l.static {
		hostGemm(false, true, num, g4, l.ws.Dim(1), 1, bottom[2].HostData(), l.ws.Dim(1), l.ws.Data(), l.ws.Dim(1), 0, l.staticG, g4)
	}
	h0, c0 := l.initial(bottom)
	if !l.expose {
		copy(l.prevC, c0)
		c0 = l.prevC
	}
	for t := 0; t < steps; t++ {
		hPrev, cPrev := h0, c0
		if t > 0 {
			hPrev, cPrev = out[(t-1)*num*h:t*num*h], l.cells[(t-1)*num*h:t*num*h]
		}
		hc := l.hc[t*num*h : (t+1)*num*h]
		for n := 0; n < num; n++ {
			c := cont[t*num+n]
			for d := 0; d < h; d++ {
				hc[n*h+d] = c * hPrev[n*h+d]
			}
		}
		gt := l.gates[t*num*g4 : (t+1)*num*g4]
		hostGemm(false, true, num, g4, h, 1, hc, h, l.wh.Data(), h, 1, gt, g4)
		ct := l.cells[t*num*h : (t+1)*num*h]
		ht := out[t*num*h : (t+1)*num*h]
		for n := 0; n < num; n++ {
			c := float64(cont[t*num+n])
			g := gt[n*g4 : (n+1)*g4]
			if l.static {
				for j, v := range l.staticG[n*g4 : (n+1)*g4] {
					g[j] += v
				}
			}
			for d := 0; d < h; d++ {
				i := sigm(float64(g[d]))
				f := 0.0
				if c != 0 {
					f = c * sigm(float64(g[h+d]))
				}
				o := sigm(float64(g[2*h+d]))
				gg := math.Tanh(float64(g[3*h+d]))
				cell := f*float64(cPrev[n*h+d]) + i*gg
				g[d], g[h+d], g[2*h+d], g[3*h+d] = T(i), T(f), T(o), T(gg)
				ct[n*h+d] = T(cell)
				ht[n*h+d] = T(o * math.Tanh(cell))
			}
		}
	}
	last := (steps - 1) * num * h
	if l.expose {
		copy(top[1].Data(), out[last:last+num*h])
		copy(top[2].Data(), l.cells[last:last+num*h])
	} else if steps > 0 {
		copy(l.h0, out[last:last+num*h])
		copy(l.c0, l.cells[last:last+num*h])
	}
	return nil
}

func (l *lstm[T]) Backward(top []*blob.Blob[T], propagateDown []bool, bottom []*blob.Blob[T]) error {
	if propagateDown[1] {
		return fmt.Errorf("LSTM cannot backpropagate to the sequence continuation flags (bottom 1)")
	}
	h, num, steps := l.hidden, l.num, l.steps
	g4 := 4 * h
	cont, dy := bottom[1].HostData(), top[0].HostDiff()
	c0 := l.prevC
	if l.expose {
		_, c0 = l.initial(bottom)
	}
	dh, dc := l.dh, l.dc
	if l.expose {
		copy(dh, top[1].HostDiff())
		copy(dc, top[2].HostDiff())
	} else {
		clear(dh)
		clear(dc)
	}
	for t := steps - 1; t >= 0; t-- {
		cPrev := c0
		if t > 0 {
			cPrev = l.cells[(t-1)*num*h : t*num*h]
		}
		ct := l.cells[t*num*h : (t+1)*num*h]
		at := l.gates[t*num*g4 : (t+1)*num*g4]
		dg := l.dgates[t*num*g4 : (t+1)*num*g4]
		dyt := dy[t*num*h : (t+1)*num*h]
		for n := 0; n < num; n++ {
			a, d4 := at[n*g4:(n+1)*g4], dg[n*g4:(n+1)*g4]
			for d := 0; d < h; d++ {
				k := n*h + d
				i, f, o, gg := float64(a[d]), float64(a[h+d]), float64(a[2*h+d]), float64(a[3*h+d])
				tc := math.Tanh(float64(ct[k]))
				dhk := float64(dyt[k] + dh[k])
				cterm := float64(dc[k]) + dhk*o*(1-tc*tc)
				dc[k] = T(cterm * f)
				d4[d] = T(cterm * gg * i * (1 - i))
				d4[h+d] = T(cterm * float64(cPrev[k]) * f * (1 - f))
				d4[2*h+d] = T(dhk * tc * o * (1 - o))
				d4[3*h+d] = T(cterm * i * (1 - gg*gg))
			}
		}
		// W_hc gradient and the gradient to the previous hidden state.
		hostGemm(true, false, g4, h, num, 1, dg, g4, l.hc[t*num*h:(t+1)*num*h], h, 1, l.wh.Diff(), h)
		hostGemm(false, false, num, h, g4, 1, dg, g4, l.wh.Data(), h, 0, dh, h)
		for n := 0; n < num; n++ {
			c := cont[t*num+n]
			for d := 0; d < h; d++ {
				dh[n*h+d] *= c
			}
		}
	}
	n := steps * num
	hostGemm(true, false, g4, l.xDim, n, 1, l.dgates, g4, bottom[0].HostData(), l.xDim, 1, l.wx.Diff(), l.xDim)
	db := l.b.Diff()
	for r := 0; r < n; r++ {
		for j, v := range l.dgates[r*g4 : (r+1)*g4] {
			db[j] += v
		}
	}
	if propagateDown[0] {
		hostGemm(false, false, n, l.xDim, g4, 1, l.dgates, g4, l.wx.Data(), l.xDim, 0, bottom[0].Diff(), l.xDim)
	}
	if l.static {
		clear(l.dsum)
		for t := 0; t < steps; t++ {
			for j, v := range l.dgates[t*num*g4 : (t+1)*num*g4] {
				l.dsum[j] += v
			}
		}
		sd := l.ws.Dim(1)
		hostGemm(true, false, g4, sd, num, 1, l.dsum, g4, bottom[2].HostData(), sd, 1, l.ws.Diff(), sd)
		if propagateDown[2] {
			hostGemm(false, false, num, sd, g4, 1, l.dsum, g4, l.ws.Data(), sd, 0, bottom[2].Diff(), sd)
		}
	}
	if l.expose {
		i := 2
		if l.static {
			i = 3
		}
		if propagateDown[i] {
			copy(bottom[i].Diff(), dh)
		}
		if propagateDown[i+1] {
			copy(bottom[i+1].Diff(), dc)
		}
	}
	return nil
}
