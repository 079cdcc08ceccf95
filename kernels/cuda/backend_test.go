//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gocaffe/gocaffe/kernels"
	"github.com/gocaffe/gocaffe/kernels/cpu"
)

// The GPU backend against the CPU backend in float64, through the
// kernels.Backend interface the layers use: operands are uploaded to the
// GPU (float32), every method runs on both, and the GPU's result must
// match within float32 rounding.

func gpuBackend(t *testing.T) kernels.Backend[float32] {
	t.Helper()
	need(t)
	g := &GPU{D: dev}
	g.f32 = &backend[float32]{g: g, o: Ops[float32]{dev}}
	g.f64 = &backend[float64]{g: g, o: Ops[float64]{dev}}
	t.Cleanup(func() {
		if err := g.Err(); err != nil {
			t.Errorf("CUDA error: %v", err)
		}
	})
	return g.f32
}

// pair is one operand on both sides.
type pair struct {
	ref []float64
	gv  kernels.Vec[float32]
}

func mk(t *testing.T, b kernels.Backend[float32], r *rand.Rand, n int) pair {
	ref := make([]float64, n)
	x := make([]float32, n)
	for i := range ref {
		x[i] = float32(r.NormFloat64())
		ref[i] = float64(x[i])
	}
	v := b.Alloc(n)
	b.Upload(v, x)
	return pair{ref, v}
}

func (p pair) host() kernels.Vec[float64] { return kernels.HostVec(p.ref) }

func same(t *testing.T, b kernels.Backend[float32], what string, p pair) {
	t.Helper()
	got := make([]float32, p.gv.Len())
	b.Download(got, p.gv)
	check(t, what, got, p.ref)
}

func TestBackendMatchesCPU(t *testing.T) {
	b := gpuBackend(t)
	c := cpu.Backend[float64]()
	r := rand.New(rand.NewPCG(21, 22))

	// GEMM through sub-Vecs (offsets), both transpositions.
	m, n, k := 33, 47, 19
	a, bb, cc := mk(t, b, r, 5+m*k), mk(t, b, r, 3+k*n), mk(t, b, r, m*n)
	for tr := 0; tr < 4; tr++ {
		ta, tb := tr&1 != 0, tr&2 != 0
		lda, ldb := k, n
		if ta {
			lda = m
		}
		if tb {
			ldb = k
		}
		c.Gemm(ta, tb, m, n, k, 0.5, a.host().From(5), lda, bb.host().From(3), ldb, 0.75, cc.host(), n)
		b.Gemm(ta, tb, m, n, k, 0.5, a.gv.From(5), lda, bb.gv.From(3), ldb, 0.75, cc.gv, n)
		same(t, b, fmt.Sprintf("Gemm ta=%v tb=%v", ta, tb), cc)
	}
	// GemmNTSum: the convolution's weight gradient.
	batch := 3
	ga, gb, gc := mk(t, b, r, batch*m*k), mk(t, b, r, batch*n*k), mk(t, b, r, m*n)
	c.GemmNTSum(batch, m, n, k, ga.host(), k, m*k, gb.host(), k, n*k, gc.host(), n)
	b.GemmNTSum(batch, m, n, k, ga.gv, k, m*k, gb.gv, k, n*k, gc.gv, n)
	same(t, b, "GemmNTSum", gc)
	// GemmBatched: the convolution's forward over a batch (shared weights).
	bc := mk(t, b, r, batch*m*n)
	c.GemmBatched(false, false, batch, m, n, k, 0.5, ga.host(), k, 0, gb.host(), n, n*k, 0.25, bc.host(), n, m*n)
	b.GemmBatched(false, false, batch, m, n, k, 0.5, ga.gv, k, 0, gb.gv, n, n*k, 0.25, bc.gv, n, m*n)
	same(t, b, "GemmBatched", bc)

	// SoftmaxWithLoss: loss and gradient against int32 classes, -1 ignored.
	{
		outer, chans, inner := 5, 7, 3
		prob := mk(t, b, r, outer*chans*inner)
		for i := range prob.ref { // positive, as probabilities
			prob.ref[i] = float64(float32(0.05 + 0.9*math.Abs(math.Sin(prob.ref[i]))))
		}
		p32 := make([]float32, len(prob.ref))
		for i, v := range prob.ref {
			p32[i] = float32(v)
		}
		b.Upload(prob.gv, p32)
		cls := make([]int32, outer*inner)
		for i := range cls {
			cls[i] = int32(i*3) % int32(chans)
		}
		cls[4] = -1
		gcls := b.AllocInts(len(cls))
		b.UploadInts(gcls, cls)
		loss, dx := mk(t, b, r, 1), mk(t, b, r, outer*chans*inner)
		c.SoftmaxLossForward(prob.host(), kernels.HostInts(cls), outer, chans, inner, 14, loss.host())
		b.SoftmaxLossForward(prob.gv, gcls, outer, chans, inner, 14, loss.gv)
		same(t, b, "SoftmaxLossForward", loss)
		c.SoftmaxLossBackward(prob.host(), kernels.HostInts(cls), outer, chans, inner, 0.25, dx.host())
		b.SoftmaxLossBackward(prob.gv, gcls, outer, chans, inner, 0.25, dx.gv)
		same(t, b, "SoftmaxLossBackward", dx)
	}

	// Scale layer: per-channel scale and its gradient (odd sizes).
	{
		outer, chans, inner := 3, 5, 77
		x, sc, y, d := mk(t, b, r, outer*chans*inner), mk(t, b, r, chans), mk(t, b, r, outer*chans*inner), mk(t, b, r, chans)
		c.ScaleChannels(x.host(), sc.host(), y.host(), outer, chans, inner)
		b.ScaleChannels(x.gv, sc.gv, y.gv, outer, chans, inner)
		same(t, b, "ScaleChannels", y)
		c.ChannelDot(x.host(), y.host(), d.host(), outer, chans, inner)
		b.ChannelDot(x.gv, y.gv, d.gv, outer, chans, inner)
		same(t, b, "ChannelDot", d)
		// LRN, across and within channels, AlexNet's window of 5 and 3.
		for _, across := range []bool{true, false} {
			for _, size := range []int{3, 5} {
				g := kernels.LRNGeom{Across: across, N: outer, C: chans, H: 7, W: 11, Size: size, Alpha: 0.5, Beta: 0.75, K: 2}
				n := outer * chans * 77
				lx, ls, ly, ldy, ldx := mk(t, b, r, n), mk(t, b, r, n), mk(t, b, r, n), mk(t, b, r, n), mk(t, b, r, n)
				what := fmt.Sprintf("LRN across=%v size %d", across, size)
				c.LRNForward(lx.host(), ls.host(), ly.host(), g)
				b.LRNForward(lx.gv, ls.gv, ly.gv, g)
				same(t, b, what+" forward scale", ls)
				same(t, b, what+" forward", ly)
				c.LRNBackward(lx.host(), ly.host(), ls.host(), ldy.host(), ldx.host(), g)
				b.LRNBackward(lx.gv, ly.gv, ls.gv, ldy.gv, ldx.gv, g)
				same(t, b, what+" backward", ldx)
			}
		}
	}

	// im2col / col2im.
	cg := kernels.ConvGeom{KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 0, DH: 1, DW: 2}
	ch, h, w := 3, 9, 8
	oh, ow := (h+2*cg.PH-(cg.DH*(cg.KH-1)+1))/cg.SH+1, (w+2*cg.PW-(cg.DW*(cg.KW-1)+1))/cg.SW+1
	im, col := mk(t, b, r, ch*h*w), mk(t, b, r, ch*cg.KH*cg.KW*oh*ow)
	c.Im2col(im.host(), ch, h, w, cg, oh, ow, col.host())
	b.Im2col(im.gv, ch, h, w, cg, oh, ow, col.gv)
	same(t, b, "Im2col", col)
	col2 := mk(t, b, r, col.gv.Len())
	c.Col2im(col2.host(), ch, h, w, cg, oh, ow, im.host())
	b.Col2im(col2.gv, ch, h, w, cg, oh, ow, im.gv)
	same(t, b, "Col2im", im)

	// Vector operations.
	x, y, z := mk(t, b, r, 1001), mk(t, b, r, 1001), mk(t, b, r, 1001)
	c.Axpy(0.3, x.host(), y.host())
	b.Axpy(0.3, x.gv, y.gv)
	c.Axpby(-1.5, x.host(), 0.5, y.host())
	b.Axpby(-1.5, x.gv, 0.5, y.gv)
	c.Scal(1.25, y.host())
	b.Scal(1.25, y.gv)
	c.Shift(0.1, y.host())
	b.Shift(0.1, y.gv)
	c.Mul(x.host(), y.host(), z.host())
	b.Mul(x.gv, y.gv, z.gv)
	same(t, b, "Axpy/Axpby/Scal/Shift", y)
	same(t, b, "Mul", z)
	check(t, "Dot", []float32{b.Dot(x.gv, z.gv)}, []float64{c.Dot(x.host(), z.host())})
	check(t, "Sum", []float32{b.Sum(z.gv)}, []float64{c.Sum(z.host())})
	s := mk(t, b, r, 1)
	c.SumTo(z.host(), s.host())
	b.SumTo(z.gv, s.gv)
	same(t, b, "SumTo", s)
	c.Copy(x.host(), z.host())
	b.Copy(x.gv, z.gv)
	same(t, b, "Copy", x)
	c.Fill(x.host().Slice(10, 20), 3)
	b.Fill(x.gv.Slice(10, 20), 3)
	same(t, b, "Fill", x)

	// Bias, transposed add.
	for _, sh := range [][3]int{{4, 5, 7}, {64, 10, 1}} {
		o, chn, in := sh[0], sh[1], sh[2]
		yb, bias, db := mk(t, b, r, o*chn*in), mk(t, b, r, chn), mk(t, b, r, chn)
		c.AddBias(yb.host(), bias.host(), o, chn, in)
		b.AddBias(yb.gv, bias.gv, o, chn, in)
		same(t, b, fmt.Sprintf("AddBias %v", sh), yb)
		c.BiasGrad(yb.host(), db.host(), o, chn, in)
		b.BiasGrad(yb.gv, db.gv, o, chn, in)
		same(t, b, fmt.Sprintf("BiasGrad %v", sh), db)
	}
	at, bt := mk(t, b, r, 7*5), mk(t, b, r, 5*7)
	c.AddTrans(at.host(), 7, 5, bt.host())
	b.AddTrans(at.gv, 7, 5, bt.gv)
	same(t, b, "AddTrans", bt)

	// ReLU.
	rx, ry, rdy, rdx := mk(t, b, r, 999), mk(t, b, r, 999), mk(t, b, r, 999), mk(t, b, r, 999)
	for _, slope := range []float64{0, 0.2} {
		c.ReLUForward(rx.host(), ry.host(), slope)
		b.ReLUForward(rx.gv, ry.gv, float32(slope))
		same(t, b, "ReLUForward", ry)
		c.ReLUBackward(rx.host(), rdy.host(), rdx.host(), slope)
		b.ReLUBackward(rx.gv, rdy.gv, rdx.gv, float32(slope))
		same(t, b, "ReLUBackward", rdx)
	}

	// Dropout: the same Philox mask as the host's, from a key in device
	// memory; in place, at an odd length from an offset.
	for _, ratio := range []float64{0.3, 0.5} {
		dx, dm := mk(t, b, r, 1003), mk(t, b, r, 1001)
		key := []int32{int32(ratio * 1000), -77}
		gkey := b.AllocInts(2)
		b.UploadInts(gkey, key)
		thr, scale := kernels.DropThreshold(ratio), 1/(1-ratio)
		c.DropoutForward(dx.host().From(2), dx.host().From(2), dm.host(), kernels.HostInts(key), thr, scale)
		b.DropoutForward(dx.gv.From(2), dx.gv.From(2), dm.gv, gkey, thr, float32(scale))
		same(t, b, fmt.Sprintf("DropoutForward mask, ratio %g", ratio), dm)
		same(t, b, fmt.Sprintf("DropoutForward y, ratio %g", ratio), dx)
	}

	// Pooling, with the mask the layer keeps between passes.
	for _, g := range []kernels.PoolGeom{
		{H: 24, W: 24, OH: 12, OW: 12, KH: 2, KW: 2, SH: 2, SW: 2},
		{H: 32, W: 32, OH: 16, OW: 16, KH: 3, KW: 3, SH: 2, SW: 2},
		{H: 7, W: 9, OH: 4, OW: 10, KH: 3, KW: 2, SH: 2, SW: 1, PH: 1, PW: 1},
	} {
		planes := 5
		px, py, pdy, pdx := mk(t, b, r, planes*g.H*g.W), mk(t, b, r, planes*g.OH*g.OW), mk(t, b, r, planes*g.OH*g.OW), mk(t, b, r, planes*g.H*g.W)
		hm := kernels.HostInts(make([]int32, planes*g.OH*g.OW))
		gm := b.AllocInts(planes * g.OH * g.OW)
		c.MaxPoolForward(px.host(), planes, g, py.host(), hm)
		b.MaxPoolForward(px.gv, planes, g, py.gv, gm)
		same(t, b, fmt.Sprintf("MaxPoolForward %+v", g), py)
		c.MaxPoolBackward(pdy.host(), hm, planes, g, pdx.host())
		b.MaxPoolBackward(pdy.gv, gm, planes, g, pdx.gv)
		same(t, b, fmt.Sprintf("MaxPoolBackward %+v", g), pdx)
		c.AvePoolForward(px.host(), planes, g, py.host())
		b.AvePoolForward(px.gv, planes, g, py.gv)
		same(t, b, fmt.Sprintf("AvePoolForward %+v", g), py)
		c.AvePoolBackward(pdy.host(), planes, g, pdx.host())
		b.AvePoolBackward(pdy.gv, planes, g, pdx.gv)
		same(t, b, fmt.Sprintf("AvePoolBackward %+v", g), pdx)
	}

	// Softmax.
	sx, sy, sdy := mk(t, b, r, 6*10*3), mk(t, b, r, 6*10*3), mk(t, b, r, 6*10*3)
	c.SoftmaxForward(sx.host(), sy.host(), 6, 10, 3)
	b.SoftmaxForward(sx.gv, sy.gv, 6, 10, 3)
	same(t, b, "SoftmaxForward", sy)
	c.SoftmaxBackward(sy.host(), sdy.host(), sdy.host(), 6, 10, 3)
	b.SoftmaxBackward(sy.gv, sdy.gv, sdy.gv, 6, 10, 3)
	same(t, b, "SoftmaxBackward", sdy)
	// A classifier's rows (inner 1, a warp per row), 1000 and 67 classes.
	for _, ch := range []int{1000, 67} {
		rx, ry := mk(t, b, r, 37*ch), mk(t, b, r, 37*ch)
		c.SoftmaxForward(rx.host(), ry.host(), 37, ch, 1)
		b.SoftmaxForward(rx.gv, ry.gv, 37, ch, 1)
		same(t, b, fmt.Sprintf("SoftmaxForward over rows of %d", ch), ry)
	}

	// SGD over a whole parameter buffer.
	diff, data, hist := mk(t, b, r, 4321), mk(t, b, r, 4321), mk(t, b, r, 4321)
	c.SGDMomentum(diff.host(), data.host(), hist.host(), 1.0/3, 5e-4, 0.01, 0.9)
	b.SGDMomentum(diff.gv, data.gv, hist.gv, 1.0/3, 5e-4, 0.01, 0.9)
	same(t, b, "SGD data", data)
	same(t, b, "SGD hist", hist)
	same(t, b, "SGD diff", diff)
}

// SolverUpdate over a flat buffer of odd size in segments with their own
// lr_mult and decay_mult (one empty), every method, L1 and L2, with and
// without clipping, three steps so the history is used: the GPU in float32
// against the CPU's reference in float64.
func TestSolverUpdateMatchesCPU(t *testing.T) {
	b := gpuBackend(t)
	c := cpu.Backend[float64]()
	r := rand.New(rand.NewPCG(31, 32))
	offs := []int32{0, 700, 701, 701, 3001, 4321}
	mults := []float64{1, 1, 2, 0, 1, 1, 0.5, 2, 1, 0}
	hostMults := make([]float32, len(mults))
	for i, v := range mults {
		hostMults[i] = float32(v)
	}
	gOffs := b.AllocInts(len(offs))
	b.UploadInts(gOffs, offs)
	gMults := b.Alloc(len(mults))
	b.Upload(gMults, hostMults)
	n := int(offs[len(offs)-1])
	for m := kernels.UpdateSGD; m <= kernels.UpdateAdam; m++ {
		for _, l1 := range []bool{false, true} {
			for _, clip := range []float64{-1, 0.5} {
				what := fmt.Sprintf("method %d l1 %v clip %g", m, l1, clip)
				data, h0, h1 := mk(t, b, r, n), mk(t, b, r, n), mk(t, b, r, n)
				for _, h := range []pair{h0, h1} { // squared-gradient histories are not negative
					hv := make([]float32, n)
					for i := range h.ref {
						h.ref[i] = math.Abs(h.ref[i])
						hv[i] = float32(h.ref[i])
					}
					b.Upload(h.gv, hv)
				}
				rule := kernels.SolverRule{Method: m, L1: l1, Norm: 0.5, Clip: clip, Rate: 0.01, WeightDecay: 5e-3,
					Momentum: 0.9, Momentum2: 0.999, Delta: 1e-8, RMSDecay: 0.98, AdamCorr: 0.7}
				for step := 0; step < 3; step++ {
					diff := mk(t, b, r, n)
					c.SolverUpdate(rule, kernels.HostInts(offs), kernels.HostVec(mults), diff.host(), data.host(), h0.host(), h1.host())
					b.SolverUpdate(rule, gOffs, gMults, diff.gv, data.gv, h0.gv, h1.gv)
					same(t, b, what+" diff", diff)
				}
				same(t, b, what+" data", data)
				same(t, b, what+" history 0", h0)
				if m == kernels.UpdateAdaDelta || m == kernels.UpdateAdam {
					same(t, b, what+" history 1", h1)
				}
			}
		}
	}
}
